// The SVG charts as a browser draws them: refrain writes an attention heatmap and a surprisal chart, headless
// Chromium (Debian's `chromium`, installed by `./setup.sh --chromium`) takes a screenshot of each, and the test
// decodes the PNG (zlib through the system's libz, the PNG filters here) and checks that the picture is not
// empty: many colours, a good share of non-white pixels, and the heatmap's dark red among them.
//
// Without Chromium the test fails, saying how to install it; REFRAIN_SKIP_BROWSER_TESTS=1 turns that into a skip
// (as REFRAIN_SKIP_MODEL_TESTS=1 does for missing models).
import Foundation
import XCTest

final class BrowserTests: XCTestCase {
    /// The chromium executable on PATH (Debian names it `chromium`), or a skip/failure as the environment says.
    func chromium() throws -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for dir in path {
            for name in ["chromium", "chromium-browser"] {
                let p = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: p) { return p }
            }
        }
        if ProcessInfo.processInfo.environment["REFRAIN_SKIP_BROWSER_TESTS"] == "1" {
            throw XCTSkip("chromium is not installed (REFRAIN_SKIP_BROWSER_TESTS=1)")
        }
        throw TestEnvironment.MissingModel(description: "chromium not found on PATH: run ./setup.sh --chromium (apt-get install chromium), or set REFRAIN_SKIP_BROWSER_TESTS=1 to skip")
    }

    /// Takes a screenshot of `file` at `width` × `height` with headless Chromium; returns the PNG's bytes.
    func screenshot(_ browser: String, _ file: URL, width: Int, height: Int, dir: URL) throws -> Data {
        let png = dir.appendingPathComponent(file.deletingPathExtension().lastPathComponent + ".png")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: browser)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                       "--user-data-dir=\(dir.appendingPathComponent("profile").path)",
                       "--screenshot=\(png.path)", "--window-size=\(width),\(height)", file.absoluteString]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { usleep(100_000) }
        if p.isRunning { p.terminate(); XCTFail("chromium ran past 120 s") }
        p.waitUntilExit()
        guard let data = FileManager.default.contents(atPath: png.path) else {
            throw TestEnvironment.MissingModel(description: "chromium wrote no screenshot (exit status \(p.terminationStatus))")
        }
        return data
    }

    func testChartsDrawInABrowser() throws {
        let browser = try chromium()
        let model = try TestEnvironment.modelPath()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("refrain-browser-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let heat = dir.appendingPathComponent("heatmap.svg"), surprisal = dir.appendingPathComponent("surprisal.svg")
        let code = """
            local att = lm.model:attention("The cat sat on the mat because it was warm.", {layers = {2}})
            lm.plot.heatmap(att:layer(2):mean(1), {labels = att.tokens, title = "layer 2, heads averaged", file = "\(heat.path)"})
            local s = lm.model:score("The capital of France is", " Paris, a city on the Seine.")
            lm.plot.surprisal(s, {title = "surprisal", file = "\(surprisal.path)"})
            """
        let r = try TestEnvironment.run(["--model", model, "-e", code])
        XCTAssertEqual(r.status, 0, r.err)
        for (file, wantRed) in [(heat, true), (surprisal, false)] {
            let png = try screenshot(browser, file, width: 640, height: 480, dir: dir)
            let image = try PNG.decode(png)
            XCTAssertEqual(image.width, 640); XCTAssertEqual(image.height, 480)
            var colours = Set<UInt32>(), nonWhite = 0, darkRed = 0
            for i in 0..<(image.width * image.height) {
                let r = image.rgba[4 * i], g = image.rgba[4 * i + 1], b = image.rgba[4 * i + 2]
                colours.insert(UInt32(r) << 16 | UInt32(g) << 8 | UInt32(b))
                if r < 245 || g < 245 || b < 245 { nonWhite += 1 }
                if r > 100 && r < 160 && g < 30 && b > 20 && b < 70 { darkRed += 1 }
            }
            let share = Double(nonWhite) / Double(image.width * image.height)
            print("\(file.lastPathComponent) in Chromium: \(colours.count) colours, \(String(format: "%.1f", 100 * share))% non-white, \(darkRed) dark-red pixels")
            XCTAssertGreaterThan(colours.count, 20, "\(file.lastPathComponent): too few colours for a drawn chart")
            XCTAssertGreaterThan(share, 0.03, "\(file.lastPathComponent): the picture is (nearly) blank")
            if wantRed { XCTAssertGreaterThan(darkRed, 50, "the heatmap's largest values (dark red) are missing") }
        }
    }

    /// The PNG decoder against an image made by hand (one IDAT, each filter type once).
    func testPNGDecoder() throws {
        // 2×5 RGB rows with filters None, Sub, Up, Average, Paeth; the decoded pixels are checked below.
        let raw: [UInt8] = [0, 10, 20, 30, 40, 50, 60,
                            1, 10, 20, 30, 30, 30, 30,
                            2, 1, 1, 1, 1, 1, 1,
                            3, 5, 5, 5, 5, 5, 5,
                            4, 1, 2, 3, 4, 5, 6]
        let image = try PNG.decode(PNG.encodeForTest(width: 2, height: 5, colourType: 2, raw: raw))
        let rows = (0..<5).map { y in (0..<2).map { x in Array(image.rgba[(4 * (y * 2 + x))..<(4 * (y * 2 + x) + 3)]) } }
        XCTAssertEqual(rows[0], [[10, 20, 30], [40, 50, 60]])
        XCTAssertEqual(rows[1], [[10, 20, 30], [40, 50, 60]])              // Sub: 30 + 10, ...
        XCTAssertEqual(rows[2], [[11, 21, 31], [41, 51, 61]])              // Up
        XCTAssertEqual(rows[3], [[10, 15, 20], [30, 38, 45]])              // Average: 5 + 11/2, 5 + (10 + 41)/2
        XCTAssertEqual(rows[4][0], [11, 17, 23])                           // Paeth: left 0, up-left 0 -> up
    }
}

/// A PNG decoder for what Chromium writes (8-bit RGB or RGBA, not interlaced): enough to look at the pixels.
enum PNG {
    struct Image { let width: Int; let height: Int; let rgba: [UInt8] }
    struct Failure: Error, CustomStringConvertible { let description: String }

    /// zlib's `uncompress` and `compress`, from the system's libz (always there on Debian: dpkg needs it).
    typealias ZFunction = @convention(c) (UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt>, UnsafePointer<UInt8>, UInt) -> Int32
    static func zlib(_ name: String) throws -> ZFunction {
        guard let lib = dlopen("libz.so.1", RTLD_NOW), let f = dlsym(lib, name) else {
            throw Failure(description: "libz.so.1 (\(name)) not found")
        }
        return unsafeBitCast(f, to: ZFunction.self)
    }

    static func decode(_ data: Data) throws -> Image {
        let b = [UInt8](data)
        guard b.count > 8, b[0..<8].elementsEqual([137, 80, 78, 71, 13, 10, 26, 10]) else { throw Failure(description: "not a PNG") }
        func be32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        var i = 8, width = 0, height = 0, channels = 0, idat: [UInt8] = []
        while i + 8 <= b.count {
            let len = be32(i), type = String(decoding: b[(i + 4)..<(i + 8)], as: UTF8.self)
            let body = Array(b[(i + 8)..<(i + 8 + len)])
            switch type {
            case "IHDR":
                width = Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])
                height = Int(body[4]) << 24 | Int(body[5]) << 16 | Int(body[6]) << 8 | Int(body[7])
                guard body[8] == 8, body[12] == 0, body[9] == 2 || body[9] == 6 else {
                    throw Failure(description: "unsupported PNG: depth \(body[8]), colour type \(body[9]), interlace \(body[12])")
                }
                channels = body[9] == 6 ? 4 : 3
            case "IDAT": idat += body
            default: break
            }
            i += 12 + len
        }
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: height * (stride + 1))
        var size = UInt(raw.count)
        let status = try zlib("uncompress")(&raw, &size, idat, UInt(idat.count))
        guard status == 0, size == UInt(raw.count) else { throw Failure(description: "zlib status \(status), \(size) bytes") }
        var px = [UInt8](repeating: 0, count: height * stride)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let v = raw[y * (stride + 1) + 1 + x]
                let a = x >= channels ? Int(px[y * stride + x - channels]) : 0
                let up = y > 0 ? Int(px[(y - 1) * stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(px[(y - 1) * stride + x - channels]) : 0
                let pred: Int
                switch filter {
                case 0: pred = 0
                case 1: pred = a
                case 2: pred = up
                case 3: pred = (a + up) / 2
                case 4:
                    let p = a + up - c, pa = abs(p - a), pb = abs(p - up), pc = abs(p - c)
                    pred = pa <= pb && pa <= pc ? a : pb <= pc ? up : c
                default: throw Failure(description: "bad filter \(filter) on row \(y)")
                }
                px[y * stride + x] = UInt8(truncatingIfNeeded: Int(v) + pred)
            }
        }
        var rgba = [UInt8](repeating: 255, count: width * height * 4)
        for p in 0..<(width * height) { for k in 0..<channels { rgba[4 * p + k] = px[p * channels + k] } }
        return Image(width: width, height: height, rgba: rgba)
    }

    /// A PNG of already-filtered rows (for the decoder's own test); CRCs are left zero, which decode ignores.
    static func encodeForTest(width: Int, height: Int, colourType: UInt8, raw: [UInt8]) throws -> Data {
        var out = [UInt8](repeating: 0, count: raw.count + 1024)
        var size = UInt(out.count)
        guard try zlib("compress")(&out, &size, raw, UInt(raw.count)) == 0 else { throw Failure(description: "compress failed") }
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let n = body.count
            return [UInt8(n >> 24 & 255), UInt8(n >> 16 & 255), UInt8(n >> 8 & 255), UInt8(n & 255)] + Array(type.utf8) + body + [0, 0, 0, 0]
        }
        let ihdr: [UInt8] = [0, 0, 0, UInt8(width), 0, 0, 0, UInt8(height), 8, colourType, 0, 0, 0]
        return Data([137, 80, 78, 71, 13, 10, 26, 10] + chunk("IHDR", ihdr) + chunk("IDAT", Array(out[0..<Int(size)])) + chunk("IEND", []))
    }
}
