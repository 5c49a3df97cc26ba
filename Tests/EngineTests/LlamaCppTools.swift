// What the tests against llama.cpp share: its tools under $REFRAIN_HOME (./setup.sh --llama-cpp), a missing one
// failing the test unless REFRAIN_SKIP_LLAMACPP_TESTS=1, and running them.
import Foundation
import XCTest

protocol LlamaCppTools {}

extension LlamaCppTools {
    var home: String {
        ProcessInfo.processInfo.environment["REFRAIN_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/refrain")
    }

    func tool(_ path: String) throws -> String {
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        let message = "\(path) is missing: run ./setup.sh --llama-cpp (or set REFRAIN_SKIP_LLAMACPP_TESTS=1 to skip)"
        if ProcessInfo.processInfo.environment["REFRAIN_SKIP_LLAMACPP_TESTS"] == "1" { throw XCTSkip(message) }
        throw TestModels.TestModelMissing(message: message)
    }

    /// Runs `exe args` with `input` on standard input; its standard output, or an error with its standard error.
    func run(_ exe: String, _ args: [String], input: String = "") throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        p.standardInput = stdin; p.standardOutput = stdout; p.standardError = stderr
        try p.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw TestModels.TestModelMissing(message: "\(exe) failed (\(p.terminationStatus)): \(String(decoding: err, as: UTF8.self))")
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A script of Tests/tools.
    func testTool(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools").appendingPathComponent(name).path
    }
}
