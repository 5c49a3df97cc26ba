// Seeded fuzzing through the host: Tests/lua/fuzz_host.lua (mutated JSON into lm.json, generated values through
// encode and decode, JSON Lines files into lm.data, the model's methods called with arguments of every type) run
// by `refrain run` in the sandbox, with memory and time limits. REFRAIN_FUZZ_RUNS and REFRAIN_FUZZ_SEED as in
// EngineTests/FuzzTests.swift; REFRAIN_FUZZ_TARGETS=json,jsonl runs only those targets.
import Foundation
import XCTest

final class FuzzHostTests: XCTestCase {
    func testJSONDataReadersAndModelMethods() throws {
        let env = ProcessInfo.processInfo.environment
        let runs = env["REFRAIN_FUZZ_RUNS"] ?? "2000"
        let seed = env["REFRAIN_FUZZ_SEED"] ?? "20261129"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("refrain-fuzz-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("lua/fuzz_host.lua").path
        // An hour, or more in the long mode (about 2 ms an input per target on a busy machine).
        let limit = max(3000, (Int(runs) ?? 0) / 100)
        let r = try TestEnvironment.run(["run", "--model", try TestEnvironment.modelPath(), "--sandbox=\(dir.path)",
                                         "--memory-limit", "1024", "--time-limit", String(limit), script, runs, seed, dir.path],
                                        timeout: Double(limit + 600))
        print(r.out, terminator: "")
        XCTAssertEqual(r.status, 0, r.err)
        for target in ["json", "json-values", "jsonl", "api"] {
            XCTAssertTrue(r.out.contains("fuzz \(target): "), r.out)
        }
        for line in r.out.split(separator: "\n") where line.hasPrefix("fuzz ") {
            XCTAssertTrue(line.contains(", 0 findings,"), "\(line)\n\(r.err)")
        }
    }
}
