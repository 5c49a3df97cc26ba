// The sandbox (`--sandbox[=DIR]`) and the limits (`--memory-limit`, `--time-limit`): each thing the sandbox
// blocks, writes kept inside the folder, and each limit's error with the host going on after it.
import Foundation
import XCTest
@testable import Host

final class SandboxTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("refrain-sandbox-\(getpid())-\(name.hashValue & 0xffff)")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// A sandboxed host without a model, writing in `folder`.
    func sandboxed(folder dir: Bool = true, memory: Double? = nil, time: Double? = nil, model: Bool = false) throws -> LuaHost {
        try LuaHost(modelPath: model ? try TestEnvironment.modelPath() : nil, threads: 2,
                    sandbox: SandboxOptions(enabled: true, folder: dir ? folder.path : nil, memoryLimitMB: memory, timeLimit: time))
    }

    func assertBlocked(_ h: LuaHost, _ code: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        let e = error(h, "local _ = " + code, file: file, line: line)
        XCTAssertTrue(e.hasPrefix("stdin:1: sandbox: \(name) is blocked (refrain --sandbox)"), e, file: file, line: line)
    }

    func testCommandsAndProcessExitAreBlocked() throws {
        let h = try sandboxed()
        assertBlocked(h, "os.execute('touch /tmp/refrain-sandbox-escape')", "os.execute")
        assertBlocked(h, "os.execute()", "os.execute")
        assertBlocked(h, "io.popen('ls')", "io.popen")
        assertBlocked(h, "os.exit(3)", "os.exit")
        assertBlocked(h, "os.tmpname()", "os.tmpname")
        assertBlocked(h, "io.tmpfile()", "io.tmpfile")
        assertBlocked(h, "os.setlocale('C')", "os.setlocale")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/refrain-sandbox-escape"))
        XCTAssertEqual(h.evaluate("type(os.time()), type(os.clock()), (os.getenv('REFRAIN_NO_SUCH_VARIABLE'))"),
                       .values(["number", "number", "nil"]), "harmless os functions stay (os.getenv refuses: SandboxAttackTests)")
        // Unsandboxed, the same host code runs them.
        let free = try LuaHost(modelPath: nil, threads: 1)
        XCTAssertEqual(free.evaluate("(os.execute())"), .values(["true"]))
    }

    func testCModulesCannotLoad() throws {
        let h = try sandboxed()
        assertBlocked(h, "package.loadlib('libc.so.6', 'system')", "package.loadlib")
        XCTAssertEqual(h.evaluate("package.cpath, #package.searchers"), .values(["", "2"]))
        // A C module on package.cpath is not searched for.
        let e = error(h, "package.cpath = '/usr/lib/x86_64-linux-gnu/lua/5.4/?.so'; require 'lpeg'")
        XCTAssertTrue(error(h, "package.loadlib('libc.so.6', 'system')").contains("sandbox: package.loadlib is blocked"),
                      "as an expression (a tail call) the message has no position")
        XCTAssertTrue(e.contains("module 'lpeg' not found"), e)
        XCTAssertFalse(e.contains(".so'"), "the C searchers are gone: \(e)")
    }

    func testBinaryChunksAreRefused() throws {
        let h = try sandboxed()
        XCTAssertEqual(h.evaluate("bin = string.dump(function() return 1 end)"), .ok)
        for code in ["assert(load(bin))", "assert(load(bin, 'x', 'b'))", "assert(load(bin, 'x', 'bt', {}))"] {
            XCTAssertTrue(error(h, code).contains("attempt to load a binary chunk (mode is 't')"), code)
        }
        let chunk = folder.appendingPathComponent("bin.lua").path
        XCTAssertEqual(h.evaluate("f = io.open('\(chunk)', 'wb'); f:write(bin); f:close()"), .ok)
        XCTAssertTrue(error(h, "assert(loadfile('\(chunk)', 'b'))").contains("binary chunk"))
        XCTAssertTrue(error(h, "dofile('\(chunk)')").contains("binary chunk"))
        XCTAssertTrue(error(h, "package.path = '\(folder.path)/?.lua'; require 'bin'").contains("binary chunk"))
        // Text chunks still load, with an environment when given one.
        XCTAssertEqual(h.evaluate("load('return 1 + x', 'x', 'bt', {x = 41})()"), .values(["42"]))
        XCTAssertEqual(h.evaluate("load('return 2')()"), .values(["2"]))
        try "return {v = 7}".write(toFile: folder.appendingPathComponent("mod.lua").path, atomically: true, encoding: .utf8)
        XCTAssertEqual(h.evaluate("require('mod').v, dofile('\(folder.path)/mod.lua').v"), .values(["7", "7"]))
    }

    func testDebugIsATracebackAndGetinfoOnly() throws {
        let h = try sandboxed()
        XCTAssertEqual(h.evaluate("debug.sethook, debug.getregistry, debug.getupvalue, debug.setmetatable, debug.getlocal"),
                       .values(["nil", "nil", "nil", "nil", "nil"]))
        XCTAssertEqual(h.evaluate("package.loaded.debug == debug, type(debug.traceback()), debug.getinfo(1, 'S').short_src"),
                       .values(["true", "string", "stdin"]))
        // The count hook cannot be removed, so the time limit holds.
        let limited = try sandboxed(time: 0.2)
        XCTAssertTrue(error(limited, "(debug.sethook or function() end)() while true do end").contains("time limit of 0.2 s reached"))
    }

    func testWritesStayInsideTheFolder() throws {
        let h = try sandboxed()
        let inside = folder.appendingPathComponent("out.txt").path
        XCTAssertEqual(h.evaluate("f = assert(io.open('\(inside)', 'w')); f:write('ok'); f:close()"), .ok)
        XCTAssertEqual(try String(contentsOfFile: inside, encoding: .utf8), "ok")
        XCTAssertEqual(h.evaluate("io.open('\(inside)', 'a+'):close();"), .ok)
        for (code, path) in [("io.open('/tmp/refrain-outside-\(getpid())', 'w')", "/tmp/refrain-outside-\(getpid())"),
                             ("io.open('\(folder.path)/../escape', 'a')", "\(folder.path)/../escape"),
                             ("io.open('/etc/hostname', 'r+')", "/etc/hostname"),
                             ("io.output('/tmp/refrain-outside-\(getpid())')", "/tmp/refrain-outside-\(getpid())")] {
            let e = error(h, "local _ = " + code)
            XCTAssertTrue(e.hasPrefix("stdin:1: sandbox: writing '\(path)' is outside the sandbox folder"), e)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/refrain-outside-\(getpid())"))
        // A symbolic link inside the folder that points outside is followed before the check.
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("link").path, withDestinationPath: "/tmp")
        XCTAssertTrue(error(h, "io.open('\(folder.path)/link/x', 'w')").contains("is outside the sandbox folder"))
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("dangling").path,
                                                   withDestinationPath: "/tmp/refrain-no-such-\(getpid())")
        XCTAssertTrue(error(h, "io.open('\(folder.path)/dangling', 'w')").contains("cannot resolve"))
        // os.remove and os.rename work inside the folder only.
        XCTAssertEqual(h.evaluate("assert(os.rename('\(inside)', '\(folder.path)/moved.txt'));"), .ok)
        XCTAssertTrue(error(h, "os.rename('\(folder.path)/moved.txt', '/tmp/moved.txt')").contains("outside the sandbox folder"))
        XCTAssertTrue(error(h, "os.remove('/etc/hostname')").contains("outside the sandbox folder"))
        XCTAssertEqual(h.evaluate("assert(os.remove('\(folder.path)/moved.txt'));"), .ok)
        // Reading outside the folder needs a grant (SandboxAttackTests has the attacks).
        XCTAssertTrue(error(h, "io.open('/etc/hostname')").contains("--allow-read=/etc/hostname"))
        let reader = try LuaHost(modelPath: nil, threads: 1, sandbox: SandboxOptions(enabled: true, folder: folder.path,
                                                                                        grants: SandboxGrants(read: ["/etc/hostname"])))
        XCTAssertEqual(reader.evaluate("type(io.open('/etc/hostname')), type(io.lines('/etc/hostname'))"),
                       .values(["userdata", "function"]))
        // Relative paths are resolved against the current folder.
        let cwd = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(folder.path)
        defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
        XCTAssertEqual(h.evaluate("io.open('relative.txt', 'w'):close();"), .ok)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("relative.txt").path))
    }

    func testWithoutAFolderNoFileIsWritten() throws {
        let h = try sandboxed(folder: false)
        let e = error(h, "io.open('\(folder.path)/x', 'w')")
        XCTAssertTrue(e.contains("sandbox: writing '\(folder.path)/x' is blocked (refrain --sandbox=DIR allows writing inside DIR)"), e)
        XCTAssertEqual(h.evaluate("io.write('');"), .ok, "standard output stays")
    }

    func testMemoryLimit() throws {
        let h = try sandboxed(memory: 16)
        // Growing a table: the count hook reports the limit.
        let grow = error(h, "t = {} for i = 1, 1e8 do t[i] = i end")
        XCTAssertTrue(grow.hasPrefix("stdin:1: memory limit of 16 MB reached"), grow)
        XCTAssertEqual(h.evaluate("t = nil; collectgarbage(); return 1"), .values(["1"]), "the host goes on")
        // One allocation past the limit is refused.
        let big = error(h, "s = string.rep('x', 64 * 1024 * 1024)")
        XCTAssertTrue(big.hasPrefix("memory limit of 16 MB reached (an allocation was refused)"), big)
        // Garbage does not count: a loop making 256 MB of short-lived strings runs.
        XCTAssertEqual(h.evaluate("local k, n = string.rep('y', 1 << 16), 0 for i = 1, 256 do n = n + #k:rep(16) end return n"),
                       .values(["268435456"]))
        // Inside a script's pcall, the error can be caught.
        XCTAssertEqual(h.evaluate("(pcall(string.rep, 'x', 1 << 30))"), .values(["false"]))
        // Without a limit the same allocation succeeds.
        let free = try LuaHost(modelPath: nil, threads: 1)
        XCTAssertEqual(free.evaluate("#string.rep('x', 64 * 1024 * 1024)"), .values(["67108864"]))
    }

    func testTimeLimit() throws {
        let h = try sandboxed(time: 0.3)
        let start = Date()
        let e = error(h, "while true do end")
        XCTAssertTrue(e.hasPrefix("stdin:1: time limit of 0.3 s reached"), e)
        // The limit is wall time, checked by a Lua hook: a loaded machine delays the check by the scheduler's slices
        // (milliseconds). The bound leaves seconds for that; a limit that never fired would never return.
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertTrue(error(h, "local co = coroutine.wrap(function() while true do end end) co()").contains("time limit of 0.3 s"),
                      "coroutines inherit the hook")
        XCTAssertTrue(error(h, "while true do pcall(function() while true do end end) end").contains("time limit of 0.3 s"),
                      "catching the error does not escape the limit")
        for catcher in ["xpcall(function() while true do end end, print)",
                        "coroutine.resume(coroutine.create(function() while true do end end))"] {
            XCTAssertTrue(error(h, "while true do \(catcher) end").contains("time limit of 0.3 s"), catcher)
        }
        XCTAssertEqual(h.evaluate("pcall(error, 'x')"), .values(["false", "x"]), "other errors are caught as before")
        XCTAssertEqual(h.evaluate("1 + 1"), .values(["2"]), "each evaluation has its own time")
    }

    func testTimeLimitStopsAGeneration() throws {
        let h = try sandboxed(time: 0.5, model: true)
        let start = Date()
        let e = error(h, "r = lm.generate('Once upon a time', {max_tokens = 100000, ignore_eos = true, stream = false})")
        XCTAssertTrue(e.contains("time limit of 0.5 s reached"), e)
        // Checked between tokens (about 10 ms each on an idle machine, a few times that on a loaded one): the bound
        // leaves seconds for a loaded machine and still tells stopping at the limit from the minutes that 100,000
        // tokens take.
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        XCTAssertEqual(h.evaluate("type(lm.tokenize('hi'))"), .values(["table"]), "the host goes on")
    }

    func testCommandLine() throws {
        let env = ["REFRAIN_HOME": "/nonexistent"]
        let script = folder.appendingPathComponent("s.lua")
        try "io.open(arg[1], 'w'):write('x'):close() print('wrote') os.execute('true')\n"
            .write(to: script, atomically: true, encoding: .utf8)
        let r = try TestEnvironment.run(["run", "--sandbox=\(folder.path)/out", script.path, "\(folder.path)/out/a.txt"], env: env)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.out, "wrote\n")
        XCTAssertTrue(r.err.contains("s.lua:1: sandbox: os.execute is blocked (refrain --sandbox)"), r.err)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(folder.path)/out/a.txt"), "DIR is created")
        // Limits alone do not sandbox.
        let t = try TestEnvironment.run(["run", "--time-limit", "5", "--memory-limit=64", script.path, "\(folder.path)/b.txt"], env: env)
        XCTAssertEqual(t.status, 0, t.err)
        XCTAssertEqual(t.out, "wrote\n")
        let loop = try TestEnvironment.run(["--time-limit", "0.2", "-e", "while true do end"], env: env)
        XCTAssertEqual(loop.status, 1)
        XCTAssertTrue(loop.err.hasPrefix("refrain: (command line):1: time limit of 0.2 s reached"), loop.err)
        let mem = try TestEnvironment.run(["--sandbox", "--memory-limit", "8", "-e", "t = {} for i = 1, 1e9 do t[i] = i end"], env: env)
        XCTAssertEqual(mem.status, 1)
        XCTAssertTrue(mem.err.contains("memory limit of 8 MB reached"), mem.err)
        let bad = try TestEnvironment.run(["--time-limit", "soon", "-e", "1"], env: env)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.err.contains("--time-limit expects a number of seconds > 0, got 'soon'"), bad.err)
    }

    /// lm.fs.mkdir makes folders (with their parents) inside the sandbox folder only, the path resolved first.
    func testMakingFoldersStaysInsideTheFolder() throws {
        let h = try sandboxed()
        let dir = folder.path
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("refrain-outside-\(getpid())")
        try? FileManager.default.removeItem(at: outside)
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outside) }
        XCTAssertEqual(h.evaluate("lm.fs.mkdir('\(dir)/a/b/c'), lm.fs.mkdir('\(dir)/a/b/c'), lm.fs.mkdir('\(dir)/a/./d/')"),
                       .values(["true", "false", "true"]))
        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/a/b/c", isDirectory: &isDir) && isDir.boolValue)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/a/d"))
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/link", withDestinationPath: outside.path)
        for escape in ["\(outside.path)/x", "\(dir)/../refrain-escape-\(getpid())", "\(dir)/new/../../refrain-escape-\(getpid())",
                       "\(dir)/link/x", "/"] {
            let e = error(h, "lm.fs.mkdir('\(escape)')")
            XCTAssertTrue(e.hasPrefix("stdin:1: lm.fs.mkdir: sandbox: "), e)
            XCTAssertTrue(e.contains("is outside the sandbox folder") || e.contains("'..' after a folder that does not exist"), e)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(outside.path)/x"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.deletingLastPathComponent().appendingPathComponent("refrain-escape-\(getpid())").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/new"))
        try "x".write(toFile: "\(dir)/file", atomically: true, encoding: .utf8)
        let file = error(h, "lm.fs.mkdir('\(dir)/file')")
        XCTAssertTrue(file.hasPrefix("stdin:1: lm.fs.mkdir: '\(dir)/file' exists and is not a folder"), file)
        let under = error(h, "lm.fs.mkdir('\(dir)/file/x')")
        XCTAssertTrue(under.hasPrefix("stdin:1: lm.fs.mkdir: cannot create '\(dir)/file/x': Not a directory"), under)
        XCTAssertTrue(error(h, "lm.fs.mkdir(42)").contains("lm.fs.mkdir"))
        // Without a folder nothing is made; unsandboxed anything the user may.
        let none = try sandboxed(folder: false)
        XCTAssertTrue(error(none, "lm.fs.mkdir('\(dir)/z')").contains("lm.fs.mkdir: sandbox: writing '\(dir)/z' is blocked (refrain --sandbox=DIR allows writing inside DIR)"))
        let free = try LuaHost(modelPath: nil, threads: 1)
        XCTAssertEqual(free.evaluate("lm.fs.mkdir('\(outside.path)/y/z')"), .values(["true"]))
        XCTAssertEqual(free.evaluate("type(lm.doc(lm.fs.mkdir)), type(lm.doc('lm.fs'))"), .values(["string", "string"]))
    }

    /// The experiment runner (scripts/experiments/run.lua) runs sandboxed, writing its results inside DIR: two
    /// items, one greedy strategy, then its --report alone.
    func testExperimentRunnerInTheSandbox() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let runner = repo.appendingPathComponent("scripts/experiments/run.lua").path
        let env = ["REFRAIN_SCRIPTS": repo.appendingPathComponent("Tests/lua/scripts").path]
        let out = "\(folder.path)/x/run1"
        let r = try TestEnvironment.run(["run", "--model", try TestEnvironment.modelPath(), "--sandbox=\(folder.path)",
                                         "--time-limit", "120", runner, "--data", "arithmetic", "--n", "2", "--seed", "1",
                                         "--strategies", "g=tiny.greedy{max_tokens=4}", "--out", out], env: env, timeout: 180)
        XCTAssertEqual(r.status, 0, r.out + r.err)
        XCTAssertTrue(r.out.contains("2 items × 1 strategies") || r.out.contains("2 items × 1 strategy"), r.out)
        let lines = (try? String(contentsOfFile: "\(out)/results.jsonl", encoding: .utf8))?.split(separator: "\n") ?? []
        XCTAssertEqual(lines.count, 2, r.out + r.err)
        for f in ["results.md", "summary.json", "accuracy.svg", "run.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(f)"), f)
        }
        let report = try TestEnvironment.run(["run", "--sandbox=\(folder.path)", runner, "--report", "--out", out], env: env, timeout: 60)
        XCTAssertEqual(report.status, 0, report.out + report.err)
        XCTAssertTrue(report.out.contains("wrote \(out)/results.md"), report.out)
        // Its --out outside the folder is refused with the sandbox's message, and nothing is made there.
        let escape = FileManager.default.temporaryDirectory.appendingPathComponent("refrain-runner-escape-\(getpid())").path
        let refused = try TestEnvironment.run(["run", "--model", try TestEnvironment.modelPath(), "--sandbox=\(folder.path)", runner,
                                               "--data", "arithmetic", "--n", "1", "--strategies", "g=tiny.greedy{max_tokens=4}",
                                               "--out", escape], env: env, timeout: 60)
        XCTAssertEqual(refused.status, 1, refused.out + refused.err)
        XCTAssertTrue(refused.err.contains("lm.fs.mkdir: sandbox: writing '\(escape)' is outside the sandbox folder"), refused.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: escape))
        // A usage error ends with the runner's message alone (os.exit, which it uses outside, is blocked here).
        let usage = try TestEnvironment.run(["run", "--sandbox=\(folder.path)", runner, "--n", "1", "--out", "\(folder.path)/x/usage"], env: env, timeout: 60)
        XCTAssertEqual(usage.status, 1, usage.out + usage.err)
        XCTAssertTrue(usage.err.contains("run.lua: --data is required (arithmetic, gsm8k:PATH or jsonl:PATH)"), usage.err)
        XCTAssertFalse(usage.err.contains("os.exit is blocked"), usage.err)
    }
}

extension XCTestCase {
    /// The error `code` raises in `h`, failing the test when it raises none.
    func error(_ h: LuaHost, _ code: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        guard case .error(let e) = h.evaluate(code) else {
            XCTFail("no error from: \(code)", file: file, line: line)
            return ""
        }
        return e
    }
}
