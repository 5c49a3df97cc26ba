import Foundation
import XCTest
@testable import Engine

final class TokenizerTests: XCTestCase {
    /// One line of a llama.cpp reference file.
    struct ReferenceLine: Decodable {
        let text: String
        let parse_special: Bool
        let ids: [Int32]
    }

    static func reference(_ folder: String) throws -> [ReferenceLine] {
        let url = try TestModels.fixture("\(folder)/tokenizer.jsonl")
        let data = try String(contentsOf: url, encoding: .utf8)
        let decoder = JSONDecoder()
        return try data.split(separator: "\n").map { try decoder.decode(ReferenceLine.self, from: Data($0.utf8)) }
    }

    /// Tokenizers are built once per model for the whole test run.
    nonisolated(unsafe) static var cache: [String: Tokenizer] = [:]
    static let cacheLock = NSLock()

    static func tokenizer(_ file: String) throws -> Tokenizer {
        let path = try TestModels.path(file)
        cacheLock.lock(); defer { cacheLock.unlock() }
        if let t = cache[file] { return t }
        let t = try Tokenizer(gguf: GGUFFile(path: path))
        cache[file] = t
        return t
    }

    func checkReference(_ file: String, _ folder: String) throws {
        let tok = try Self.tokenizer(file)
        let lines = try Self.reference(folder)
        var matched = 0
        for line in lines {
            let got = tok.encode(line.text, parseSpecial: line.parse_special)
            if got == line.ids {
                matched += 1
            } else {
                XCTFail("""
                    \(folder): \(String(reflecting: line.text)) parse_special=\(line.parse_special)
                      expected \(line.ids)
                      actual   \(got)
                    """)
            }
        }
        print("\(folder): \(matched)/\(lines.count) reference lines match llama.cpp")
        XCTAssertEqual(matched, lines.count)
    }

    func testSmolLM2Reference() throws { try checkReference(TestModels.smolLM2, "smollm2-135m-instruct-q4_1") }
    func testQwen25Reference() throws { try checkReference(TestModels.qwen25Coder, "qwen2.5-coder-0.5b-instruct-q4_k_m") }
    func testGemma3Reference() throws { try checkReference(TestModels.gemma3, "gemma-3-270m-q4_k_m") }
}
