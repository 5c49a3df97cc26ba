// What the remote backend (Lua/lm/remote.lua, `lm.remote{...}`) needs from Swift: `lm.http` over HTTPBatch
// (Net/HTTPBatch.swift), with the API key read from a named environment variable (the key never reaches Lua, the
// run store or a message); and the hook that writes a remote call to the run store (the host's Recorder).
import CLua
import Foundation

extension LuaHost {
    /// `lm.http` and the remote module's private `lm._record_call`, in the `lm` table at the absolute index `lm`.
    func installRemoteBindings(lm: Int32) {
        pushFunction("http") { [unowned self] lua in try self.http(Arguments(lua: lua, function: "lm.http")) }
        lua_setfield(L, lm, "http")
        pushFunction("record_call") { [unowned self] lua in try self.recordRemoteCall(Arguments(lua: lua, function: "record_call")) }
        lua_setfield(L, lm, "_record_call")
    }

    /// `lm.http(request_or_list, opts)`: request tables {url=, method=, body=}; opts {timeout=, retries=,
    /// concurrency=, backoff=, api_key_env=}. Returns {status=, body=, attempts=, seconds=} (a list for a list).
    /// A request that gets no HTTP response after its retries raises an error naming it.
    func http(_ a: Arguments) throws -> Int32 {
        let lua = a.lua
        try a.table(1)
        lua.rawGet(1, "url")
        let single = !lua.isNoneOrNil(-1)
        lua.pop()
        var calls: [HTTPCall] = []
        func request(_ i: Int32, _ k: Int?) throws -> HTTPCall {
            let at = k.map { "request \($0): " } ?? ""
            guard lua.type(i) == LUA_TTABLE else { throw LuaError.argument(1, "\(at)a table expected, got \(lua.typeName(i))") }
            lua.rawGet(i, "url")
            guard let url = lua.string(-1) else { lua.pop(); throw LuaError.argument(1, "\(at)'url' must be a string") }
            lua.pop()
            lua.rawGet(i, "body")
            let body = lua.isNoneOrNil(-1) ? nil : lua.string(-1).map { Data($0.utf8) }
            lua.pop()
            lua.rawGet(i, "method")
            let method = lua.string(-1) ?? (body == nil ? "GET" : "POST")
            lua.pop()
            return HTTPCall(method: method, url: url, body: body)
        }
        if single {
            calls.append(try request(1, nil))
        } else {
            for k in 1...max(lua.rawLength(1), 1) where k <= lua.rawLength(1) {
                lua.rawGet(1, k)
                defer { lua.pop() }
                calls.append(try request(lua.absolute(-1), k))
            }
        }
        var policy = try httpPolicy(a, 2)
        // The sandbox's network grant, checked on the host and port the client will connect to, before any
        // request of the list goes out.
        for call in calls {
            let t: (host: String, port: Int, path: String, authority: String)
            do { t = try HTTPClient.target(call.url) } catch { throw LuaError.message("\(call.method) \(call.url): \(error)") }
            if let why = netRefusal(host: t.host, port: t.port) { throw LuaError.message("\(a.function): \(why)") }
        }
        policy.allow = redirectCheck
        let outcomes = HTTPBatch.run(calls, policy)
        for (call, o) in zip(calls, outcomes) {
            if let e = o.error {
                let tries = o.attempts == 1 ? "1 attempt" : "\(o.attempts) attempts"
                throw LuaError.message("\(call.method) \(call.url): \(e) (\(tries))")
            }
        }
        func push(_ o: HTTPOutcome) {
            lua.newTable {
                lua.field("status", o.response!.status)
                lua.field("body", String(decoding: o.response!.body, as: UTF8.self))
                lua.field("attempts", o.attempts)
                lua.field("seconds", o.seconds)
            }
        }
        if single { push(outcomes[0]) } else {
            lua.newTable(array: outcomes.count) { for (i, o) in outcomes.enumerated() { lua.element(i + 1) { push(o) } } }
        }
        return 1
    }

    private func httpPolicy(_ a: Arguments, _ i: Int32) throws -> HTTPPolicy {
        var p = HTTPPolicy()
        guard let o = try options(a, i, known: ["timeout": .number(min: 0, max: 86400), "retries": .integer(min: 0),
                                                "concurrency": .integer(min: 1), "backoff": .number(min: 0, max: 60),
                                                "api_key_env": .strings]) else { return p }
        let lua = a.lua
        func number(_ k: String, min lo: Double) throws -> Double? {
            lua.rawGet(o, k)
            defer { lua.pop() }
            if lua.isNoneOrNil(-1) { return nil }
            guard let v = lua.number(-1), v >= lo else { throw LuaError.argument(o, "option '\(k)' must be a number ≥ \(lo), got \(lua.describe(-1))") }
            return v
        }
        if let t = try number("timeout", min: 0.001) { p.timeout = t }
        if let b = try number("backoff", min: 0) { p.backoff = b }
        if let r = try number("retries", min: 0) { p.retries = Int(r) }
        if let c = try number("concurrency", min: 1) { p.concurrency = Int(c) }
        lua.rawGet(o, "api_key_env")
        defer { lua.pop() }
        if !lua.isNoneOrNil(-1) {
            guard let name = lua.string(-1), !name.isEmpty else { throw LuaError.argument(o, "option 'api_key_env' must be the name of an environment variable") }
            if let why = envRefusal(name) { throw LuaError.message("\(a.function): api_key_env: \(why)") }
            guard let key = ProcessInfo.processInfo.environment[name], !key.isEmpty else {
                throw LuaError.message("\(a.function): the environment variable \(name) (api_key_env) is not set")
            }
            p.authorization = "Bearer " + key
        }
        return p
    }

    /// `lm._record_call{kind=, backend=, model=, prompt=, prompt_ids=, options=(JSON text), outputs={...},
    /// result=(JSON text), started=(Unix seconds), seconds=, error=}`: one remote call to the run store.
    /// Outputs: {text=, ids=, finish=, logprobs=, top=(JSON text), usage={prompt=, completion=, cached=}}.
    func recordRemoteCall(_ a: Arguments) throws -> Int32 {
        let lua = a.lua
        try a.table(1)
        func str(_ t: Int32, _ k: String) -> String? {
            lua.rawGet(t, k); defer { lua.pop() }
            return lua.type(-1) == LUA_TSTRING ? lua.string(-1) : nil
        }
        func num(_ t: Int32, _ k: String) -> Double? {
            lua.rawGet(t, k); defer { lua.pop() }
            return lua.number(-1)
        }
        func ids(_ t: Int32, _ k: String) -> [Int32]? {
            guard lua.rawGet(t, k) == LUA_TTABLE else { lua.pop(); return nil }
            defer { lua.pop() }
            return (0..<lua.rawLength(-1)).compactMap { j in
                lua.rawGet(-1, j + 1); defer { lua.pop() }
                return lua.integer(-1).map { Int32(clamping: $0) }
            }
        }
        func numbers(_ t: Int32, _ k: String) -> [Double]? {
            guard lua.rawGet(t, k) == LUA_TTABLE else { lua.pop(); return nil }
            defer { lua.pop() }
            return (0..<lua.rawLength(-1)).map { j in
                lua.rawGet(-1, j + 1); defer { lua.pop() }
                return lua.number(-1) ?? .nan
            }
        }
        var outputs: [CallOutput] = []
        if lua.rawGet(1, "outputs") == LUA_TTABLE {
            let t = lua.absolute(-1)
            for j in 0..<lua.rawLength(t) {
                lua.rawGet(t, j + 1)
                let o = lua.absolute(-1)
                var out = CallOutput(text: str(o, "text") ?? "", ids: ids(o, "ids"), finish: str(o, "finish"),
                                     logprobs: numbers(o, "logprobs"), top: str(o, "top"))
                if lua.rawGet(o, "usage") == LUA_TTABLE {
                    let u = lua.absolute(-1)
                    out.usage = CallUsage(prompt: Int(num(u, "prompt") ?? 0), completion: Int(num(u, "completion") ?? 0),
                                          cached: Int(num(u, "cached") ?? 0))
                }
                lua.pop(2)
                outputs.append(out)
            }
        }
        lua.pop()
        let record = CallRecord(kind: str(1, "kind") ?? "remote", backend: str(1, "backend") ?? "remote",
                                model: str(1, "model") ?? "", prompt: str(1, "prompt") ?? "",
                                promptIDs: ids(1, "prompt_ids"), options: str(1, "options") ?? "{}", outputs: outputs,
                                result: str(1, "result"), started: Date(timeIntervalSince1970: num(1, "started") ?? Date().timeIntervalSince1970),
                                seconds: num(1, "seconds") ?? 0, error: str(1, "error"))
        if let id = recorder.record(record) { lua.push(Int(id)) } else { lua.pushNil() }
        return 1
    }
}
