// Building the `lm` module in a fresh state: the pretty-printer, the state metatable, the model methods and their
// `lm.*` forms, `lm.load`, `lm.defaults`, help, `package.path`, and the harness modules written in Lua.
import CLua
import Engine
import Foundation

extension LuaHost {
    func installModule() throws {
        let base = lua.top
        defer { lua_settop(L, base) }
        guard LuaHost.prelude.withCString({ refrain_luaL_loadbufferx(L, $0, strlen($0), "=prelude", "t") }) == LUA_OK,
              lua.pcall(0, 1, traceback: false) == nil else {
            throw HostError(description: "the Lua prelude does not load: \(lua.string(-1) ?? "?")")
        }
        prettyRef = luaL_ref(L, luaRegistry)
        installStateMetatable()
        installMatrixMetatable()
        installVectorMetatable()

        lua.newTable()
        let methods = lua.absolute(-1)
        lua.newTable()
        let lm = lua.absolute(-1)
        installModelOperations(lm: lm, methods: methods)
        lua.pushValue(methods)
        modelMethodsRef = luaL_ref(L, luaRegistry)

        pushFunction("load") { [unowned self] lua in
            let a = Arguments(lua: lua, function: "load")
            let path = try a.string(1)
            var threads = self.threads
            if let o = try self.options(a, 2, known: ["threads": .integer(min: 1)]) {
                lua.rawGet(o, "threads")
                if !lua.isNoneOrNil(-1) {
                    guard let t = lua.integer(-1), t >= 1 else {
                        throw LuaError.argument(o, "option 'threads' must be an integer ≥ 1, got \(lua.describe(-1))")
                    }
                    threads = t
                }
                lua.pop()
            }
            let resolved = LuaHost.resolveModelPath(path)
            if case .failure(let e) = self.modelReadable(given: path, resolved: resolved) { throw LuaError.message("lm.load: sandbox: " + e.description) }
            guard FileManager.default.fileExists(atPath: resolved) else {
                throw LuaError.message("lm.load: no model file at '\(path)' (nor under $REFRAIN_HOME/models)")
            }
            self.pushModel(try LanguageModel(path: resolved, threads: threads))
            self.loadedModelFiles.insert(LuaHost.resolveForReading(LuaHost.absolute(resolved)))
            return 1
        }
        lua_setfield(L, lm, "load")
        pushFunction("matrix") { [unowned self] lua in try self.makeMatrix(lua) }
        lua_setfield(L, lm, "matrix")
        lua_rawgeti(L, luaRegistry, lua_Integer(prettyRef))
        lua_setfield(L, lm, "pretty")
        lua.newTable()
        writeDefaults(GenerationOptions())
        lua_setfield(L, lm, "defaults")
        pushOptionSchema()
        lua_setfield(L, lm, "options")
        installHarnessBindings(lm: lm)
        installConstraintBindings(lm: lm)
        installVectorBindings(lm: lm)
        installRemoteBindings(lm: lm)
        installStore(lm: lm)
        installHelp(lm: lm, methods: methods)

        lua.pushValue(lm)
        lmRef = luaL_ref(L, luaRegistry)
        lua_getglobal(L, "package")
        lua.rawGet(-1, "loaded")
        lua.pushValue(lm)
        lua_setfield(L, -2, "lm")
        lua.pushValue(lm)
        lua_setglobal(L, "lm")
        setPackagePath()
        try installHarness()
    }
}

extension LuaHost {
    /// `lm.options`: the generation schema as Lua tables, by key (what `lm.remote` checks options against).
    func pushOptionSchema() {
        lua.newTable {
            for spec in GenerationSchema.options {
                lua.field(spec.key) {
                    lua.newTable {
                        lua.field("type", spec.kind.rawValue)
                        if let lo = spec.minimum { lua.field("min", lo) }
                        if spec.exclusiveMinimum { lua.field("above", true) }
                        if let hi = spec.maximum { lua.field("max", hi) }
                        if let d = spec.defaultValue { lua.field("default") { lua.push(option: d) } }
                        lua.field("help", spec.help)
                        if let f = spec.flag { lua.field("flag", "--" + f) }
                        lua.field("local_only", spec.localOnly)
                    }
                }
            }
        }
    }
}
