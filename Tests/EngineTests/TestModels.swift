import Foundation
import XCTest

/// Locates the model files tests run against.
///
/// Models live in `$REFRAIN_HOME/models/` (`REFRAIN_HOME` defaults to `~/.cache/refrain`; `./setup.sh --all` fetches
/// them). A missing model fails the test, unless `REFRAIN_SKIP_MODEL_TESTS=1`, when it skips it.
enum TestModels {
    static let smolLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
    static let qwen25Coder = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    static let gemma3 = "gemma-3-270m-q4_k_m.gguf"
    /// The larger model (`./setup.sh --large`).
    static let qwen25Coder15 = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"

    /// The directory holding the models.
    static var directory: String {
        let env = ProcessInfo.processInfo.environment
        let home = env["REFRAIN_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/refrain")
        return (home as NSString).appendingPathComponent("models")
    }

    /// The path of a model file; a missing one throws an error that fails the test (`XCTSkip` under
    /// `REFRAIN_SKIP_MODEL_TESTS=1`).
    static func path(_ file: String) throws -> String {
        let p = (directory as NSString).appendingPathComponent(file)
        if FileManager.default.fileExists(atPath: p) { return p }
        let how = file == qwen25Coder15 ? "./setup.sh --large" : "./setup.sh --all"
        let message = "model \(file) not found at \(p) (run \(how), or set REFRAIN_HOME)"
        if ProcessInfo.processInfo.environment["REFRAIN_SKIP_MODEL_TESTS"] == "1" { throw XCTSkip(message) }
        throw TestModelMissing(message: message)    // a thrown error fails the test
    }

    /// Thrown (failing the test) when a required model or a fixture is missing.
    struct TestModelMissing: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// The path of a test fixture file, `Fixtures/<relative>`.
    static func fixture(_ relative: String) throws -> URL {
        guard let base = Bundle.module.resourceURL else { throw TestModelMissing(message: "no resource bundle") }
        let url = base.appendingPathComponent("Fixtures").appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TestModelMissing(message: "fixture \(relative) missing at \(url.path)")
        }
        return url
    }
}
