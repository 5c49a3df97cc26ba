import XCTest
@testable import Engine

/// Builds GGUF bytes by hand, so that each test can break one thing.
struct GGUFBuilder {
    var version: UInt32 = 3
    var kv: [(String, UInt32, [UInt8])] = []
    var tensors: [(name: String, dims: [UInt64], type: UInt32, offset: UInt64)] = []
    var data: [UInt8] = []
    var magic: [UInt8] = Array("GGUF".utf8)

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func str(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

    mutating func add(_ key: String, u32 v: UInt32) { kv.append((key, 4, Self.le(v))) }
    mutating func add(_ key: String, string v: String) { kv.append((key, 8, Self.str(v))) }
    mutating func add(_ key: String, f32 v: Float) { kv.append((key, 6, Self.le(v.bitPattern))) }
    mutating func add(_ key: String, strings: [String]) {
        kv.append((key, 9, Self.le(UInt32(8)) + Self.le(UInt64(strings.count)) + strings.flatMap(Self.str)))
    }
    mutating func add(_ key: String, i32s: [Int32]) {
        kv.append((key, 9, Self.le(UInt32(5)) + Self.le(UInt64(i32s.count)) + i32s.flatMap { Self.le($0) }))
    }

    func bytes() -> [UInt8] {
        var b = magic + Self.le(version) + Self.le(UInt64(tensors.count)) + Self.le(UInt64(kv.count))
        for (k, t, v) in kv { b += Self.str(k) + Self.le(t) + v }
        for t in tensors {
            b += Self.str(t.name) + Self.le(UInt32(t.dims.count)) + t.dims.flatMap { Self.le($0) }
            b += Self.le(t.type) + Self.le(t.offset)
        }
        while b.count % 32 != 0 { b.append(0) }
        return b + data
    }
}

final class GGUFTests: XCTestCase {
    func write(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "refrain-test-\(UUID().uuidString).gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Opens `bytes` expecting a GGUFError and returns it. A file that opens fails the test: XCTFail at the
    /// caller's line, then a thrown `Opened` (an error, never a skip) ends it; another error type is thrown on.
    func failure(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> GGUFError {
        let path = try write(bytes)
        do {
            _ = try GGUFFile(path: path)
        } catch let e as GGUFError {
            XCTAssertTrue(e.description.hasPrefix(path + ": at byte "), e.description, file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
            return e
        }
        XCTFail("expected a GGUFError, but the file opened", file: file, line: line)
        throw Opened()
    }

    /// Thrown by `failure` when the bytes it was given opened without an error.
    struct Opened: Error, CustomStringConvertible {
        var description: String { "the GGUF bytes opened without the expected error" }
    }

    func valid() -> GGUFBuilder { GGUFBuilder.small }

    func testValidFileReads() throws {
        let f = try GGUFFile(path: try write(valid().bytes()))
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.string("general.architecture"), "llama")
        XCTAssertEqual(f.int("llama.block_count"), 1)
        XCTAssertEqual(f.float("llama.rope.freq_base"), 10000)
        XCTAssertEqual(f.array("tokenizer.ggml.tokens")?.strings(), ["a", "bc", "déf"])
        XCTAssertEqual(f.array("tokenizer.ggml.token_type")?.ints(), [1, 1, 3])
        XCTAssertEqual(f.metadataKeys.count, 5)
        XCTAssertEqual(f.tensors.map(\.name), ["w", "q"])
        XCTAssertEqual(f.tensor("w")?.byteCount, 256)
        XCTAssertEqual(f.tensor("q")?.type, .q8_0)
        XCTAssertEqual(f.tensor("q")!.fileOffset - f.tensor("w")!.fileOffset, 256)
    }

    func testVersion2Reads() throws {
        var g = valid(); g.version = 2
        XCTAssertEqual(try GGUFFile(path: try write(g.bytes())).version, 2)
    }

    /// A FIFO, a directory or a device is refused at once, by name (opening a FIFO used to wait for a writer).
    func testNotARegularFileIsRefusedAtOnce() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-fifo-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("model.gguf").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        for (path, kind) in [(fifo, "a FIFO"), (dir.path, "a directory"), ("/dev/null", "a character device")] {
            let start = Date()
            XCTAssertThrowsError(try GGUFFile(path: path)) {
                XCTAssertEqual(String(describing: $0), "\(path): at byte 0: not a regular file (\(kind))")
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 5, "\(kind) refused without waiting")
        }
    }

    func testBadMagic() throws {
        var g = valid(); g.magic = Array("GGML".utf8)
        let e = try failure(g.bytes())
        XCTAssertEqual(e.offset, 0)
        XCTAssertTrue(e.message.contains("bad magic"), e.message)
    }

    func testUnsupportedVersion() throws {
        var g = valid(); g.version = 1
        let e = try failure(g.bytes())
        XCTAssertEqual(e.offset, 4)
        XCTAssertTrue(e.message.contains("unsupported GGUF version 1"), e.message)
    }

    func testTruncatedEverywhere() throws {
        let full = valid().bytes()
        // Every prefix must fail cleanly, never crash.
        for n in stride(from: 0, to: full.count - 1, by: 7) {
            let path = try write(Array(full.prefix(n)))
            XCTAssertThrowsError(try GGUFFile(path: path), "prefix \(n)")
        }
        let e = try failure(Array(full.dropLast(10)))
        XCTAssertTrue(e.message.contains("past the end of the file"), e.message)
    }

    func testTensorPastEnd() throws {
        var g = valid(); g.tensors[1].offset = 4096
        let e = try failure(g.bytes())
        XCTAssertTrue(e.message.contains("tensor 'q'") && e.message.contains("past the end"), e.message)
    }

    func testOverlappingTensors() throws {
        var g = valid(); g.tensors[1].offset = 224
        let e = try failure(g.bytes())
        XCTAssertTrue(e.message.contains("overlaps"), e.message)
    }

    func testUnknownTensorType() throws {
        var g = valid(); g.tensors[0].type = 99
        let e = try failure(g.bytes())
        XCTAssertTrue(e.message.contains("unknown type 99"), e.message)
    }

    func testTooManyDimensions() throws {
        var g = valid(); g.tensors[0].dims = [32, 1, 1, 1, 1]
        let e = try failure(g.bytes())
        XCTAssertTrue(e.message.contains("5 dimensions"), e.message)
    }

    func testOverflowingSizes() throws {
        var g = valid(); g.tensors[0].dims = [1 << 40, 1 << 40]
        let e = try failure(g.bytes())
        XCTAssertTrue(e.message.contains("overflow"), e.message)
    }

    func testPartialBlockRow() throws {
        var g = valid(); g.tensors[1].dims = [33]
        let e = try failure(g.bytes())
        XCTAssertTrue(e.message.contains("whole number of Q8_0 blocks"), e.message)
    }

    func testUnknownValueTypeAndHugeCounts() throws {
        var g = valid(); g.kv.append(("x", 77, []))
        XCTAssertTrue(try failure(g.bytes()).message.contains("unknown metadata value type 77"))
        var h = valid(); h.kv.append(("arr", 9, GGUFBuilder.le(UInt32(0)) + GGUFBuilder.le(UInt64.max)))
        XCTAssertTrue(try failure(h.bytes()).message.contains("cannot fit"))
        var s = valid(); s.kv.append(("s", 8, GGUFBuilder.le(UInt64(1) << 62)))
        XCTAssertTrue(try failure(s.bytes()).message.contains("runs past the end"))
    }

    func testDuplicateKeyAndBadAlignment() throws {
        var g = valid(); g.add("llama.block_count", u32: 2)
        XCTAssertTrue(try failure(g.bytes()).message.contains("duplicate metadata key"))
        var a = valid(); a.add("general.alignment", u32: 24)
        XCTAssertTrue(try failure(a.bytes()).message.contains("power of two"))
    }

    func testRandomBytesNeverCrash() throws {
        var rng = SystemRandomNumberGenerator()
        let base = valid().bytes()
        for _ in 0..<300 {
            var b = base
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                b[Int.random(in: 0..<min(b.count, 400), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            let path = try write(b)
            _ = try? GGUFFile(path: path)   // must return or throw, never trap
        }
    }

    func testMissingFile() {
        XCTAssertThrowsError(try GGUFFile(path: "/nonexistent/model.gguf")) { e in
            XCTAssertTrue("\(e)".contains("cannot open"), "\(e)")
        }
    }
}

extension GGUFBuilder {
    /// A small valid file: four kinds of metadata and two tensors (f32 and q8_0).
    static var small: GGUFBuilder {
        var g = GGUFBuilder()
        g.add("general.architecture", string: "llama")
        g.add("llama.block_count", u32: 1)
        g.add("llama.rope.freq_base", f32: 10000)
        g.add("tokenizer.ggml.tokens", strings: ["a", "bc", "déf"])
        g.add("tokenizer.ggml.token_type", i32s: [1, 1, 3])
        g.tensors = [("w", [32, 2], GGMLType.f32.rawValue, 0), ("q", [32], GGMLType.q8_0.rawValue, 256)]
        g.data = [UInt8](repeating: 0, count: 256 + 34)
        return g
    }
}
