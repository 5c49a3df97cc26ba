// docs/tutorial.md stays true: its ```lua blocks, in order, run as one script through `refrain run`.
import Foundation
import XCTest

final class TutorialTests: XCTestCase {
    var tutorial: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/tutorial.md")
    }

    /// The Lua blocks of a Markdown text, in order.
    static func luaBlocks(_ markdown: String) -> [String] {
        var blocks: [String] = [], current: [String]? = nil
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line.trimmingCharacters(in: .whitespaces) == "```lua" { current = [] }
            else if current != nil, line.trimmingCharacters(in: .whitespaces) == "```" {
                blocks.append(current!.joined(separator: "\n")); current = nil
            } else { current?.append(String(line)) }
        }
        return blocks
    }

    func testEveryLuaSnippetRuns() throws {
        let env = ProcessInfo.processInfo.environment
        let model = (env["REFRAIN_HOME"] ?? (NSHomeDirectory() + "/.cache/refrain")) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
        if !FileManager.default.fileExists(atPath: model) {
            if env["REFRAIN_SKIP_MODEL_TESTS"] == "1" { throw XCTSkip("no model at \(model)") }
            return XCTFail("model not found at \(model): run ./setup.sh")
        }
        let blocks = TutorialTests.luaBlocks(try String(contentsOf: tutorial, encoding: .utf8))
        XCTAssertGreaterThanOrEqual(blocks.count, 5, "the tutorial's snippets")
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("tutorial-\(UUID().uuidString).lua")
        defer { try? FileManager.default.removeItem(at: script) }
        // Each block is announced on stderr, so that a failure names the block it happened in.
        let text = blocks.enumerated().map { "io.stderr:write('-- block \($0.offset + 1)\\n')\n" + $0.element }
        try text.joined(separator: "\n").write(to: script, atomically: true, encoding: .utf8)
        let r = try run(["run", script.path], timeout: 240)
        XCTAssertEqual(r.status, 0, "stderr:\n\(r.err)")
        XCTAssertTrue(r.out.contains("Paris"), r.out)
        XCTAssertTrue(r.out.contains("tokens read"), r.out)
        XCTAssertTrue(r.out.contains("A:") && r.out.contains("B:"), r.out)
    }

    /// Runs the built refrain with `args`; a run past `timeout` seconds is killed and fails the test.
    func run(_ args: [String], timeout: Double) throws -> (status: Int32, out: String, err: String) {
        let bundle = Bundle(for: Self.self).bundleURL
        let dirs = [bundle.deletingLastPathComponent(), bundle,
                    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        let binary = dirs.map { $0.appendingPathComponent("refrain") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? dirs[0].appendingPathComponent("refrain")
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e; p.standardInput = FileHandle.nullDevice
        let outBox = Box(), errBox = Box(), group = DispatchGroup()
        try p.run()
        for (pipe, box) in [(o, outBox), (e, errBox)] {
            group.enter()
            DispatchQueue.global().async { box.data = pipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        }
        if group.wait(timeout: .now() + timeout) == .timedOut {
            p.terminate()
            XCTFail("refrain \(args) ran past \(timeout) s")
            group.wait()
        }
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: outBox.data, as: UTF8.self), String(decoding: errBox.data, as: UTF8.self))
    }
    final class Box: @unchecked Sendable { var data = Data() }
}
