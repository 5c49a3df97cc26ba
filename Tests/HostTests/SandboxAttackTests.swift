// The sandbox against a script written to steal (docs/reliability.md, "The sandbox"): reading outside the grants,
// reaching the network, reading the environment, escaping through the debug library, load, string.dump,
// coroutines, the string metatable and finalizers, and the lm functions that touch files, sockets and the run
// store. Each attack must be refused with the permission that would grant it, and each granted path must still
// work. Loopback listeners prove that no byte of a refused request arrives.
import Foundation
import XCTest
@testable import Host

final class SandboxAttackTests: XCTestCase {
    var folder: URL!      // the sandbox folder, DIR
    var secrets: URL!     // a folder outside every grant, with a secret in it

    override func setUpWithError() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("refrain-attack-\(getpid())-\(name.hashValue & 0xffff)")
        try? FileManager.default.removeItem(at: base)
        folder = base.appendingPathComponent("dir")
        secrets = base.appendingPathComponent("secrets")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: secrets, withIntermediateDirectories: true)
        try "TOPSECRET".write(to: secrets.appendingPathComponent("key.txt"), atomically: true, encoding: .utf8)
        try "return 'TOPSECRET'".write(to: secrets.appendingPathComponent("mod.lua"), atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder.deletingLastPathComponent())
    }

    var secret: String { secrets.appendingPathComponent("key.txt").path }

    func host(grants: SandboxGrants = SandboxGrants(), script: String? = nil, model: Bool = false,
              tokens: Int? = nil, calls: Int? = nil) throws -> LuaHost {
        try LuaHost(modelPath: model ? try TestEnvironment.modelPath() : nil, threads: 1,
                    sandbox: SandboxOptions(enabled: true, folder: folder.path, grants: grants, script: script,
                                            maxModelTokens: tokens, maxModelCalls: calls))
    }

    /// `code` is refused with `permission` named in the error, and the secret's text does not come back.
    func assertRefused(_ h: LuaHost, _ code: String, _ permission: String, file: StaticString = #filePath, line: UInt = #line) {
        let e = error(h, code, file: file, line: line)
        XCTAssertTrue(e.contains(permission), "\(code): \(e)", file: file, line: line)
        XCTAssertFalse(e.contains("TOPSECRET"), "\(code): \(e)", file: file, line: line)
    }

    // MARK: - Reading

    func testReadingOutsideTheGrantsIsRefused() throws {
        let h = try host()
        let dir = folder.path, s = secret, sdir = secrets.path
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/link", withDestinationPath: s)
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/dirlink", withDestinationPath: sdir)
        let read = "--allow-read="
        for code in ["io.open('\(s)')", "io.open('\(s)', 'r')", "io.open('\(s)', 'rb')", "io.lines('\(s)')",
                     "io.input('\(s)')", "loadfile('\(sdir)/mod.lua')", "dofile('\(sdir)/mod.lua')",
                     "io.open('\(dir)/../secrets/key.txt')", "io.open('\(dir)/link')", "io.open('\(dir)/dirlink/key.txt')",
                     "io.open('/proc/self/environ')", "io.open('/proc/self/cmdline')", "io.open('/proc/self/mem')",
                     "io.open('/etc/passwd')", "io.open('/')", "io.open('\(NSHomeDirectory())/.bash_history')",
                     "io.open(12345)", "io.open('\(sdir)/no-such-file')",
                     "lm.data.jsonl('\(s)')", "lm.data.gsm8k('\(s)')",
                     "os.rename('\(s)', '\(dir)/stolen.txt')"] {
            assertRefused(h, code, code.hasPrefix("os.rename") ? "outside the sandbox folder" : read)
        }
        // A NUL byte: C would open the part before it, whatever the part after it resolves to.
        for code in ["io.open('\(s)\\0/../../dir/x')", "io.open('\(s)\\0')", "io.open('\(dir)/x\\0/../../secrets/key.txt')",
                     "io.open('/etc/passwd\\0x', 'w')", "lm.fs.mkdir('/tmp/x\\0/../\(dir)/y')"] {
            let e = error(h, code)
            XCTAssertTrue(e.contains("NUL byte is refused") || e.contains("--allow-read="), "\(code): \(e)")
        }
        // A file that exists and one that does not are refused alike (no existence oracle).
        let there = error(h, "io.open('\(s)')"), missing = error(h, "io.open('\(sdir)/none.txt')")
        XCTAssertEqual(there.replacingOccurrences(of: "key.txt", with: "X"), missing.replacingOccurrences(of: "none.txt", with: "X"))
        // require and package.searchpath try only readable files.
        assertRefused(h, "package.path = '\(sdir)/?.lua'; return require 'mod'", "not readable in the sandbox: --allow-read")
        guard case .values(let v) = h.evaluate("package.searchpath('key', '\(sdir)/?.txt')") else { return XCTFail() }
        XCTAssertEqual(v.first, "nil")
        XCTAssertTrue(v.count == 2 && v[1].contains("not readable in the sandbox"), "\(v)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/stolen.txt"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: s))
    }

    func testGrantedReadsWork() throws {
        let dir = folder.path
        // DIR itself, read and written.
        let h = try host()
        XCTAssertEqual(h.evaluate("local f = io.open('\(dir)/a.txt', 'w'); f:write('hi'); f:close(); return io.open('\(dir)/a.txt'):read('a')"),
                       .values(["hi"]))
        XCTAssertEqual(h.evaluate("local n = 0 for _ in io.lines('\(dir)/a.txt') do n = n + 1 end return n"), .values(["1"]))
        try #"{"x": 1}"#.write(toFile: "\(dir)/d.jsonl", atomically: true, encoding: .utf8)
        XCTAssertEqual(h.evaluate("lm.data.jsonl('\(dir)/d.jsonl')[1].x"), .values(["1"]), "lm.data reads inside the grants")
        // The project's strategy library (package.path's scripts folder) loads with require.
        XCTAssertEqual(h.evaluate("type(require 'strategies.selection')"), .values(["table"]))
        // The script's own folder: with a script there, its neighbours are readable.
        let scriptDir = folder.deletingLastPathComponent().appendingPathComponent("project")
        try FileManager.default.createDirectory(at: scriptDir, withIntermediateDirectories: true)
        try "return 7".write(to: scriptDir.appendingPathComponent("helper.lua"), atomically: true, encoding: .utf8)
        let withScript = try host(script: scriptDir.appendingPathComponent("main.lua").path)
        XCTAssertEqual(withScript.evaluate("dofile('\(scriptDir.path)/helper.lua')"), .values(["7"]))
        assertRefused(withScript, "io.open('\(secret)')", "--allow-read=")
        // ... but not when the script sits in the home folder (or above it): that would grant every file.
        let home = try host(script: NSHomeDirectory() + "/experiment.lua")
        let homeReal = LuaHost.realPath(NSHomeDirectory()) ?? NSHomeDirectory()
        XCTAssertFalse(home.access.readRoots!.contains { homeReal == $0 || LuaHost.inside(homeReal, $0) }, "\(home.access.readRoots!)")
        let root = try host(script: "/x.lua")
        XCTAssertFalse(root.access.readRoots!.contains("/"))
        // --allow-read grants a folder (everything under it) or a file.
        let granted = try host(grants: SandboxGrants(read: [secrets.path]))
        XCTAssertEqual(granted.evaluate("io.open('\(secret)'):read('a')"), .values(["TOPSECRET"]))
        XCTAssertEqual(granted.evaluate("package.path = '\(secrets.path)/?.lua'; return (require 'mod')"), .values(["TOPSECRET"]))
        let file = try host(grants: SandboxGrants(read: [secret]))
        XCTAssertEqual(file.evaluate("io.open('\(secret)'):read('a')"), .values(["TOPSECRET"]))
        assertRefused(file, "io.open('\(secrets.path)/mod.lua')", "--allow-read=")
        // A bare --allow-read reads everything.
        let all = try host(grants: SandboxGrants(read: nil))
        XCTAssertEqual(all.evaluate("io.open('\(secret)'):read('a')"), .values(["TOPSECRET"]))
    }

    func testModelFilesAndTheirInfo() throws {
        let h = try host(model: true)
        let model = try TestEnvironment.modelPath()
        // The model the host loaded is readable; another path through lm.load or info.path is not.
        XCTAssertEqual(h.evaluate("io.open(lm.model.info.path, 'rb'):read(4)"), .values(["GGUF"]))
        XCTAssertEqual(h.evaluate("lm.load('\(model)').info.arch"), .values(["llama"]))
        XCTAssertEqual(h.evaluate("lm.load('\(TestEnvironment.smolLM2)').info.arch"), .values(["llama"]), "a name under $REFRAIN_HOME/models")
        assertRefused(h, "lm.load('\(secret)')", "--allow-read=")
        assertRefused(h, "lm.load('\(folder.path)/../secrets/key.txt')", "--allow-read=")
        assertRefused(h, "local info = lm.load('\(model)').info; info.path = '\(secret)'; return info.sha256", "--allow-read=")
    }

    // MARK: - Escapes

    func testEscapesThroughTheLanguageAreClosed() throws {
        let h = try host()
        let s = secret
        // Replacing what the sandbox's own code calls changes nothing: it captured them when it was installed.
        XCTAssertEqual(h.evaluate("string.find = function() return nil end; string.gsub = function(x) return x end; type = function() return 'table' end; tostring = function() return '/tmp' end"), .ok)
        assertRefused(h, "io.open('\(s)')", "--allow-read=")
        assertRefused(h, "io.open('/tmp/refrain-escape-\(getpid())', 'w')", "outside the sandbox folder")
        let h2 = try host()
        XCTAssertEqual(h2.evaluate("getmetatable('').__index = setmetatable({find = function() end}, {__index = string})"), .ok)
        assertRefused(h2, "io.open('/tmp/refrain-escape-\(getpid())', 'w')", "outside the sandbox folder")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/refrain-escape-\(getpid())"))
        let e = try host()
        // The debug library has no upvalues, locals, registry, hooks or metatables, and getinfo hands out no function.
        XCTAssertEqual(e.evaluate("debug.getupvalue, debug.getregistry, debug.sethook, debug.getlocal, debug.setmetatable, debug.upvalueid"),
                       .values(["nil", "nil", "nil", "nil", "nil", "nil"]))
        XCTAssertEqual(e.evaluate("debug.getinfo(io.open, 'f').func, debug.getinfo(1).func, debug.getinfo(1, 'fS').short_src"),
                       .values(["nil", "nil", "stdin"]))
        // A message handler or a finalizer runs with the library's C functions on the stack: none is handed out.
        XCTAssertEqual(e.evaluate("""
            local found = 0
            local function grab() for l = 1, 12 do local i = debug.getinfo(l, 'f'); if i and i.func then found = found + 1 end end end
            xpcall(function() io.open('\(s)') end, grab)
            for i = 1, 2000 do setmetatable({}, {__gc = grab}); pcall(io.open, '\(s)') end
            collectgarbage(); collectgarbage()
            return found
            """), .values(["0"]))
        // load with its own environment, string.dump and binary chunks, coroutines: the same wrapped library.
        assertRefused(e, "load(\"return io.open('\(s)')\", 'x', 't', {io = io})()", "--allow-read=")
        assertRefused(e, "load(\"return require('io').open('\(s)')\", 'x', 't', setmetatable({}, {__index = _G}))()", "--allow-read=")
        assertRefused(e, "package.loaded.io.open('\(s)')", "--allow-read=")
        XCTAssertEqual(e.evaluate("load(string.dump(function() return 1 end), 'x', 'b')"),
                       .values(["nil", "attempt to load a binary chunk (mode is 't')"]))
        assertRefused(e, "coroutine.wrap(function() return io.open('\(s)') end)()", "--allow-read=")
        assertRefused(e, "local co = coroutine.create(function() coroutine.yield(); return io.lines('\(s)') end); coroutine.resume(co); local ok, err = coroutine.resume(co); error(err)", "--allow-read=")
        // The lm functions that write files: charts, folders, locks.
        for code in ["lm.plot.bars({{label = 'a', value = 1}}, {file = '/tmp/refrain-escape-\(getpid()).svg'})",
                     "lm.fs.mkdir('/tmp/refrain-escape-\(getpid())')", "lm.fs.lock('/tmp/refrain-escape-\(getpid())')"] {
            assertRefused(e, code, "outside the sandbox folder")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/refrain-escape-\(getpid()).svg"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/refrain-escape-\(getpid())"))
        // C code stays out: no loadlib, no C searchers, no io.popen.
        XCTAssertTrue(error(e, "package.loadlib('libc.so.6', 'system')").contains("package.loadlib is blocked"))
        XCTAssertTrue(error(e, "io.popen('cat \(s)')").contains("io.popen is blocked"))
    }

    // MARK: - The environment

    func testEnvironmentIsRefusedUnlessGranted() throws {
        setenv("REFRAIN_TEST_SECRET", "TOPSECRET", 1)
        defer { unsetenv("REFRAIN_TEST_SECRET") }
        let h = try host()
        XCTAssertEqual(h.evaluate("os.getenv('REFRAIN_TEST_SECRET')"),
                       .values(["nil", "sandbox: reading the environment variable REFRAIN_TEST_SECRET is refused (grant it with --allow-env=REFRAIN_TEST_SECRET)"]))
        XCTAssertEqual(h.evaluate("(os.getenv('HOME'))"), .values(["nil"]))
        assertRefused(h, "io.open('/proc/self/environ')", "--allow-read=")
        assertRefused(h, "lm.http({url = 'http://127.0.0.1:1/'}, {api_key_env = 'REFRAIN_TEST_SECRET', retries = 0})", "--allow-")
        let granted = try host(grants: SandboxGrants(env: ["REFRAIN_TEST_SECRET"]))
        XCTAssertEqual(granted.evaluate("os.getenv('REFRAIN_TEST_SECRET')"), .values(["TOPSECRET"]))
        XCTAssertEqual(granted.evaluate("(os.getenv('HOME'))"), .values(["nil"]))
        let all = try host(grants: SandboxGrants(env: nil))
        XCTAssertEqual(all.evaluate("os.getenv('REFRAIN_TEST_SECRET')"), .values(["TOPSECRET"]))
    }

    // MARK: - The network

    func testNetworkIsRefusedAndNoByteArrives() throws {
        let refused = try Listener()
        let granted = try Listener(response: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        let v6 = try? Listener(ipv6: true)
        defer { refused.stop(); granted.stop(); v6?.stop() }
        let R = refused.port, G = granted.port
        // The granted server redirects to the refused one: http:// never follows a redirect.
        let redirector = try Listener(response: "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:\(R)/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        defer { redirector.stop() }
        let h = try host(grants: SandboxGrants(net: ["127.0.0.1:\(G)", "127.0.0.1:\(redirector.port)"]))
        let attacks = [
            "http://127.0.0.1:\(R)/", "http://localhost:\(R)/", "http://localhost:\(G)/", "http://LOCALHOST:\(G)/",
            "http://127.1:\(G)/", "http://0x7f000001:\(G)/", "http://2130706433:\(G)/", "http://127.0.0.1.:\(G)/",
            "http://[::1]:\(G)/", "http://[::ffff:127.0.0.1]:\(G)/", "http://[0:0:0:0:0:0:0:1]:\(R)/",
            "http://127.0.0.1:\(G)@127.0.0.1:\(R)/", "http://evil#@127.0.0.1:\(R)/", "https://127.0.0.1:\(R)/",
            "https://127.0.0.1:\(G)@127.0.0.1:\(R)/",
        ] + (v6.map { ["http://[::1]:\($0.port)/"] } ?? [])
        for url in attacks {
            let e = error(h, "lm.http({url = '\(url)', body = 'TOPSECRET'}, {retries = 0, timeout = 2})")
            XCTAssertTrue(e.contains("--allow-net=") || e.contains("has no usable host"), "\(url): \(e)")
        }
        // A list with one refused request sends none of them.
        assertRefused(h, "lm.http({{url = 'http://127.0.0.1:\(G)/a'}, {url = 'http://127.0.0.1:\(R)/b', body = 'TOPSECRET'}}, {retries = 0})", "--allow-net=127.0.0.1:\(R)")
        // lm.remote goes through lm.http.
        assertRefused(h, "local r = lm.remote{url = 'http://127.0.0.1:\(R)/v1', model = 'x'}; return r:generate('TOPSECRET', {max_tokens = 1})", "--allow-net=127.0.0.1:\(R)")
        XCTAssertEqual(granted.connections, 0, "no request of the refused list went out")
        // The redirect comes back as the response; nothing reaches its target.
        XCTAssertEqual(h.evaluate("lm.http({url = 'http://127.0.0.1:\(redirector.port)/'}, {retries = 0}).status"), .values(["302"]))
        // https:// goes through URLSession, which follows redirects: only to a granted host (sent here over http://,
        // the same code path without the TLS).
        let toGranted = try Listener(response: "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:\(G)/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        defer { toGranted.stop() }
        let check = try XCTUnwrap(h.redirectCheck)
        XCTAssertThrowsError(try HTTPClient.sendWithURLSession(method: "POST", url: "http://127.0.0.1:\(redirector.port)/", headers: [],
                                                               body: Data("TOPSECRET".utf8), timeout: 5, allow: check)) { e in
            XCTAssertTrue("\(e)".contains("redirect to http://127.0.0.1:\(R)/steal: sandbox: connecting to 127.0.0.1:\(R) is refused (grant it with --allow-net=127.0.0.1:\(R))"), "\(e)")
        }
        let followed = try HTTPClient.sendWithURLSession(method: "GET", url: "http://127.0.0.1:\(toGranted.port)/", headers: [],
                                                         body: nil, timeout: 5, allow: check)
        XCTAssertEqual(followed.status, 200)
        XCTAssertEqual(String(decoding: followed.body, as: UTF8.self), "ok")
        XCTAssertEqual(granted.connections, 1, "the redirect to the granted host was followed")
        // The grant works.
        XCTAssertEqual(h.evaluate("lm.http({url = 'http://127.0.0.1:\(G)/'}, {retries = 0}).body"), .values(["ok"]))
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertEqual(granted.connections, 2)
        XCTAssertEqual(redirector.connections, 2)
        XCTAssertEqual(refused.connections, 0, "a refused request reached the listener")
        XCTAssertEqual(refused.bytes, 0)
        XCTAssertEqual(v6?.connections ?? 0, 0)
        // A host grant without a port allows every port of that host (and only that spelling).
        let anyPort = try host(grants: SandboxGrants(net: ["127.0.0.1"]))
        XCTAssertEqual(anyPort.evaluate("lm.http({url = 'http://127.0.0.1:\(G)/'}, {retries = 0}).status"), .values(["200"]))
        XCTAssertTrue(error(anyPort, "lm.http({url = 'http://localhost:\(R)/'}, {retries = 0})").contains("--allow-net=localhost:\(R)"))
        XCTAssertEqual(refused.connections, 0)
    }

    // MARK: - The run store

    func testTheStoreStaysTheHosts() throws {
        let store = folder.deletingLastPathComponent().appendingPathComponent("store.sqlite").path
        // Another experiment's calls and results, written by a run outside the sandbox.
        let s = try RunStore(path: store)
        let victimRun = try s.addRun(RunStore.RunInfo(script: "victim.lua", engine: "test"))
        var call = CallRecord(kind: "generate", model: "m", prompt: "p", promptIDs: [1], options: "{}", started: Date(), seconds: 0)
        call.outputs = [CallOutput(text: "TOPSECRET")]
        _ = try s.addCall(call, labels: CallLabels(experiment: "victim", item: "1", strategy: "g"), run: victimRun)
        try s.putResult(experiment: "victim", item: "1", strategy: "g", data: #"{"correct":false}"#, run: victimRun)

        let h = try host(model: true)
        h.openStore(path: store, script: "attack.lua", args: [])
        assertRefused(h, "lm.store.results{experiment = 'victim'}", "sandbox: the experiment 'victim'")
        assertRefused(h, "lm.store.put_result{experiment = 'victim', item = '1', strategy = 'g', data = '{\"correct\":true}'}", "sandbox: the experiment 'victim'")
        assertRefused(h, "lm.store.label{experiment = 'victim'}", "sandbox: the experiment 'victim'")
        assertRefused(h, "lm.store.with({experiment = 'victim'}, function() end)", "sandbox: the experiment 'victim'")
        assertRefused(h, "lm.generate_batch({{prompt = 'x', opts = {max_tokens = 1}, labels = {experiment = 'victim'}}})", "sandbox: the experiment 'victim'")
        assertRefused(h, "lm.store.enabled(false)", "always recorded")
        // The store's file itself is neither readable nor writable.
        assertRefused(h, "io.open('\(store)', 'rb')", "--allow-read=")
        assertRefused(h, "io.open('\(store)', 'r+b')", "outside the sandbox folder")
        XCTAssertEqual(h.evaluate("#lm.store.calls{}, #lm.store.calls{experiment = 'victim'}, #lm.store.calls{run = \(victimRun)}"),
                       .values(["0", "0", "0"]))
        // Its own experiment: labels work, and a result is kept only for a pair this run made calls for.
        assertRefused(h, "lm.store.put_result{experiment = 'mine', item = '1', strategy = 'g', data = '{}'}", "made no calls labelled")
        XCTAssertEqual(h.evaluate("lm.store.with({experiment = 'mine', item = '1', strategy = 'g'}, function() return lm.generate('Hi', {max_tokens = 2}).text ~= nil end)"),
                       .values(["true"]))
        XCTAssertEqual(h.evaluate("lm.store.put_result{experiment = 'mine', item = '1', strategy = 'g', data = '{}'}"), .values(["true"]))
        XCTAssertEqual(h.evaluate("#lm.store.calls{}, lm.store.results{experiment = 'mine'}[1].calls"), .values(["1", "1"]))
        // The victim's result is untouched.
        XCTAssertEqual(try s.results(experiment: "victim").map(\.data), [#"{"correct":false}"#])
        // A second run in the same sandbox folder may go on with 'mine' (a resumed experiment); one in another
        // folder may not.
        let again = try host()
        again.openStore(path: store, script: "again.lua", args: [])
        XCTAssertEqual(again.evaluate("#lm.store.results{experiment = 'mine'}"), .values(["1"]))
        let other = try LuaHost(modelPath: nil, threads: 1, sandbox: SandboxOptions(enabled: true, folder: secrets.path))
        other.openStore(path: store, script: "other.lua", args: [])
        assertRefused(other, "lm.store.results{experiment = 'mine'}", "sandbox: the experiment 'mine'")
        XCTAssertEqual(other.evaluate("#lm.store.calls{}"), .values(["0"]))
        // Outside the sandbox, results carry their call count (the runner restores only results with calls).
        let free = try LuaHost(modelPath: nil, threads: 1)
        free.openStore(path: store, script: "free.lua", args: [])
        try s.putResult(experiment: "victim", item: "2", strategy: "g", data: "{}", run: nil)
        XCTAssertEqual(free.evaluate("local r = lm.store.results{experiment = 'victim'}; return r[1].calls, r[2].calls"), .values(["1", "0"]))
        // ... and a mark when a sandboxed run wrote them (a sandbox may have claimed a name another run uses later).
        XCTAssertEqual(free.evaluate("local r = lm.store.results{experiment = 'mine'}; return r[1].calls, r[1].sandboxed"), .values(["1", "true"]))
        XCTAssertEqual(again.evaluate("lm.store.results{experiment = 'mine'}[1].sandboxed"), .values(["nil"]), "not within its own sandbox")
    }

    /// The runner restores from the store only results its calls back: a result forged into the store (by an
    /// older refrain's sandbox, or by hand) is run again, with a warning.
    func testRunnerRefusesResultsWithoutCalls() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let runner = repo.appendingPathComponent("scripts/experiments/run.lua").path
        let store = folder.deletingLastPathComponent().appendingPathComponent("runner.sqlite").path
        let s = try RunStore(path: store)
        let forged = #"{"item":"arith-1","strategy":"g","correct":true,"answer":0,"gold":0,"index":1,"seed":1001000,"seed_base":1,"seed_set":1,"model":"SmolLM2-135M-Instruct.Q4_1.gguf"}"#
        try s.putResult(experiment: "forged", item: "arith-1", strategy: "g", data: forged, run: nil)
        let env = ["REFRAIN_SCRIPTS": repo.appendingPathComponent("Tests/lua/scripts").path, "REFRAIN_STORE": store]
        let out = "\(folder.path)/run"
        let r = try TestEnvironment.run(["run", "--model", try TestEnvironment.modelPath(), runner, "--data", "arithmetic", "--n", "1",
                                         "--seed", "1", "--strategies", "g=tiny.greedy{max_tokens=4}", "--experiment", "forged",
                                         "--out", out], env: env, timeout: 120)
        XCTAssertEqual(r.status, 0, r.out + r.err)
        XCTAssertTrue(r.err.contains("1 results the run store holds for experiment forged have no calls under their labels"), r.err)
        XCTAssertFalse(r.out.contains("restored"), r.out)
        XCTAssertTrue(r.out.contains("1 to run"), r.out)
    }

    // MARK: - Resources, the command line, the REPL

    func testModelTokenAndCallLimits() throws {
        let h = try host(model: true, tokens: 5)
        let e = error(h, "lm.generate('Count: 1, 2, 3,', {max_tokens = 20, ignore_eos = true})")
        XCTAssertTrue(e.contains("model token limit of 5 generated tokens reached (--max-model-tokens)"), e)
        XCTAssertTrue(error(h, "lm.score('a', 'b')").contains("model token limit of 5"))
        let c = try host(model: true, calls: 2)
        XCTAssertEqual(c.evaluate("lm.generate('Hi', {max_tokens = 1}) ~= nil, lm.score('a', 'b') ~= nil"), .values(["true", "true"]))
        XCTAssertTrue(error(c, "lm.sample('Hi', 2, {max_tokens = 1})").contains("sample: model call limit of 2 calls reached (--max-model-calls)"))
        let b = try host(model: true, calls: 3)
        XCTAssertTrue(error(b, "lm.generate_batch({{prompt = 'a'}, {prompt = 'b'}, {prompt = 'c'}, {prompt = 'd'}})").contains("model call limit of 3"))
    }

    func testCommandLineGrants() throws {
        let env = ["REFRAIN_HOME": "/nonexistent"]
        let dir = folder.path, s = secret
        let refused = try TestEnvironment.run(["--sandbox=\(dir)", "-e", "print(io.open('\(s)'):read('a'))"], env: env)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.err.contains("sandbox: reading '\(s)' is refused (grant it with --allow-read=\(s))"), refused.err)
        let granted = try TestEnvironment.run(["--sandbox=\(dir)", "--allow-read=\(secrets.path),/etc/hostname", "-e", "print(io.open('\(s)'):read('a'))"], env: env)
        XCTAssertEqual(granted.status, 0, granted.err)
        XCTAssertEqual(granted.out, "TOPSECRET\n")
        // A grant alone means a sandbox; a bare grant means everything of its kind.
        let alone = try TestEnvironment.run(["--allow-net=example.com", "-e", "print(os.execute())"], env: env)
        XCTAssertTrue(alone.err.contains("os.execute is blocked"), alone.err)
        let bare = try TestEnvironment.run(["--allow-read", "--allow-env", "-e", "print(io.open('\(s)'):read('a'), os.getenv('HOME') ~= nil)"], env: env)
        XCTAssertEqual(bare.out, "TOPSECRET\ttrue\n", bare.err)
        for (flag, message) in [("--allow-net=http://x/", "is not HOST[:PORT]"), ("--allow-net=::1", "in brackets"),
                                ("--allow-net=a:99999", "out of range"), ("--allow-read=a,,b", "empty entry"),
                                ("--max-model-tokens=0", "--max-model-tokens expects an integer ≥ 1")] {
            let r = try TestEnvironment.run([flag, "-e", "1"], env: env)
            XCTAssertEqual(r.status, 2, flag)
            XCTAssertTrue(r.err.contains(message), "\(flag): \(r.err)")
        }
        // refrain run: the script's folder is readable, and --max-model-calls holds.
        let project = folder.deletingLastPathComponent().appendingPathComponent("project")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
        try "return 'helper'".write(to: project.appendingPathComponent("helper.lua"), atomically: true, encoding: .utf8)
        try "print(dofile(arg[0]:match('(.*/)') .. 'helper.lua')) print(pcall(io.open, arg[1]))"
            .write(to: project.appendingPathComponent("main.lua"), atomically: true, encoding: .utf8)
        let run = try TestEnvironment.run(["run", "--sandbox=\(dir)", project.appendingPathComponent("main.lua").path, s], env: env)
        XCTAssertEqual(run.status, 0, run.err)
        XCTAssertTrue(run.out.hasPrefix("helper\nfalse\tsandbox: reading '\(s)' is refused"), run.out)
    }

    func testREPLKeepsTheRules() throws {
        let h = try host()
        // :set changes generation defaults only: nothing of the sandbox.
        for option in ["sandbox", "allow_read", "allow-net", "allow_env"] {
            XCTAssertThrowsError(try h.set(option: option, value: "/"), option)
        }
        assertRefused(h, "io.open('\(secret)')", "--allow-read=")
        XCTAssertTrue(h.readablePath(secret).isFailure, ":load reads through the same check")
    }
}

private extension Result {
    var isFailure: Bool { if case .failure = self { return true } else { return false } }
}

/// A TCP listener on loopback that counts connections and bytes, answering each connection with `response`.
final class Listener: @unchecked Sendable {
    let fd: Int32
    let port: Int
    private let lock = NSLock()
    private var counts = (connections: 0, bytes: 0)
    private var running = true
    private let response: String

    var connections: Int { lock.withLock { counts.connections } }
    var bytes: Int { lock.withLock { counts.bytes } }

    init(ipv6: Bool = false, response: String = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n") throws {
        self.response = response
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var bound: Int32
        if ipv6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_addr = in6addr_loopback
            bound = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            bound = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard bound == 0, listen(fd, 64) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = withUnsafePointer(to: &storage) { p -> Int in
            ipv6 ? Int(UInt16(bigEndian: p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }))
                 : Int(UInt16(bigEndian: p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }))
        }
        self.fd = fd
        self.port = port
        Thread.detachNewThread { [self] in serve() }
    }

    private func serve() {
        while lock.withLock({ running }) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let c = accept(fd, nil, nil)
            if c < 0 { continue }
            lock.withLock { counts.connections += 1 }
            var buf = [UInt8](repeating: 0, count: 65536)
            var got = Data()
            while !got.contains(Data("\r\n\r\n".utf8)) {
                var q = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
                guard poll(&q, 1, 1000) > 0 else { break }
                let n = read(c, &buf, buf.count)
                if n <= 0 { break }
                got.append(contentsOf: buf[0..<n])
                lock.withLock { counts.bytes += n }
            }
            _ = response.withCString { write(c, $0, strlen($0)) }
            close(c)
        }
    }

    func stop() {
        lock.withLock { running = false }
        Thread.sleep(forTimeInterval: 0.1)
        close(fd)
    }
}
