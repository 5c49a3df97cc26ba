// What the Host tests share: the built `refrain` binary, the test models, and running the binary as a user does.
import Foundation
import XCTest

enum TestEnvironment {
    static let smolLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// The built `refrain` binary, in the build folder next to the test bundle.
    static var binary: URL {
        let bundle = Bundle(for: CommandLineTests.self).bundleURL
        let dirs = [bundle.deletingLastPathComponent(), bundle,
                    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        return dirs.map { $0.appendingPathComponent("refrain") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? dirs[0].appendingPathComponent("refrain")
    }

    /// The sanitizers' options of the test process (Tests/sanitize.sh sets them), for children started with an
    /// environment of their own: their reports then go to the report files like every other child's, and
    /// LeakSanitizer (on when ASAN_OPTIONS does not turn it off) does not make their exit status 1.
    static var sanitizerOptions: [String: String] {
        ProcessInfo.processInfo.environment.filter { ["ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"].contains($0.key) }
    }

    /// $REFRAIN_HOME/models (REFRAIN_HOME defaulting to ~/.cache/refrain).
    static var modelsDirectory: String {
        (ProcessInfo.processInfo.environment["REFRAIN_HOME"] ?? (NSHomeDirectory() + "/.cache/refrain")) + "/models"
    }

    /// A model file: a missing one fails the test (skips under REFRAIN_SKIP_MODEL_TESTS=1).
    static func modelPath(_ file: String = smolLM2) throws -> String {
        let p = modelsDirectory + "/" + file
        if !FileManager.default.fileExists(atPath: p) {
            if ProcessInfo.processInfo.environment["REFRAIN_SKIP_MODEL_TESTS"] == "1" { throw XCTSkip("no model at \(p)") }
            throw MissingModel(description: "model not found at \(p): run ./setup.sh --all")
        }
        return p
    }

    struct MissingModel: Error, CustomStringConvertible { let description: String }

    /// The run store the tests' refrain processes record into (unless a test names another): a file in the
    /// temporary folder, never the user's $REFRAIN_HOME/runs.sqlite.
    static let testStore = NSTemporaryDirectory() + "refrain-tests-\(getpid()).sqlite"

    /// Runs refrain with `args`, extra environment variables and standard input; a run past `timeout` seconds is
    /// killed and fails the test (a hung process must not hang the suite).
    static func run(_ args: [String], env: [String: String] = [:], stdin: String? = nil,
                    timeout: Double = 300) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(["REFRAIN_STORE": testStore]) { $1 }.merging(env) { $1 }
        let o = Pipe(), e = Pipe(), i = Pipe()
        p.standardOutput = o; p.standardError = e; p.standardInput = i
        let outBox = Box(), errBox = Box(), group = DispatchGroup()
        try p.run()
        for (pipe, box) in [(o, outBox), (e, errBox)] {
            group.enter()
            DispatchQueue.global().async { box.data = pipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        }
        if let s = stdin { i.fileHandleForWriting.write(Data(s.utf8)) }
        try i.fileHandleForWriting.close()
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
