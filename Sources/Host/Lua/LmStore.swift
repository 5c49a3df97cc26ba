// The `lm.store` module: the run store from Lua. Which run this is, labels (experiment, item, strategy, injected
// strings) attached to the calls that follow, pausing the recording, and reading calls back.
import CLua
import Foundation

extension LuaHost {
    /// The `lm.store` functions, in the order `help(lm.store)` lists them.
    var storeFunctions: [(String, (Lua) throws -> Int32)] {
        [("path", storePath), ("run", storeRun), ("enabled", storeEnabled), ("label", storeLabel),
         ("labels", storeLabels), ("with", storeWithEnter), ("calls", storeCalls), ("last", storeLast),
         ("put_result", storePutResult), ("results", storeResults)]
    }

    /// The session recording this host's calls, when the store is on.
    var storeSession: StoreSession? { recorder.destination as? StoreSession }

    /// Records this host's calls in the store at `path` (nil: the store is off) as a run of `script` with `args`.
    /// The store is opened at the first call; one that cannot be written is a one-line warning, and the work goes
    /// on unrecorded.
    public func openStore(path: String?, script: String?, args: [String]) {
        let folder = sandbox.enabled ? (sandbox.folder.flatMap(LuaHost.realPath) ?? "") : nil
        recorder.destination = path.map {
            StoreSession(path: $0, info: RunStore.RunInfo(script: script, args: args, engine: refrainVersion, sandbox: folder))
        }
    }

    /// Under the sandbox, the store session with this sandbox's run and folder (nil: not sandboxed, or no store).
    var sandboxedStore: (session: StoreSession, run: Int64, folder: String)? {
        get throws {
            guard sandbox.enabled, let s = storeSession, let folder = s.info.sandbox else { return nil }
            return (s, try s.run(), folder)
        }
    }

    /// Under the sandbox, refuses an experiment that calls or results of other runs use (a sandboxed script labels,
    /// reads and keeps results under its own experiments only: the runs of the same sandbox folder).
    func checkOwnExperiment(_ experiment: String, _ function: String) throws {
        guard !ownExperiments.contains(experiment) else { return }
        let sb: (session: StoreSession, run: Int64, folder: String)?
        do { sb = try sandboxedStore } catch { throw LuaError.message("\(function): \(error)") }
        guard let sb else { return }
        let n: Int
        do { n = try sb.session.store().foreignUse(experiment: experiment, run: sb.run, folder: sb.folder) } catch {
            throw LuaError.message("\(function): \(error)")
        }
        guard n == 0 else {
            throw LuaError.message("\(function): sandbox: the experiment '\(experiment)' holds \(n) calls or results of runs outside this sandbox; a sandboxed script uses only its own experiments (choose another name)")
        }
        ownExperiments.insert(experiment)
    }

    /// Makes `lm.store` in the `lm` table at the absolute index `lm`.
    func installStore(lm: Int32) {
        lua.newTable()
        for (name, body) in storeFunctions {
            pushFunction("store." + name, body)
            lua_setfield(L, -2, name)
        }
        // `with` is the C closure over the `enter` half just installed under its name and `label`.
        lua.rawGet(-1, "with")
        lua.rawGet(-2, "label")
        refrain_lua_pushcclosure(L, refrain_store_with, 2)
        lua_setfield(L, -2, "with")
        lua_setfield(L, lm, "store")
    }

    func storePath(_ lua: Lua) throws -> Int32 {
        guard let s = storeSession else { return 0 }
        lua.push(s.path)
        return 1
    }

    func storeRun(_ lua: Lua) throws -> Int32 {
        guard let s = storeSession else { return 0 }
        do { lua.push(Int(try s.run())) } catch { throw LuaError.message("lm.store.run: \(error)") }
        return 1
    }

    func storeEnabled(_ lua: Lua) throws -> Int32 {
        if !lua.isNoneOrNil(1) {
            guard let on = lua.boolean(1) else { throw Arguments(lua: lua, function: "enabled").typeError(1, "boolean") }
            if !on && sandbox.enabled && storeSession != nil {
                throw LuaError.message("lm.store.enabled: sandbox: a sandboxed script's calls are always recorded")
            }
            guard let s = storeSession else {
                if on { throw LuaError.message("lm.store.enabled: the store is off for this process (--no-store or REFRAIN_STORE=0)") }
                lua.push(false); return 1
            }
            s.enabled = on
        }
        lua.push(storeSession?.enabled ?? false)
        return 1
    }

    /// Reads a labels table at `i`: experiment, item, strategy (strings or numbers), injected (a string or a list
    /// of strings), and any other string key with a string, number or boolean value.
    /// Under the sandbox, the experiment must be the script's own (`checkOwnExperiment`).
    func readLabels(_ a: Arguments, _ i: Int32, over base: CallLabels = CallLabels()) throws -> CallLabels {
        let l = try readLabelFields(a, i, over: base)
        if let e = l.experiment { try checkOwnExperiment(e, "lm.store." + a.function) }
        return l
    }

    private func readLabelFields(_ a: Arguments, _ i: Int32, over base: CallLabels) throws -> CallLabels {
        let lua = a.lua
        var l = base
        guard try a.table(i, optional: true) else { return l }
        let t = lua.absolute(i)
        lua.pushNil()
        while lua_next(L, t) != 0 {
            defer { lua.pop() }
            guard lua.type(-2) == LUA_TSTRING, let k = lua.string(-2) else {
                throw LuaError.argument(i, "label names are strings, got \(lua.describe(-2))")
            }
            if k == "injected" {
                if let s = lua.string(-1), lua.type(-1) == LUA_TSTRING { l.injected = [s]; continue }
                guard lua.type(-1) == LUA_TTABLE else { throw LuaError.argument(i, "label 'injected' must be a string or a list of strings") }
                var list: [String] = []
                for j in 1...max(lua.rawLength(-1), 1) where j <= lua.rawLength(-1) {
                    lua.rawGet(-1, j)
                    defer { lua.pop() }
                    guard let s = lua.string(-1) else { throw LuaError.argument(i, "label 'injected' item \(j) is a \(lua.typeName(-1)), not a string") }
                    list.append(s)
                }
                l.injected = list
                continue
            }
            let v: String
            switch lua.type(-1) {
            case LUA_TSTRING, LUA_TNUMBER: v = lua.string(-1) ?? lua.describe(-1)
            case LUA_TBOOLEAN: v = lua.boolean(-1)! ? "true" : "false"
            default: throw LuaError.argument(i, "label '\(k)' must be a string, number or boolean, got \(lua.typeName(-1))")
            }
            switch k {
            case "experiment": l.experiment = v
            case "item": l.item = v
            case "strategy": l.strategy = v
            default: l.extra[k] = v
            }
        }
        return l
    }

    func pushLabels(_ l: CallLabels) {
        lua.newTable {
            for (k, v) in l.extra { lua.field(k, v) }
            if let e = l.experiment { lua.field("experiment", e) }
            if let e = l.item { lua.field("item", e) }
            if let e = l.strategy { lua.field("strategy", e) }
            if !l.injected.isEmpty { lua.field("injected") { lua.push(strings: l.injected) } }
        }
    }

    func storeLabel(_ lua: Lua) throws -> Int32 {
        let new = try readLabels(Arguments(lua: lua, function: "label"), 1)
        pushLabels(recorder.labels)
        recorder.labels = new
        return 1
    }

    func storeLabels(_ lua: Lua) throws -> Int32 {
        pushLabels(recorder.labels)
        return 1
    }

    /// The first half of `lm.store.with(labels, f, ...)` (f(...) with `labels` over the current ones, restored
    /// after, errors too): sets the labels and returns the previous ones. The call of f and the restoring are C
    /// (`refrain_store_with`), so that f may yield (lm.batch runs strategies as coroutines).
    func storeWithEnter(_ lua: Lua) throws -> Int32 {
        let a = Arguments(lua: lua, function: "with")
        let new = try readLabels(a, 1, over: recorder.labels)
        pushLabels(recorder.labels)
        recorder.labels = new
        return 1
    }

    /// The filter table of `lm.store.calls` at `i`.
    func readFilter(_ a: Arguments, _ i: Int32) throws -> CallFilter {
        var f = CallFilter()
        guard try a.table(i, optional: true) else { return f }
        try LmOptions.checkNames(a.lua, i, known: ["id": .integer(min: 1), "run": .integer(min: 1), "experiment": .strings,
                                                   "item": .strings, "strategy": .strings, "kind": .strings, "search": .strings,
                                                   "limit": .integer(min: 0)], function: "calls")
        func get(_ k: String) -> String? {
            a.lua.rawGet(i, k)
            defer { a.lua.pop() }
            return a.lua.isNoneOrNil(-1) ? nil : (a.lua.string(-1) ?? a.lua.describe(-1))
        }
        func int(_ k: String) throws -> Int64? {
            guard let s = get(k) else { return nil }
            guard let v = Int64(s) else { throw LuaError.argument(i, "'\(k)' must be an integer, got \(s)") }
            return v
        }
        f.id = try int("id"); f.run = try int("run"); f.limit = try int("limit").map(Int.init)
        f.experiment = get("experiment"); f.item = get("item"); f.strategy = get("strategy"); f.kind = get("kind")
        f.search = get("search")
        return f
    }

    func storeCalls(_ lua: Lua) throws -> Int32 {
        var f = try readFilter(Arguments(lua: lua, function: "calls"), 1)
        guard let s = storeSession else { throw LuaError.message("lm.store.calls: the store is off for this process") }
        let calls: [StoredCall]
        do {
            // Sandboxed: the calls of this sandbox's runs only.
            if let sb = try sandboxedStore { f.sandbox = (sb.run, sb.folder) }
            calls = try s.store().calls(f)
        } catch { throw LuaError.message("lm.store.calls: \(error)") }
        lua.newTable(array: calls.count) {
            for (i, c) in calls.enumerated() { lua.element(i + 1) { pushJSON(c.jsonObject) } }
        }
        return 1
    }

    /// `lm.store.put_result{experiment=, item=, strategy=, data=}`: keeps an experiment's result line.
    func storePutResult(_ lua: Lua) throws -> Int32 {
        let a = Arguments(lua: lua, function: "put_result")
        try a.table(1)
        try LmOptions.checkNames(lua, 1, known: ["experiment": .strings, "item": .strings, "strategy": .strings,
                                                 "data": .strings], function: "put_result")
        var f: [String: String] = [:]
        for k in ["experiment", "item", "strategy", "data"] {
            lua.rawGet(1, k)
            defer { lua.pop() }
            guard let s = lua.string(-1) else { throw LuaError.argument(1, "field '\(k)' must be a string, got \(lua.typeName(-1))") }
            f[k] = s
        }
        guard let s = storeSession, s.enabled else { lua.push(false); return 1 }
        // Sandboxed: only under the script's own experiment, and only for a pair this run made calls for (the host
        // checks its own records; no Lua, the runner's included, can vouch for a result).
        try checkOwnExperiment(f["experiment"]!, "lm.store.put_result")
        do {
            if let sb = try sandboxedStore,
               try sb.session.store().callCount(run: sb.run, experiment: f["experiment"]!, item: f["item"]!, strategy: f["strategy"]!) == 0 {
                throw LuaError.message("lm.store.put_result: sandbox: this run made no calls labelled experiment '\(f["experiment"]!)', item '\(f["item"]!)', strategy '\(f["strategy"]!)': a sandboxed script keeps only results of its own calls")
            }
        } catch let e as LuaError { throw e } catch { throw LuaError.message("lm.store.put_result: \(error)") }
        do {
            try s.store().putResult(experiment: f["experiment"]!, item: f["item"]!, strategy: f["strategy"]!, data: f["data"]!,
                                    run: try s.run())
        } catch { throw LuaError.message("lm.store.put_result: \(error)") }
        lua.push(true)
        return 1
    }

    /// `lm.store.results{experiment=}`: the results kept for an experiment, oldest first.
    func storeResults(_ lua: Lua) throws -> Int32 {
        let a = Arguments(lua: lua, function: "results")
        try a.table(1)
        try LmOptions.checkNames(lua, 1, known: ["experiment": .strings], function: "results")
        lua.rawGet(1, "experiment")
        guard let e = lua.string(-1) else { throw LuaError.argument(1, "field 'experiment' must be a string") }
        lua.pop()
        guard let s = storeSession else { throw LuaError.message("lm.store.results: the store is off for this process") }
        try checkOwnExperiment(e, "lm.store.results")
        let rows: [(item: String, strategy: String, data: String, run: Int64?, calls: Int, sandbox: String?)]
        do { rows = try s.store().results(experiment: e) } catch { throw LuaError.message("lm.store.results: \(error)") }
        lua.newTable(array: rows.count) {
            for (i, r) in rows.enumerated() {
                lua.element(i + 1) {
                    lua.newTable {
                        lua.field("item", r.item); lua.field("strategy", r.strategy); lua.field("data", r.data)
                        if let run = r.run { lua.field("run", Int(run)) }
                        lua.field("calls", r.calls)
                        // Written by a sandboxed run of another sandbox (or read outside any): not this run's to trust.
                        if let folder = r.sandbox, !(sandbox.enabled && folder != "" && folder == storeSession?.info.sandbox) {
                            lua.field("sandboxed", true)
                        }
                    }
                }
            }
        }
        return 1
    }

    func storeLast(_ lua: Lua) throws -> Int32 {
        guard let id = storeSession?.lastCall else { return 0 }
        lua.push(Int(id))
        return 1
    }

    /// Pushes a JSONSerialization value as Lua values (null as nil, numbers as integers when they are whole).
    func pushJSON(_ v: Any) {
        switch v {
        case let s as String: lua.push(s)
        case let n as NSNumber:
            // Foundation's JSON numbers: booleans are "c", fractions "d" or "f", whole numbers "q".
            switch String(cString: n.objCType) {
            case "c", "B": lua.push(n.boolValue)
            case "d", "f": lua.push(n.doubleValue)
            default: lua.push(n.intValue)
            }
        case let a as [Any]:
            lua.newTable(array: a.count) { for (i, x) in a.enumerated() { lua.element(i + 1) { pushJSON(x) } } }
        case let d as [String: Any]:
            lua.newTable(record: d.count) { for (k, x) in d where !(x is NSNull) { lua.field(k) { pushJSON(x) } } }
        case let i as Int: lua.push(i)
        case let i as Int64: lua.push(Int(i))
        case let d as Double: lua.push(d)
        case let b as Bool: lua.push(b)
        default: lua.pushNil()
        }
    }
}
