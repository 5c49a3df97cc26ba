// Options tables: generation options read from `lm.defaults` and a call's `opts`, checked by name and value
// (an unknown name is an error that suggests the closest known one), and the REPL's `:set option value`.
import CLua
import Engine
import Foundation

/// Generation options as a Lua call sees them: the engine's options plus what only the host handles.
struct LuaGenerationOptions {
    var engine = GenerationOptions()
    /// Registry reference of an `on_token` function, or LUA_NOREF.
    var onToken: Int32 = LUA_NOREF
    /// Stream text to the REPL's sink (or standard output); nil: stream when the REPL has a sink.
    var stream: Bool?
    /// Whether `seed` was given (sample derives seeds from it).
    var seedGiven = false
}

/// What an option's value must be.
enum OptionKind {
    case integer(min: Int), number(min: Double, max: Double), boolean, strings, function
}

enum LmOptions {
    /// The keys of the options of `generate`, `sample`, a state's `generate` and `lm.defaults` (GenerationSchema).
    static let generationKeys = Set(GenerationSchema.keys(on: .lua))

    static func unknown(_ name: String, in function: String, known: some Collection<String>) -> LuaError {
        var msg = "\(function): unknown option '\(name)'"
        if let s = GenerationSchema.suggestion(for: name, among: known) { msg += " (did you mean '\(s)'?)" }
        return .message(msg)
    }

    /// Checks every key of the options table at `t` against `known` (`function` names the caller in messages).
    static func checkNames(_ lua: Lua, _ t: Int32, known: [String: OptionKind], function: String) throws {
        try checkNames(lua, t, known: Set(known.keys), function: function)
    }

    static func checkNames(_ lua: Lua, _ t: Int32, known: Set<String>, function: String) throws {
        let t = lua.absolute(t)
        lua.pushNil()
        while lua_next(lua.L, t) != 0 {
            defer { lua.pop() }
            guard let k = lua.string(-2) else {
                throw LuaError.message("\(function): option names are strings, got \(lua.typeName(-2)) key \(lua.describe(-2))")
            }
            if !known.contains(k) { throw unknown(k, in: function, known: known) }
        }
    }
}

extension LuaHost {
    /// Reads generation options: `lm.defaults`, then the table at `opts` (0: none). `arg` is the options
    /// argument's stack index for messages.
    func generationOptions(_ a: Arguments, opts: Int32) throws -> LuaGenerationOptions {
        var o = LuaGenerationOptions()
        let lua = a.lua
        lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
        lua.rawGet(-1, "defaults")
        lua_rotate(L, -2, -1); lua.pop()           // keep only lm.defaults
        defer { lua.pop() }
        if lua.type(-1) == LUA_TTABLE {
            try LmOptions.checkNames(lua, -1, known: LmOptions.generationKeys, function: "lm.defaults")
            try apply(lua, table: -1, into: &o, error: { name, msg in .message("lm.defaults: option '\(name)' \(msg)") })
        } else if !lua.isNoneOrNil(-1) {
            throw LuaError.message("lm.defaults must be a table, not a \(lua.typeName(-1))")
        }
        if opts != 0, try a.table(opts, optional: true) {
            try LmOptions.checkNames(lua, opts, known: LmOptions.generationKeys, function: a.function)
            try apply(lua, table: opts, into: &o, error: { name, msg in .argument(opts, "option '\(name)' \(msg)") })
        }
        return o
    }

    /// Applies the known options present in the table at `t`.
    private func apply(_ lua: Lua, table t: Int32, into o: inout LuaGenerationOptions,
                       error: (String, String) -> LuaError) throws {
        let t = lua.absolute(t)
        for name in GenerationSchema.keys(on: .lua) {
            lua.rawGet(t, name)
            defer { lua.pop() }
            if lua.isNoneOrNil(-1) { continue }
            try applyOption(lua, name, at: -1, into: &o, error: error)
        }
    }

    /// Checks and applies one option's value (at `i`): its type as Lua sees it, then its range by the schema.
    func applyOption(_ lua: Lua, _ name: String, at i: Int32, into o: inout LuaGenerationOptions,
                     error: (String, String) -> LuaError) throws {
        let spec = GenerationSchema.byKey[name]!
        let got = lua.typeName(i)
        let value: OptionValue
        switch spec.kind {
        case .integer:
            guard let v = lua.integer(i) else {
                throw error(name, "must be an integer, got \(lua.type(i) == LUA_TNUMBER ? lua.describe(i) : got)")
            }
            value = .integer(v)
        case .number:
            guard let v = lua.number(i) else { throw error(name, "must be a number, got \(got)") }
            value = .number(v)
        case .boolean:
            guard let v = lua.boolean(i) else { throw error(name, "must be a boolean, got \(got)") }
            value = .boolean(v)
        case .strings:
            value = .strings(try stopStrings(lua, i, name: name, error: error))
        case .text:
            guard lua.type(i) == LUA_TSTRING, let s = lua.string(i) else { throw error(name, "must be a string, got \(got)") }
            value = .text(s)
        case .function:
            guard lua.type(i) == LUA_TFUNCTION else { throw error(name, "must be a function, got \(got)") }
            if o.onToken != LUA_NOREF { luaL_unref(L, luaRegistry, o.onToken) }
            lua.pushValue(i)
            o.onToken = luaL_ref(L, luaRegistry)
            return
        }
        if let message = spec.check(value) { throw error(name, message) }
        if let field = spec.field { field.set(&o.engine, value) }
        switch (name, value) {
        case ("seed", _): o.seedGiven = true
        case ("stream", .boolean(let b)): o.stream = b
        default: break
        }
    }

    /// A string, or a list of non-empty strings, at `i`.
    private func stopStrings(_ lua: Lua, _ i: Int32, name: String, error: (String, String) -> LuaError) throws -> [String] {
        if let s = lua.string(i) { return [s] }
        guard lua.type(i) == LUA_TTABLE else { throw error(name, "must be a string or a list of strings, got \(lua.typeName(i))") }
        var strings: [String] = []
        for k in 1...max(lua.rawLength(i), 1) where k <= lua.rawLength(i) {
            lua.rawGet(i, k)
            defer { lua.pop() }
            guard let s = lua.string(-1) else { throw error(name, "must be a list of strings (item \(k) is a \(lua.typeName(-1)))") }
            guard !s.isEmpty else { throw error(name, "has an empty string at item \(k)") }
            strings.append(s)
        }
        return strings
    }

    // MARK: - Defaults (the REPL's :set)

    /// The generation defaults, as `lm.defaults` holds them (values that do not check are left at the engine's).
    public var defaults: GenerationOptions {
        get {
            var o = LuaGenerationOptions()
            lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
            lua.rawGet(-1, "defaults")
            if lua.type(-1) == LUA_TTABLE {
                for name in GenerationSchema.keys(on: .lua) where GenerationSchema.byKey[name]!.field != nil {
                    lua.rawGet(-1, name)
                    if !lua.isNoneOrNil(-1) { try? applyOption(lua, name, at: -1, into: &o, error: { _, m in .message(m) }) }
                    lua.pop()
                }
            }
            lua.pop(2)
            return o.engine
        }
        set {
            lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
            if lua.rawGet(-1, "defaults") != LUA_TTABLE {
                lua.pop()
                lua.newTable()
                lua.pushValue(-1)
                lua_setfield(L, -3, "defaults")
            }
            writeDefaults(newValue)
            lua.pop(2)
        }
    }

    /// Writes the engine options into the table at the top (keeping `stream` and `on_token`).
    func writeDefaults(_ g: GenerationOptions) {
        for spec in GenerationSchema.options {
            guard let v = spec.field?.get(g) else { continue }
            lua.field(spec.key) { lua.push(option: v) }
        }
    }

    /// `:set option value`: parses `value` for the option's kind, checks it as a Lua option would be, and
    /// stores it in `lm.defaults`. Names may use `-` for `_`. `stop` takes one string (`\n`, `\t` escapes;
    /// empty or `none` clears); booleans take true/false/on/off/yes/no.
    public func set(option: String, value: String) throws {
        let name = option.replacingOccurrences(of: "-", with: "_")
        guard let spec = GenerationSchema.byKey[name] else {
            var msg = "unknown option '\(option)'"
            if let s = GenerationSchema.suggestion(for: name, among: LmOptions.generationKeys) { msg += " (did you mean '\(s)'?)" }
            throw HostError(description: msg)
        }
        let v: OptionValue
        switch spec.parse(value) {
        case .success(let parsed): v = parsed
        case .failure(let e): throw HostError(description: e.description)
        }
        let base = lua.top
        defer { lua_settop(L, base) }
        lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
        if lua.rawGet(-1, "defaults") != LUA_TTABLE { throw HostError(description: "lm.defaults is not a table") }
        lua.field(name) { lua.push(option: v) }
    }
}

extension Lua {
    /// Pushes an option's value as Lua sees it (a list of strings as a table).
    func push(option v: OptionValue) {
        switch v {
        case .integer(let i): push(i)
        case .number(let d): push(d)
        case .boolean(let b): push(b)
        case .strings(let s): push(strings: s)
        case .text(let s): if s.isEmpty { pushNil() } else { push(s) }
        }
    }
}
