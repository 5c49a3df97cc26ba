// The remote backend and `refrain serve`, end to end on 127.0.0.1: the Lua tests in Tests/lua/test_remote*.lua run
// with `lm.remote` against `refrain serve` on the default model, against a misbehaving fake server
// (Tests/tools/fake_openai.py), and against llama.cpp's own server (llama-cpp-python's, from ./setup.sh
// --llama-cpp; skipped with a message when that is not installed). Every server is started here on a free port
// and stopped when its test ends, and every wait is bounded.
import Foundation
import XCTest
import Engine
@testable import Host

final class ServeTests: XCTestCase {
    let cli = TestEnvironment.self

    var repo: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }
    var luaDir: URL { repo.appendingPathComponent("Tests/lua") }

    /// A server process started for one test; `stop()` ends it (and `deinit` too).
    final class Server: @unchecked Sendable {
        let process = Process()
        var port = 0
        private let lock = NSLock()
        private var output = ""
        /// What the process printed so far (standard output and error together).
        var log: String { lock.withLock { output } }

        /// Starts `exe args` and waits up to `timeout` s for a line matching `pattern`, whose first capture group is the
        /// port (nil: the port is given and readiness is polled on GET /v1/models instead).
        init(_ exe: URL, _ args: [String], env: [String: String] = [:], portPattern: String?, port: Int = 0,
             timeout: Double) throws {
            process.executableURL = exe
            process.arguments = args
            process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            process.standardInput = FileHandle.nullDevice
            pipe.fileHandleForReading.readabilityHandler = { [weak self] h in
                let d = h.availableData
                guard let self, !d.isEmpty else { return }
                self.lock.withLock { self.output += String(decoding: d, as: UTF8.self) }
            }
            try process.run()
            self.port = port
            let start = Date()
            defer { print("\(exe.lastPathComponent) \(args.prefix(2).joined(separator: " ")): ready in \(String(format: "%.1f", Date().timeIntervalSince(start))) s") }
            let deadline = start.addingTimeInterval(timeout)
            while Date() < deadline {
                if !process.isRunning { throw Failure(description: "\(exe.lastPathComponent) exited early:\n\(log)") }
                if let pattern = portPattern {
                    if let r = log.range(of: pattern, options: .regularExpression) {
                        let digits = log[r].split(whereSeparator: { !$0.isNumber }).last.map(String.init) ?? ""
                        self.port = Int(digits) ?? 0
                        return
                    }
                } else if ServeTests.answers("http://127.0.0.1:\(port)/v1/models") {
                    return
                }
                Thread.sleep(forTimeInterval: 0.2)
            }
            stop()
            throw Failure(description: "\(exe.lastPathComponent) was not ready in \(timeout) s:\n\(log)")
        }

        var url: String { "http://127.0.0.1:\(port)/v1" }

        func stop() {
            if process.isRunning { process.terminate(); process.waitUntilExit() }
        }

        deinit { stop() }
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// Whether GET `url` answers 200 (one short try).
    static func answers(_ url: String) -> Bool {
        let r = try? TestEnvironment.run(["-e", "local ok, r = pcall(lm.http, {url = '\(url)', method = 'GET'}, {retries = 0, timeout = 2}); os.exit(ok and r.status == 200 and 0 or 1)"],
                                         env: ["REFRAIN_HOME": "/nonexistent"], timeout: 10)
        return r?.status == 0
    }

    /// A port no one listens on now (bound to 0 and released).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Runs a Lua test file with the server's URL; its cases report failures on standard error.
    func runLua(_ name: String, _ server: Server, env: [String: String] = [:]) throws {
        let r = try cli.run(["run", "--model", try cli.modelPath(), luaDir.appendingPathComponent(name).path, server.url],
                            env: env.merging(["REFRAIN_SCRIPTS": repo.appendingPathComponent("scripts").path]) { $1 }, timeout: 240)
        print(r.out)
        LuaTests.assertSuite(name, r, context: "\n--- server log:\n\(server.log.suffix(2000))")
    }

    /// lm.remote against refrain serve on the same model: text, ids, log-probabilities, scores, samples, choices,
    /// chat, tokenize; bad requests as 400 JSON errors; streaming.
    func testRemoteAgainstRefrainServe() throws {
        let server = try Server(cli.binary, ["serve", "--model", try cli.modelPath(), "--port", "0", "--threads", "1"],
                                portPattern: "at http://127\\.0\\.0\\.1:[0-9]+", timeout: 60)
        defer { server.stop() }
        try runLua("test_remote.lua", server)
    }

    /// `refrain replay` of remote calls: generate (text and chat), seeded samples, score and choose against refrain
    /// serve reproduce; a call to a server whose answers change does not (exit 1, where it differs); a server that is
    /// gone is a one-line error (exit 2).
    func testReplayOfRemoteCalls() throws {
        let store = FileManager.default.temporaryDirectory.appendingPathComponent("replay-remote-\(getpid()).sqlite").path
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: store + s) } }
        let server = try Server(cli.binary, ["serve", "--model", try cli.modelPath(), "--port", "0", "--threads", "1"],
                                portPattern: "at http://127\\.0\\.0\\.1:[0-9]+", timeout: 60)
        defer { server.stop() }
        let fake = try Server(URL(fileURLWithPath: "/usr/bin/env"), ["python3", repo.appendingPathComponent("Tests/tools/fake_openai.py").path],
                              portPattern: "^[0-9]+\n", timeout: 30)
        defer { fake.stop() }
        let code = """
            local m = lm.remote{url = '\(server.url)'}
            local function id(name) print(name .. " " .. lm.store.last()) end
            m:generate("The capital of France is", {max_tokens = 8, temperature = 0}); id("generate")
            m:generate({{role = "user", content = "Say hi"}}, {max_tokens = 6, temperature = 0}); id("chat")
            m:sample("Once upon a time", 2, {max_tokens = 6, seed = 5}); id("sample")
            m:score("The capital of France is", " Paris"); id("score")
            m:choose("The capital of France is", {" Paris", " Rome"}, {by = "calibrated"}); id("choose")
            lm.remote{url = '\(fake.url)', retries = 0}:generate("changes", {max_tokens = 1}); id("changing")
            """
        let r = try cli.run(["-e", code], env: ["REFRAIN_STORE": store], timeout: 120)
        XCTAssertEqual(r.status, 0, r.out + r.err)
        var ids: [String: String] = [:]
        for line in r.out.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { ids[String(parts[0])] = String(parts[1]) }
        }
        for name in ["generate", "chat", "sample", "score", "choose"] {
            let id = try XCTUnwrap(ids[name], "no id for \(name): \(r.out)")
            let p = try cli.run(["replay", id, "--store", store], timeout: 60)
            print(p.out, terminator: "")
            XCTAssertEqual(p.status, 0, "\(name): \(p.out)\(p.err)")
            XCTAssertTrue(p.out.contains("remote) reproduced: "), p.out)
        }
        // The fake server says how many times it was asked: the replay differs where the count is.
        let changing = try XCTUnwrap(ids["changing"])
        let d = try cli.run(["replay", changing, "--store", store], timeout: 60)
        XCTAssertEqual(d.status, 1, d.out + d.err)
        XCTAssertTrue(d.out.contains("did not reproduce: output 1 differs from byte 7: recorded \"1 times\", replayed \"2 times\""), d.out)
        fake.stop()
        let gone = try cli.run(["replay", changing, "--store", store], timeout: 60)
        XCTAssertEqual(gone.status, 2, gone.out + gone.err)
        XCTAssertTrue(gone.err.contains("call \(changing): replay on \(fake.url) failed: ") && gone.err.contains("cannot connect"), gone.err)
        XCTAssertEqual(gone.err.split(separator: "\n").count, 1, gone.err)
    }

    /// The experiment runner with `--backend` twice (two replicas) gives what it gives on the local model.
    func testRunnerOnReplicas() throws {
        let args = ["serve", "--model", try cli.modelPath(), "--port", "0", "--threads", "1"]
        let a = try Server(cli.binary, args, portPattern: "at http://127\\.0\\.0\\.1:[0-9]+", timeout: 60)
        defer { a.stop() }
        let b = try Server(cli.binary, args, portPattern: "at http://127\\.0\\.0\\.1:[0-9]+", timeout: 60)
        defer { b.stop() }
        let r = try cli.run(["run", luaDir.appendingPathComponent("test_remote_runner.lua").path, cli.binary.path,
                             try cli.modelPath(), a.url, b.url],
                            env: ["REFRAIN_SCRIPTS": luaDir.appendingPathComponent("scripts").path], timeout: 240)
        print(r.out)
        LuaTests.assertSuite("test_remote_runner.lua", r)
    }

    /// `refrain serve` refuses what it cannot do before it listens.
    /// OpenAI's response_format: json_object holds the generation to a JSON object (the text parses as one);
    /// json_schema is refused by name for now; constraints are checked before any work.
    func testResponseFormatAndConstraintFields() throws {
        func options(_ body: String) throws -> GenerationOptions {
            try OpenAIServer.options(try RequestFields(Data(body.utf8)), maxTokens: 48)
        }
        let g = try options(#"{"response_format": {"type": "json_object"}, "temperature": 0}"#)
        XCTAssertEqual(g.jsonSchema, #"{"type":"object"}"#)
        XCTAssertNil(try options(#"{"response_format": {"type": "text"}}"#).jsonSchema)
        XCTAssertEqual(try options(#"{"guided_choice": ["yes", "no"]}"#).choices, ["yes", "no"])
        XCTAssertEqual(try options(#"{"guided_regex": "\\d+"}"#).regex, #"\d+"#)
        // OpenAI's json_schema and llama.cpp's json_schema field: the schema's text, its member order kept
        let schema = #"{"type":"object","properties":{"z":{"type":"integer","minimum":1.5},"a":{"const":1.0}},"required":["z"]}"#
        XCTAssertEqual(try options(#"{"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": "# + schema + "}}}").jsonSchema, schema)
        XCTAssertEqual(try options(#"{"json_schema": "# + schema + "}").jsonSchema, schema)
        XCTAssertEqual(try options(#"{"json_schema": {}}"#).jsonSchema, #"{"type":"object"}"#)
        XCTAssertEqual(try options(#"{"response_format": {"type": "json_object", "schema": {"type": "array"}}}"#).jsonSchema, #"{"type":"array"}"#)
        for (body, message) in [(#"{"response_format": {"type": "json_schema", "json_schema": {}}}"#, "json_schema needs json_schema.schema"),
                                (#"{"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "strin"}}}}"#,
                                 "'response_format.json_schema.schema' at #: unrecognized type strin"),
                                (#"{"json_schema": 3}"#, "'json_schema' must be a JSON schema (an object), got number"),
                                (#"{"response_format": {"type": "xml"}}"#, "type must be text, json_object or json_schema"),
                                (#"{"response_format": "json"}"#, "must be an object with a 'type'"),
                                (#"{"response_format": {"type": "json_object"}, "grammar": "root ::= \"a\""}"#, "cannot be combined"),
                                (#"{"grammar": "root ::= [a-"}"#, "grammar: line 1, column 10"),
                                (#"{"temperature": 0,}"#, "not valid JSON: offset 18"),
                                (#"{"regex": "a", "choices": ["b"]}"#, "give at most one of grammar, regex, choices and json_schema")] {
            XCTAssertThrowsError(try options(body), body) { e in
                XCTAssertTrue("\((e as? HTTPFailure)?.message ?? "\(e)")".contains(message), "\(body): \(e)")
            }
        }
        let m = try LanguageModel(path: try cli.modelPath(), threads: 2)
        var o = g
        o.maxTokens = 64
        var complete = 0
        for seed in 0..<UInt64(4) {
            o.sampling.seed = seed
            o.sampling.temperature = seed == 0 ? 0 : 1
            let r = try m.generate(m.tokenizer.encode("A cat, as JSON:"), options: o)
            guard r.finish != .incomplete else { continue }
            complete += 1
            let parsed = try? JSONSerialization.jsonObject(with: Data(r.text.utf8))
            XCTAssertTrue(parsed is [String: Any], "seed \(seed): \(r.text.debugDescription)")
        }
        XCTAssertGreaterThan(complete, 0, "no generation finished its object within 64 tokens")
    }

    func testServeCommandLine() throws {
        let bad = try cli.run(["serve", "--model", try cli.modelPath(), "--host", "example.org"], timeout: 60)
        XCTAssertEqual(bad.status, 2, bad.err)
        XCTAssertTrue(bad.err.contains("--host expects an IPv4 address"), bad.err)
        let port = try cli.run(["serve", "--port", "70000"], timeout: 60)
        XCTAssertEqual(port.status, 2)
        XCTAssertTrue(port.err.contains("--port expects 0..65535"), port.err)
        let timeout = try cli.run(["serve", "--read-timeout", "0"], timeout: 60)
        XCTAssertEqual(timeout.status, 2)
        XCTAssertTrue(timeout.err.contains("--read-timeout expects a number of seconds > 0"), timeout.err)
    }

    /// A raw client: connects to 127.0.0.1:`port`, sends `pieces` (waiting `pause` s before each after the first),
    /// and reads until the server closes or `wait` s pass. Returns what came back ("" for nothing) and when the
    /// server closed (seconds after connecting; nil: it had not closed, or the client stopped sending first
    /// because the connection was reset).
    static func exchange(_ port: Int, _ pieces: [String], pause: Double = 0, wait: Double = 10) -> (reply: String, closedAfter: Double?) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let start = Date()
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return ("connect failed", nil) }
        var reply = Data()
        var buf = [UInt8](repeating: 0, count: 4096)
        /// Reads what is there within `t` s; false once the server has closed.
        func drain(_ t: Double) -> Bool {
            var tv = timeval(tv_sec: Int(t), tv_usec: Int((t - t.rounded(.down)) * 1e6) + 1)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            while true {
                let n = recv(fd, &buf, buf.count, 0)
                if n > 0 { reply.append(contentsOf: buf[0..<n]); continue }
                return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
            }
        }
        for (i, p) in pieces.enumerated() {
            if i > 0 && !drain(pause) { return (String(decoding: reply, as: UTF8.self), Date().timeIntervalSince(start)) }
            if send(fd, p, p.utf8.count, Int32(MSG_NOSIGNAL)) < 0 { return (String(decoding: reply, as: UTF8.self), nil) }
        }
        let open = drain(wait)
        return (String(decoding: reply, as: UTF8.self), open ? nil : Date().timeIntervalSince(start))
    }

    /// Garbage, cut and slow (slowloris) requests to a live server get a 400, 408 or 413 and a closed connection,
    /// within the read timeout however slowly their bytes come; good requests are answered meanwhile and after.
    func testGarbageAndSlowClients() throws {
        let server = try Server(cli.binary, ["serve", "--model", try cli.modelPath(), "--port", "0", "--threads", "1",
                                             "--read-timeout", "1.5"],
                                portPattern: "at http://127\\.0\\.0\\.1:[0-9]+", timeout: 60)
        defer { server.stop() }
        let port = server.port
        let body = "{\"content\": \"Hi!\"}"
        let good = "POST /tokenize HTTP/1.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        func assertAnswersGood(_ when: String) {
            let r = Self.exchange(port, [good])
            XCTAssertTrue(r.reply.hasPrefix("HTTP/1.1 200 "), "\(when): \(r.reply)\n\(server.log)")
            XCTAssertTrue(r.reply.contains("\"tokens\":["), "\(when): \(r.reply)")
        }
        assertAnswersGood("before")
        // Slow clients, started first and kept going while the rest runs: a head sent a byte every 0.2 s (it would
        // take 19 s), and a body that stops halfway.
        let slow = "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Padding: " + String(repeating: "a", count: 50)
        let group = DispatchGroup()
        nonisolated(unsafe) var slowResults: [(reply: String, closedAfter: Double?)] = Array(repeating: ("", nil), count: 4)
        let lock = NSLock()
        for i in 0..<4 {
            group.enter()
            DispatchQueue.global().async {
                let r = i % 2 == 0 ? Self.exchange(port, slow.map(String.init), pause: 0.2, wait: 10)
                    : Self.exchange(port, ["POST /tokenize HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"content\":"], wait: 10)
                lock.withLock { slowResults[i] = r }
                group.leave()
            }
        }
        let cases: [(String, String)] = [
            ("\u{0}\u{ff}garbage\r\n\r\n", "HTTP/1.1 400 "),
            ("GET /v1/models\r\n\r\n", "HTTP/1.1 400 "),
            ("POST /tokenize HTTP/1.1\r\nno colon\r\n\r\n", "HTTP/1.1 400 "),
            ("POST /tokenize HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "HTTP/1.1 400 "),
            ("POST /tokenize HTTP/1.1\r\nContent-Length: -5\r\n\r\n", "HTTP/1.1 400 "),
            ("POST /tokenize HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", "HTTP/1.1 413 "),
            // The server stops reading past 64 KiB: its reply may be lost to the reset its close sends.
            ("GET / HTTP/1.1\r\nX: " + String(repeating: "b", count: 70000) + "\r\n\r\n", "HTTP/1.1 413 |"),
            ("POST /tokenize HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":[}", "HTTP/1.1 400 "),
            ("POST /v1/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "HTTP/1.1 400 "),
            ("POST /tokenize HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"con", "HTTP/1.1 408 "),
            ("GET /v1/models HTTP/1.1\r\nHost: x\r\n", "HTTP/1.1 408 "),
            ("", "|"),
        ]
        // Time bounds: the server closes each connection at its 1.5 s read timeout or sooner; a loaded machine
        // delays that by the scheduler's slices (milliseconds), so the bounds (6 s) leave seconds for it and still
        // tell the timeout from a connection left open (the clients wait 10 s; the slow head takes 19 s to send).
        for (request, status) in cases {
            let t0 = Date()
            let r = Self.exchange(port, [request], wait: 10)
            let ok = status.split(separator: "|", omittingEmptySubsequences: false)
                .contains { $0.isEmpty ? r.reply.isEmpty || r.reply.hasPrefix("HTTP/1.1 408 ") : r.reply.hasPrefix($0) }
            XCTAssertTrue(ok,
                          "\(request.prefix(80).debugDescription): \(r.reply.prefix(300))")
            XCTAssertNotNil(r.closedAfter, "\(request.prefix(80).debugDescription): the server did not close the connection")
            XCTAssertLessThan(Date().timeIntervalSince(t0), 6, "\(request.prefix(80).debugDescription)")
        }
        assertAnswersGood("while slow clients are connected")
        group.wait()
        for (i, r) in slowResults.enumerated() {
            XCTAssertTrue(r.reply.hasPrefix("HTTP/1.1 408 "), "slow client \(i): \(r.reply)")
            XCTAssertNotNil(r.closedAfter, "slow client \(i) was not closed")
            if let t = r.closedAfter { XCTAssertLessThan(t, 6, "slow client \(i) was held \(t) s") }
        }
        assertAnswersGood("after")
    }

    /// Time-outs, malformed JSON, retried 500s and 429s, the API key, a server that dies mid-run.
    func testRemoteFaults() throws {
        let key = "sekret-\(Int.random(in: 1000...9999))"
        let server = try Server(URL(fileURLWithPath: "/usr/bin/env"), ["python3", repo.appendingPathComponent("Tests/tools/fake_openai.py").path],
                                env: ["FAKE_KEY": key], portPattern: "^[0-9]+\n", timeout: 30)
        defer { server.stop() }
        try runLua("test_remote_faults.lua", server, env: ["FAKE_KEY": key])
    }

    /// llama.cpp's own server (llama-cpp-python's) on the default model: the same greedy text up to a near-tie,
    /// log-probabilities within llama.cpp's spread.
    func testRemoteAgainstLlamaCppServer() throws {
        let home = ProcessInfo.processInfo.environment["REFRAIN_HOME"] ?? (NSHomeDirectory() + "/.cache/refrain")
        let python = home + "/venv-llamacpp/bin/python"
        let check = Process()
        check.executableURL = URL(fileURLWithPath: python)
        check.arguments = ["-c", "import llama_cpp.server, fastapi, uvicorn, sse_starlette"]
        check.standardOutput = FileHandle.nullDevice
        check.standardError = FileHandle.nullDevice
        guard FileManager.default.isExecutableFile(atPath: python), (try? check.run()) != nil else {
            throw XCTSkip("llama-cpp-python is not installed at \(home)/venv-llamacpp: run ./setup.sh --llama-cpp")
        }
        check.waitUntilExit()
        guard check.terminationStatus == 0 else {
            throw XCTSkip("llama-cpp-python's server extras are missing in \(home)/venv-llamacpp: run ./setup.sh --llama-cpp")
        }
        let port = ServeTests.freePort()
        let server = try Server(URL(fileURLWithPath: python),
                                ["-m", "llama_cpp.server", "--model", try cli.modelPath(), "--host", "127.0.0.1",
                                 "--port", String(port), "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1"],
                                portPattern: nil, port: port, timeout: 120)
        defer { server.stop() }
        try runLua("test_remote_llamacpp.lua", server)
    }
}
