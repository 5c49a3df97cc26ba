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
    /// `model` reads the `intervene` option (which needs the model's sizes); without one it is refused.
    func generationOptions(_ a: Arguments, opts: Int32, model: LanguageModel? = nil) throws -> LuaGenerationOptions {
        var o = LuaGenerationOptions()
        let lua = a.lua
        lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
        lua.rawGet(-1, "defaults")
        lua_rotate(L, -2, -1); lua.pop()           // keep only lm.defaults
        defer { lua.pop() }
        if lua.type(-1) == LUA_TTABLE {
            try LmOptions.checkNames(lua, -1, known: LmOptions.generationKeys, function: "lm.defaults")
            try apply(lua, table: -1, into: &o, model: model, function: "lm.defaults", error: { name, msg in .message("lm.defaults: option '\(name)' \(msg)") })
        } else if !lua.isNoneOrNil(-1) {
            throw LuaError.message("lm.defaults must be a table, not a \(lua.typeName(-1))")
        }
        if opts != 0, try a.table(opts, optional: true) {
            try LmOptions.checkNames(lua, opts, known: LmOptions.generationKeys, function: a.function)
            try apply(lua, table: opts, into: &o, model: model, function: a.function, error: { name, msg in .argument(opts, "option '\(name)' \(msg)") })
        }
        return o
    }

    /// Applies the known options present in the table at `t`.
    private func apply(_ lua: Lua, table t: Int32, into o: inout LuaGenerationOptions, model: LanguageModel?,
                       function: String, error: (String, String) -> LuaError) throws {
        let t = lua.absolute(t)
        for name in GenerationSchema.keys(on: .lua) {
            lua.rawGet(t, name)
            defer { lua.pop() }
            if lua.isNoneOrNil(-1) { continue }
            if name == "intervene" {
                guard let model else { throw error(name, "is not taken here") }
                o.engine.interventions = try interventions(Arguments(lua: lua, function: function), -1, model: model)
                continue
            }
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
        case .json:
            let text: String
            if lua.type(i) == LUA_TSTRING, let s = lua.string(i) {
                text = s
            } else if lua.type(i) == LUA_TTABLE {
                do { text = try luaJSON(lua, lua.absolute(i), path: name, depth: 0).dump() } catch let LuaJSONError.bad(m) {
                    throw error(name, m)
                }
            } else {
                throw error(name, "must be a JSON schema (a table or JSON text), got \(got)")
            }
            do { _ = try ConstraintGrammar.cachedJSONSchema(text) } catch let e {
                throw error(name, "\(e)".replacingOccurrences(of: "json_schema: ", with: ""))
            }
            value = .text(text)
        case .interventions:
            return      // read with the model (generationOptions)
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

    enum LuaJSONError: Error { case bad(String) }

    /// The Lua value at `i` as JSON: a table with keys 1..n is an array, any other table an object with string
    /// keys in sorted order (Lua tables keep none), except a `properties` table given as a list of {name, schema}
    /// pairs, which keeps the list's order (the order the grammar asks for the properties).
    func luaJSON(_ lua: Lua, _ i: Int32, path: String, depth: Int) throws -> JSONValue {
        guard depth < 100 else { throw LuaJSONError.bad("is nested deeper than 100 levels (a table that holds itself?)") }
        switch lua.type(i) {
        case LUA_TSTRING: return .string(lua.string(i)!)
        case LUA_TBOOLEAN: return .bool(lua.boolean(i)!)
        case LUA_TNUMBER:
            if lua_isinteger(L, i) != 0 { return .integer(Int64(lua_tointegerx(L, i, nil))) }
            let d = lua_tonumberx(L, i, nil)
            guard d.isFinite else { throw LuaJSONError.bad("holds \(d) at \(path), which JSON cannot write") }
            return .number(d)
        case LUA_TTABLE:
            var keys: [(String?, Int?)] = []
            lua.pushNil()
            while lua_next(L, i) != 0 {
                if lua.type(-2) == LUA_TSTRING { keys.append((lua.string(-2), nil)) }
                else if lua_isinteger(L, -2) != 0 { keys.append((nil, Int(lua_tointegerx(L, -2, nil)))) }
                else { lua.pop(2); throw LuaJSONError.bad("has a \(lua.typeName(-2)) key at \(path) (JSON keys are strings)") }
                lua.pop()
            }
            let n = keys.count
            if n > 0, keys.allSatisfy({ $0.1 != nil }), Set(keys.compactMap(\.1)) == Set(1...n) {
                return .array(try (1...n).map { k in
                    lua.rawGet(i, k); defer { lua.pop() }
                    return try luaJSON(lua, lua.absolute(-1), path: "\(path)[\(k)]", depth: depth + 1)
                })
            }
            guard keys.allSatisfy({ $0.0 != nil }) else {
                throw LuaJSONError.bad("mixes list items and named fields at \(path)")
            }
            var members: [(String, JSONValue)] = []
            for key in keys.compactMap(\.0).sorted() {
                lua.rawGet(i, key); defer { lua.pop() }
                let sub = "\(path).\(key)"
                if key == "properties", case .array(let items) = try luaJSON(lua, lua.absolute(-1), path: sub, depth: depth + 1) {
                    // properties = {{"name", schema}, ...}: an object in the list's order
                    members.append((key, .object(try items.enumerated().map { k, item in
                        guard case .array(let pair) = item, pair.count == 2, let name = pair[0].string else {
                            throw LuaJSONError.bad("has item \(k + 1) of \(sub) that is not a pair {name, schema}")
                        }
                        return (name, pair[1])
                    })))
                    continue
                }
                members.append((key, try luaJSON(lua, lua.absolute(-1), path: sub, depth: depth + 1)))
            }
            return .object(members)
        default:
            throw LuaJSONError.bad("holds a \(lua.typeName(i)) at \(path), which JSON cannot write")
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
