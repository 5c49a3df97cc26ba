// The Lua host as scripts use it: the Lua test files under Tests/lua run through `refrain run`, and the script
// entry points (`run`, `-e`, standard input) with their exit status and error reports.
import Foundation
import XCTest

final class LuaTests: XCTestCase {
    let cli = TestEnvironment.self

    /// Tests/lua in the source tree (this file is Tests/HostTests/LuaTests.swift).
    var luaDir: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("lua")
    }

    func run(_ args: [String], env: [String: String] = [:], stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
        try TestEnvironment.run(args, env: env, stdin: stdin)
    }

    /// The project's own scripts/ folder, for tests of the real strategies (the others get Tests/lua/scripts,
    /// whose stand-ins test `require` itself).
    var projectScripts: URL {
        luaDir.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts")
    }

    /// How many cases each Lua test file under Tests/lua defines (its `T.test` calls, all at the top level): a run
    /// must report exactly this many passed and none failed, so that a file that stops early, skips its cases or
    /// runs none fails. A change of a file's cases changes its count here.
    static let expectedCases: [String: Int] = [
        "test_batch.lua": 8,
        "test_generate.lua": 12,
        "test_harness.lua": 24,
        "test_host.lua": 4,
        "test_inspect.lua": 12,
        "test_model.lua": 8,
        "test_plot.lua": 10,
        "test_remote.lua": 18,
        "test_remote_faults.lua": 11,
        "test_remote_llamacpp.lua": 4,
        "test_remote_runner.lua": 3,
        "test_runner.lua": 14,
        "test_score_state.lua": 5,
        "test_steering.lua": 8,
        "test_strategy_echo.lua": 12,
        "test_strategy_heart.lua": 11,
        "test_strategy_metacognitive.lua": 8,
        "test_strategy_rise.lua": 6,
        "test_strategy_selection.lua": 21,
        "test_strategy_stimuli.lua": 5,
        "test_strategy_steering.lua": 3,
        // One case per results folder (docs/results/*/results.jsonl.gz), and one over them all.
        "test_results.lua": committedResultFolders() + 1,
    ]

    /// The results folders test_results.lua reads: those of docs/results with a results.jsonl.gz.
    static func committedResultFolders() -> Int {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/results")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter {
            FileManager.default.fileExists(atPath: root.appendingPathComponent($0).appendingPathComponent("results.jsonl.gz").path)
        }.count
    }

    /// The tally check.lua's `T.done()` prints: the last "N passed, M failed" line of `out`.
    static func tally(_ out: String) -> (passed: Int, failed: Int)? {
        for line in out.split(separator: "\n").reversed() {
            let w = line.split(separator: " ")
            if w.count == 4, w[1] == "passed,", w[3] == "failed", let p = Int(w[0]), let f = Int(w[2]) { return (p, f) }
        }
        return nil
    }

    /// Checks a Lua test file's run: exit status 0, and the tally `expectedCases` states for it with none failed.
    static func assertSuite(_ name: String, _ r: (status: Int32, out: String, err: String), context: String = "",
                            file: StaticString = #filePath, line: UInt = #line) {
        let report = "\(name):\n\(r.out)\n\(r.err)\(context)"
        XCTAssertEqual(r.status, 0, report, file: file, line: line)
        guard let want = expectedCases[name] else {
            return XCTFail("\(name) has no expected case count in LuaTests.expectedCases", file: file, line: line)
        }
        guard let got = tally(r.out) else {
            return XCTFail("\(name) printed no \"N passed, M failed\" tally:\n\(report)", file: file, line: line)
        }
        XCTAssertEqual(got.failed, 0, "\(name): cases failed:\n\(report)", file: file, line: line)
        XCTAssertEqual(got.passed + got.failed, want,
                       "\(name) ran \(got.passed + got.failed) cases, LuaTests.expectedCases says \(want)",
                       file: file, line: line)
    }

    /// Runs one Lua test file against the default test model, with `scripts` as REFRAIN_SCRIPTS (Tests/lua/scripts
    /// unless given); its cases report failures on stderr.
    func runLuaFile(_ name: String, args: [String] = [], scripts: URL? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws {
        let m = try cli.modelPath()
        let r = try run(["run", "--model", m, luaDir.appendingPathComponent(name).path] + args,
                        env: ["REFRAIN_SCRIPTS": (scripts ?? luaDir.appendingPathComponent("scripts")).path])
        Self.assertSuite(name, r, file: file, line: line)
    }

    /// Every Lua test file has its count, and every count its file (a new file is not left out of the check).
    func testEveryLuaFileHasItsCount() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: luaDir.path)
            .filter { $0.hasPrefix("test_") && $0.hasSuffix(".lua") }
        XCTAssertEqual(Set(files), Set(Self.expectedCases.keys))
    }

    func testModelAndTokenizer() throws { try runLuaFile("test_model.lua") }
    func testGenerateAndSample() throws { try runLuaFile("test_generate.lua") }
    func testScoreChooseAndStates() throws { try runLuaFile("test_score_state.lua") }
    func testHelpPrettyAndRequire() throws { try runLuaFile("test_host.lua", args: ["one", "two"]) }
    func testEchoStrategies() throws { try runLuaFile("test_strategy_echo.lua", scripts: projectScripts) }
    func testSelectionStrategies() throws { try runLuaFile("test_strategy_selection.lua", scripts: projectScripts) }
    func testStrategyHeart() throws { try runLuaFile("test_strategy_heart.lua", scripts: projectScripts) }
    func testStrategyStimuli() throws { try runLuaFile("test_strategy_stimuli.lua", scripts: projectScripts) }
    func testStrategySteering() throws { try runLuaFile("test_strategy_steering.lua", scripts: projectScripts) }
    func testStrategyRise() throws { try runLuaFile("test_strategy_rise.lua", scripts: projectScripts) }
    func testStrategyMetacognitive() throws { try runLuaFile("test_strategy_metacognitive.lua", scripts: projectScripts) }
    func testHarness() throws { try runLuaFile("test_harness.lua") }
    func testBatch() throws { try runLuaFile("test_batch.lua") }
    func testPlot() throws { try runLuaFile("test_plot.lua") }
    func testInspectAnalysisAndViews() throws { try runLuaFile("test_inspect.lua") }
    func testSteeringAndInterventions() throws { try runLuaFile("test_steering.lua") }
    /// The committed results (docs/results) recomputed from their own per-item lines: votes and headline accuracies.
    func testCommittedResults() throws { try runLuaFile("test_results.lua", scripts: projectScripts) }

    /// The experiment runner, run by the test file as child `refrain run` processes (this binary, this model).
    func testExperimentRunner() throws {
        try runLuaFile("test_runner.lua", args: [TestEnvironment.binary.path, try cli.modelPath()])
    }

    /// help() prints the entries the Lua-written harness registers, as it does the Swift ones; the harness
    /// loads with no model and with REFRAIN_SCRIPTS pointing nowhere (it is compiled into the binary).
    func testHarnessHelpAndLoadingAnywhere() throws {
        let env = ["REFRAIN_HOME": "/nonexistent", "REFRAIN_SCRIPTS": "/nonexistent"]
        let auc = try run(["-e", "help(lm.stats.auc)"], env: env)
        XCTAssertEqual(auc.status, 0, auc.err)
        XCTAssertTrue(auc.out.hasPrefix("lm.stats.auc(pos, neg) -> number\n\n"), auc.out)
        XCTAssertTrue(auc.out.contains("Mann-Whitney") && auc.out.contains("example:"), auc.out)
        let module = try run(["-e", "help(lm.extract)"], env: env)
        for f in ["number", "boxed", "choice", "answer"] {
            XCTAssertTrue(module.out.contains("lm.extract.\(f)("), module.out)
        }
        let overview = try run(["-e", "help()"], env: env)
        XCTAssertTrue(overview.out.contains("lm.stats ") && overview.out.contains("lm.progress("), overview.out)
        let cwd = FileManager.default.temporaryDirectory.path
        let p = Process()
        p.executableURL = TestEnvironment.binary
        p.arguments = ["-e", "print(lm.verify.numeric(lm.extract.number('#### 1,234'), 1234))"]
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        p.environment = env.merging(TestEnvironment.sanitizerOptions) { a, _ in a }
        let o = Pipe()
        p.standardOutput = o
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(String(decoding: o.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), "true\n")
    }

    /// lm.progress draws on a terminal (and test_harness.lua checks it is silent on a pipe).
    func testProgressDrawsOnATerminal() throws {
        let code = "local b = lm.progress(4, 'pty', {interval = 0}); for i = 1, 4 do b:tick() end; b:done(); print('end')"
        let t = try TerminalSession(binary: TestEnvironment.binary.path, arguments: ["-e", code],
                                    environment: ["REFRAIN_HOME": "/nonexistent", "TERM": "xterm"])
        let drawn = t.expect("end") ?? ""
        XCTAssertEqual(t.waitForExit(), 0)
        XCTAssertTrue(drawn.contains("\rpty [======>                 ] 1/4  25%"), drawn.debugDescription)
        XCTAssertTrue(drawn.contains("4/4 100%") && drawn.contains(" in 0s\u{1b}[K\r\n"), drawn.debugDescription)
    }

    func testDashEAndStdinScripts() throws {
        let m = try cli.modelPath()
        let e = try run(["--model", m, "-e", "print(lm.model:detokenize({7042}))"])
        XCTAssertEqual(e.status, 0, e.err)
        XCTAssertEqual(e.out, " Paris\n")
        let s = try run(["--model", m], stdin: "print(#lm.tokenize('The capital of France is'))\nio.write('done')")
        XCTAssertEqual(s.status, 0, s.err)
        XCTAssertEqual(s.out, "5\ndone")
        let two = try run(["-e", "x = 2", "-e", "print(x * 21)"], env: ["REFRAIN_HOME": "/nonexistent"])
        XCTAssertEqual(two.out, "42\n", two.err)
    }

    func testErrorsExitNonZeroWithTraceback() throws {
        let m = try cli.modelPath()
        let bad = try run(["--model", m, "-e", "local function f() lm.generate('x', {temprature = 0}) end f()"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.err.contains("(command line):1: generate: unknown option 'temprature' (did you mean 'temperature'?)"), bad.err)
        XCTAssertTrue(bad.err.contains("stack traceback:"), bad.err)
        XCTAssertTrue(bad.err.contains("in local 'f'") || bad.err.contains("in function 'f'"), bad.err)
        let syntax = try run(["-e", "x = = 1"], env: ["REFRAIN_HOME": "/nonexistent"])
        XCTAssertEqual(syntax.status, 1)
        XCTAssertTrue(syntax.err.contains("unexpected symbol"), syntax.err)
        let missing = try run(["run", "/nonexistent/script.lua"], env: ["REFRAIN_HOME": "/nonexistent"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.err.contains("cannot open /nonexistent/script.lua"), missing.err)
        let usage = try run(["run"])
        XCTAssertEqual(usage.status, 2)
        let exit3 = try run(["-e", "os.exit(3)"], env: ["REFRAIN_HOME": "/nonexistent"])
        XCTAssertEqual(exit3.status, 3)
    }

    func testNoModelLoaded() throws {
        let r = try run(["-e", "assert(lm.model == nil); print(select(2, pcall(lm.generate, 'hi')))"],
                        env: ["REFRAIN_HOME": "/nonexistent"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("lm.generate: no model loaded"), r.out)
    }

    func testScriptFileGetsArgs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("refrain-lua-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = dir.appendingPathComponent("args.lua")
        try "#!/usr/bin/env refrain\nprint(#arg, arg[1], arg[2], ...)\n".write(to: f, atomically: true, encoding: .utf8)
        let r = try run(["run", f.path, "a", "b c"], env: ["REFRAIN_HOME": "/nonexistent"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out, "2\ta\tb c\ta\tb c\n")
    }
}
