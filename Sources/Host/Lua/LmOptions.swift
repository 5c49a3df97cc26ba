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
    /// The options of `generate`, `sample` and a state's `generate`, and of `lm.defaults`.
    static let generation: [String: OptionKind] = [
        "max_tokens": .integer(min: 0), "temperature": .number(min: 0, max: Double.infinity),
        "top_k": .integer(min: 0), "top_p": .number(min: 0, max: 1), "min_p": .number(min: 0, max: 1),
        "repeat_penalty": .number(min: Double.ulpOfOne, max: Double.infinity), "repeat_last_n": .integer(min: -1),
        "presence_penalty": .number(min: -Double.infinity, max: Double.infinity),
        "frequency_penalty": .number(min: -Double.infinity, max: Double.infinity),
        "seed": .integer(min: 0), "stop": .strings, "logprobs": .integer(min: 0), "ignore_eos": .boolean,
        "on_token": .function, "stream": .boolean,
    ]

    /// The known name closest to `name` by edit distance, when it is close enough to be a likely typo.
    static func suggestion(for name: String, among known: some Collection<String>) -> String? {
        var best: (name: String, distance: Int)? = nil
        for k in known.sorted() {
            let d = editDistance(name, k)
            if best == nil || d < best!.distance { best = (k, d) }
        }
        guard let best, best.distance <= max(2, name.count / 3) else { return nil }
        return best.name
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...max(a.count, 1) where i <= a.count {
            cur[0] = i
            for j in 1...max(b.count, 1) where j <= b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }

    static func unknown(_ name: String, in function: String, known: some Collection<String>) -> LuaError {
        var msg = "\(function): unknown option '\(name)'"
        if let s = suggestion(for: name, among: known) { msg += " (did you mean '\(s)'?)" }
        return .message(msg)
    }

    /// Checks every key of the options table at `t` against `known` (`function` names the caller in messages).
    static func checkNames(_ lua: Lua, _ t: Int32, known: [String: OptionKind], function: String) throws {
        let t = lua.absolute(t)
        lua.pushNil()
        while lua_next(lua.L, t) != 0 {
            defer { lua.pop() }
            guard let k = lua.string(-2) else {
                throw LuaError.message("\(function): option names are strings, got \(lua.typeName(-2)) key \(lua.describe(-2))")
            }
            if known[k] == nil { throw unknown(k, in: function, known: known.keys) }
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
            try LmOptions.checkNames(lua, -1, known: LmOptions.generation, function: "lm.defaults")
            try apply(lua, table: -1, into: &o, error: { name, msg in .message("lm.defaults: option '\(name)' \(msg)") })
        } else if !lua.isNoneOrNil(-1) {
            throw LuaError.message("lm.defaults must be a table, not a \(lua.typeName(-1))")
        }
        if opts != 0, try a.table(opts, optional: true) {
            try LmOptions.checkNames(lua, opts, known: LmOptions.generation, function: a.function)
            try apply(lua, table: opts, into: &o, error: { name, msg in .argument(opts, "option '\(name)' \(msg)") })
        }
        return o
    }

    /// Applies the known options present in the table at `t`.
    private func apply(_ lua: Lua, table t: Int32, into o: inout LuaGenerationOptions,
                       error: (String, String) -> LuaError) throws {
        let t = lua.absolute(t)
        for name in LmOptions.generation.keys.sorted() {
            lua.rawGet(t, name)
            defer { lua.pop() }
            if lua.isNoneOrNil(-1) { continue }
            try applyOption(lua, name, at: -1, into: &o, error: error)
        }
    }

    /// Checks and applies one option's value (at `i`).
    func applyOption(_ lua: Lua, _ name: String, at i: Int32, into o: inout LuaGenerationOptions,
                     error: (String, String) -> LuaError) throws {
        let got = lua.typeName(i)
        switch LmOptions.generation[name]! {
        case .integer(let lo):
            guard let v = lua.integer(i) else {
                throw error(name, "must be an integer, got \(lua.type(i) == LUA_TNUMBER ? lua.describe(i) : got)")
            }
            guard v >= lo else { throw error(name, "must be at least \(lo), got \(v)") }
            switch name {
            case "max_tokens": o.engine.maxTokens = v
            case "top_k": o.engine.sampling.topK = v
            case "repeat_last_n": o.engine.sampling.penaltyLastN = v
            case "seed": o.engine.sampling.seed = UInt64(v); o.seedGiven = true
            case "logprobs": o.engine.topLogprobs = v
            default: break
            }
        case .number(let lo, let hi):
            guard let v = lua.number(i) else { throw error(name, "must be a number, got \(got)") }
            guard v >= lo, v <= hi, !v.isNaN else {
                let show = { (d: Double) in d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d) }
                let range = lo == Double.ulpOfOne ? "greater than 0"
                    : hi.isInfinite ? "at least \(show(lo))" : "between \(show(lo)) and \(show(hi))"
                throw error(name, "must be \(range), got \(show(v))")
            }
            let f = Float(v)
            switch name {
            case "temperature": o.engine.sampling.temperature = f
            case "top_p": o.engine.sampling.topP = f
            case "min_p": o.engine.sampling.minP = f
            case "repeat_penalty": o.engine.sampling.repetitionPenalty = f
            case "presence_penalty": o.engine.sampling.presencePenalty = f
            case "frequency_penalty": o.engine.sampling.frequencyPenalty = f
            default: break
            }
        case .boolean:
            guard let v = lua.boolean(i) else { throw error(name, "must be a boolean, got \(got)") }
            if name == "ignore_eos" { o.engine.ignoreEOS = v } else { o.stream = v }
        case .strings:
            if let s = lua.string(i) { o.engine.stop = [s]; return }
            guard lua.type(i) == LUA_TTABLE else { throw error(name, "must be a string or a list of strings, got \(got)") }
            var stops: [String] = []
            for k in 1...max(lua.rawLength(i), 1) where k <= lua.rawLength(i) {
                lua.rawGet(i, k)
                defer { lua.pop() }
                guard let s = lua.string(-1) else { throw error(name, "must be a list of strings (item \(k) is a \(lua.typeName(-1)))") }
                guard !s.isEmpty else { throw error(name, "has an empty string at item \(k)") }
                stops.append(s)
            }
            o.engine.stop = stops
        case .function:
            guard lua.type(i) == LUA_TFUNCTION else { throw error(name, "must be a function, got \(got)") }
            if o.onToken != LUA_NOREF { luaL_unref(L, luaRegistry, o.onToken) }
            lua.pushValue(i)
            o.onToken = luaL_ref(L, luaRegistry)
        }
    }

    // MARK: - Defaults (the REPL's :set)

    /// The generation defaults, as `lm.defaults` holds them (values that do not check are left at the engine's).
    public var defaults: GenerationOptions {
        get {
            var o = LuaGenerationOptions()
            lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
            lua.rawGet(-1, "defaults")
            if lua.type(-1) == LUA_TTABLE {
                for name in LmOptions.generation.keys.sorted() where name != "on_token" {
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
        let s = g.sampling
        lua.field("max_tokens", g.maxTokens)
        lua.field("temperature", Double(s.temperature))
        lua.field("top_k", s.topK)
        lua.field("top_p", Double(s.topP))
        lua.field("min_p", Double(s.minP))
        lua.field("repeat_penalty", Double(s.repetitionPenalty))
        lua.field("repeat_last_n", s.penaltyLastN)
        lua.field("presence_penalty", Double(s.presencePenalty))
        lua.field("frequency_penalty", Double(s.frequencyPenalty))
        lua.field("seed", Int(clamping: s.seed))
        lua.field("stop") { lua.push(strings: g.stop) }
        lua.field("logprobs", g.topLogprobs)
        lua.field("ignore_eos", g.ignoreEOS)
    }

    /// `:set option value`: parses `value` for the option's kind, checks it as a Lua option would be, and
    /// stores it in `lm.defaults`. Names may use `-` for `_`. `stop` takes one string (`\n`, `\t` escapes;
    /// empty or `none` clears); booleans take true/false/on/off/yes/no.
    public func set(option: String, value: String) throws {
        let name = option.replacingOccurrences(of: "-", with: "_")
        guard let kind = LmOptions.generation[name] else {
            var msg = "unknown option '\(option)'"
            if let s = LmOptions.suggestion(for: name, among: LmOptions.generation.keys) { msg += " (did you mean '\(s)'?)" }
            throw HostError(description: msg)
        }
        let base = lua.top
        defer { lua_settop(L, base) }
        let v = value.trimmingCharacters(in: .whitespaces)
        switch kind {
        case .integer:
            guard let i = Int(v) else { throw HostError(description: "\(name) expects an integer, got '\(value)'") }
            lua.push(i)
        case .number:
            guard let d = Double(v) else { throw HostError(description: "\(name) expects a number, got '\(value)'") }
            lua.push(d)
        case .boolean:
            switch v.lowercased() {
            case "true", "on", "yes", "1": lua.push(true)
            case "false", "off", "no", "0": lua.push(false)
            default: throw HostError(description: "\(name) expects on or off, got '\(value)'")
            }
        case .strings:
            let s = value.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\t", with: "\t")
            lua.push(strings: (s.isEmpty || s == "none") ? [] : [s])
        case .function:
            throw HostError(description: "\(name) takes a function: set it in Lua (lm.defaults.\(name) = function ... end)")
        }
        var scratch = LuaGenerationOptions()
        do {
            try applyOption(lua, name, at: -1, into: &scratch, error: { n, m in .message("\(n) \(m)") })
        } catch LuaError.message(let m) { throw HostError(description: m) }
        lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
        if lua.rawGet(-1, "defaults") != LUA_TTABLE { throw HostError(description: "lm.defaults is not a table") }
        lua.pushValue(base + 1)
        lua_setfield(L, -2, name)
    }
}
