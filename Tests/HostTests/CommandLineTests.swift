// The `refrain` executable as a user runs it: real processes, real model, output parsed back.
import Foundation
import XCTest

final class CommandLineTests: XCTestCase {
    func modelPath(_ file: String = TestEnvironment.smolLM2) throws -> String { try TestEnvironment.modelPath(file) }

    func run(_ args: [String], stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
        try TestEnvironment.run(args, stdin: stdin)
    }

    func json(_ s: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(s.utf8)) as! [String: Any]
    }

    func testTokenizeMatchesLlamaCpp() throws {
        let m = try modelPath()
        let r = try run(["tokenize", "--model", m, "The capital of France is"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "504 3575 282 4649 314")
        let s = try run(["tokenize", "--model", m, "--special", "--json", "-"], stdin: "<|im_start|>user")
        XCTAssertEqual(try json(s.out)["ids"] as? [Int], [1, 4093])
    }

    func testGreedyGenerateJSON() throws {
        let m = try modelPath()
        // The first reference prompt: llama.cpp's greedy answer is "The capital of France is Paris."
        let r = try run(["generate", "--model", m, "--json", "--temperature", "0", "--logprobs", "3",
                         "--ids", "1,4093,198,1780,314,260,3575,282,4649,47,2,198,1,520,9531,198"])
        XCTAssertEqual(r.status, 0, r.err)
        let j = try json(r.out)
        XCTAssertEqual(j["ids"] as? [Int], [504, 3575, 282, 4649, 314, 7042, 30])
        XCTAssertEqual(j["text"] as? String, "The capital of France is Paris.")
        XCTAssertEqual(j["finish"] as? String, "eos")
        let lps = j["logprobs"] as! [Double]
        XCTAssertEqual(lps.count, 7)
        XCTAssertTrue(lps.allSatisfy { $0 <= 0 })
        let top = j["top"] as! [[[String: Any]]]
        XCTAssertEqual(top[0].count, 3)
        XCTAssertEqual(top[0][0]["id"] as? Int, 504, "the chosen greedy token is the top alternative")
    }

    func testSeededSamplingIsReproducibleAcrossThreads() throws {
        let m = try modelPath()
        let args = ["generate", "--model", m, "--json", "--seed", "42", "--temperature", "1.0", "--max-tokens", "24",
                    "Once upon a time"]
        let a = try json(try run(args + ["--threads", "1"]).out)["ids"] as? [Int]
        let b = try json(try run(args + ["--threads", "2"]).out)["ids"] as? [Int]
        XCTAssertNotNil(a)
        XCTAssertEqual(a, b)
    }

    func testScore() throws {
        let m = try modelPath()
        let r = try run(["score", "--model", m, "--json", "--prefix", "The capital of France is", "--continuation", " Paris"])
        XCTAssertEqual(r.status, 0, r.err)
        let j = try json(r.out)
        let lps = j["logprobs"] as! [Double]
        XCTAssertEqual(lps.count, (j["ids"] as! [Int]).count)
        XCTAssertEqual(j["sum"] as! Double, lps.reduce(0, +), accuracy: 1e-6)
        // " Paris" should be far more likely than " Berlin" here.
        let b = try json(try run(["score", "--model", m, "--json", "--prefix", "The capital of France is", "--continuation", " Berlin"]).out)
        XCTAssertGreaterThan(j["sum"] as! Double, b["sum"] as! Double)
    }

    func testVersion() throws {
        let r = try run(["--version"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.out.hasPrefix("refrain ") && r.out.contains("Lua 5.4"), r.out)
    }

    func testClearErrors() throws {
        let bad = try run(["generate", "--model", "/nonexistent.gguf", "hi"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.err.hasPrefix("refrain: error: /nonexistent.gguf"), bad.err)
        let m = try modelPath()
        let ids = try run(["generate", "--model", m, "--ids", "1,999999"])
        XCTAssertEqual(ids.status, 1)
        XCTAssertTrue(ids.err.contains("token id 999999 at index 1 is outside the vocabulary"), ids.err)
        let opt = try run(["generate", "--bogus"])
        XCTAssertEqual(opt.status, 2)
        XCTAssertTrue(opt.err.contains("unknown option '--bogus'"), opt.err)
        let notGGUF = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-model-\(UUID()).gguf")
        try Data("this is not a model file at all.".utf8).write(to: notGGUF)
        defer { try? FileManager.default.removeItem(at: notGGUF) }
        let g = try run(["info", "--model", notGGUF.path])
        XCTAssertEqual(g.status, 1)
        XCTAssertTrue(g.err.contains("at byte 0: bad magic"), g.err)
        XCTAssertEqual(g.err.split(separator: "\n").count, 1)
    }

    func testChatNeedsATemplateOnABaseModel() throws {
        let g = try modelPath("gemma-3-270m-q4_k_m.gguf")
        let r = try run(["generate", "--model", g, "--chat", "hi"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.err.contains("has no chat template") && r.err.contains("--template NAME"), r.err)
        let t = try run(["generate", "--model", g, "--chat", "--template", "gemma", "--json", "--temperature", "0",
                         "--max-tokens", "3", "What is the capital of France?"])
        XCTAssertEqual(t.status, 0, t.err)
        // BOS, then Gemma's turn markers <start_of_turn>user ... <end_of_turn> <start_of_turn>model.
        let ids = try json(t.out)["prompt_ids"] as! [Int]
        XCTAssertEqual(Array(ids.prefix(3)), [2, 105, 2364])
        XCTAssertEqual(Array(ids.suffix(5)), [106, 107, 105, 4368, 107])
        let bad = try run(["generate", "--model", g, "--chat", "--template", "nonesuch", "hi"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.err.contains("unknown --template 'nonesuch'"), bad.err)
    }

    func testResidentMemoryAfterLoad() throws {
        // The weights are mapped, not copied: after loading, resident memory stays within the file size + 64 MiB
        // (docs/performance.md: 38 MiB for the 94 MiB file). No time is measured, and a loaded machine can only lower
        // the figure (memory pressure drops mapped pages from it; other processes add nothing to it): a test.
        let m = try modelPath()
        let r = try run(["bench", "--model", m, "--json", "--runs", "1", "--pp", "8", "--tg", "8", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.err)
        let j = try json(r.out)
        let file = j["file_bytes"] as! Int, loaded = j["rss_after_load_bytes"] as! Int
        print("resident after loading SmolLM2: \(loaded / 1_048_576) MiB (file \(file / 1_048_576) MiB)")
        XCTAssertLessThanOrEqual(loaded, file + 64 << 20)
    }
}
