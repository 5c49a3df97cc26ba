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
        _ = try TestEnvironment.modelPath()
        let blocks = TutorialTests.luaBlocks(try String(contentsOf: tutorial, encoding: .utf8))
        XCTAssertGreaterThanOrEqual(blocks.count, 5, "the tutorial's snippets")
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("tutorial-\(UUID().uuidString).lua")
        defer { try? FileManager.default.removeItem(at: script) }
        // Each block is announced on stderr, so that a failure names the block it happened in.
        let text = blocks.enumerated().map { "io.stderr:write('-- block \($0.offset + 1)\\n')\n" + $0.element }
        try text.joined(separator: "\n").write(to: script, atomically: true, encoding: .utf8)
        let r = try TestEnvironment.run(["run", script.path], timeout: 240)
        XCTAssertEqual(r.status, 0, "stderr:\n\(r.err)")
        XCTAssertTrue(r.out.contains("Paris"), r.out)
        XCTAssertTrue(r.out.contains("tokens read"), r.out)
        XCTAssertTrue(r.out.contains("A:") && r.out.contains("B:"), r.out)
    }

}
