// The `lm` module's prompt states: `m:state(prompt)` makes one; `append`, `generate`, `fork`, `rewind`, `text`,
// `ids` and `#st` work on it. A state is the engine's ModelState: tokens plus their KV cache.
import CLua
import Engine
import Foundation

/// A prompt state as a userdata keeps it.
final class StateBox {
    let state: ModelState
    init(_ state: ModelState) { self.state = state }
}

extension LuaHost {
    typealias StateOperation = (Arguments, ModelState) throws -> Int32

    /// The state methods, in the order `help()` lists them.
    var stateOperations: [(String, StateOperation)] {
        [("append", append), ("generate", stateGenerate), ("fork", fork), ("rewind", rewind), ("text", text),
         ("ids", ids)]
    }

    /// Creates the shared state metatable (`lm.state`) in the registry.
    func installStateMetatable() {
        luaL_newmetatable(L, "lm.state")
        lua.field("__gc") { lua_pushcclosure(L, LuaHost.releaseUserdata, 0) }
        lua.field("__len") {
            pushFunction("len") { [unowned self] lua in
                lua.push(try self.state(Arguments(lua: lua, function: "len"), 1).count); return 1
            }
        }
        lua.field("__tostring") {
            pushFunction("tostring") { [unowned self] lua in
                lua.push("state: \(try self.state(Arguments(lua: lua, function: "tostring"), 1).count) tokens"); return 1
            }
        }
        lua.field("__index") {
            lua.newTable()
            for (name, op) in stateOperations {
                lua.field(name) {
                    pushFunction(name) { [unowned self] lua in
                        let a = Arguments(lua: lua, function: name)
                        return try op(a, try self.state(a, 1))
                    }
                }
            }
        }
        lua.pop()
    }

    func pushState(_ st: ModelState) { pushUserdata(StateBox(st), metatableNamed: "lm.state") }

    /// The state at argument `i`.
    func state(_ a: Arguments, _ i: Int32) throws -> ModelState {
        guard let b = object(i, kind: "lm.state", as: StateBox.self) else { throw a.typeError(i, "state") }
        return b.state
    }

    // MARK: - Methods

    /// `m:state(prompt)`: a state holding the prompt's tokens (none when the prompt is nil).
    func state(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        let o = try options(args, first + 1, known: ["intervene": .strings])
        let x = try intervene(args, o, model: model)
        let st: ModelState
        do { st = try model.makeState(interventions: x) } catch { throw LuaError.message("state: \(error)") }
        if !args.lua.isNoneOrNil(first) { try st.append(try promptIDs(args, model, first)) }
        pushState(st)
        return 1
    }

    /// `st:append(text or ids)`: text is tokenized without BOS, control tokens parsed. Returns the state.
    func append(_ a: Arguments, _ st: ModelState) throws -> Int32 {
        let ids: [Int32]
        if let s = a.lua.string(2) {
            ids = st.model.tokenize(s, special: true, addSpecial: false)
        } else if a.lua.type(2) == LUA_TTABLE {
            ids = try a.ids(2, vocabulary: st.model.config.vocabularySize)
        } else {
            throw a.typeError(2, "string or table")
        }
        try st.append(ids)
        a.lua.pushValue(1)
        return 1
    }

    /// `st:generate(opts)`: generates after the state's tokens and appends what it generated.
    func stateGenerate(_ a: Arguments, _ st: ModelState) throws -> Int32 {
        try admitModelCall("generate")
        let o = try generationOptions(a, opts: 2, model: st.model)
        defer { release(o) }
        guard st.count > 0 else { throw LuaError.message("generate: the state is empty (append a prompt first)") }
        if !o.engine.interventions.isEmpty, try st.model.checked(o.engine.interventions) != st.interventions {
            throw LuaError.message("generate: a state's interventions are set when it is made (m:state(prompt, {intervene = ...})); its positions were computed under them")
        }
        // The state's own interventions are what its tokens were computed under: recorded with the call.
        var fields = o.engine.recordFields
        if let x = st.interventions { fields["intervene"] = LuaHost.recordFields(x.list) }
        let g = try recorder.recorded("state.generate", st.model, prompt: st.tokens, options: fields, {
            try runGeneration(a, o, stream: o.stream ?? (streamSink != nil), sample: nil, model: st.model) {
                try st.generate(o.engine, onToken: $0)
            }
        }, outputs: { ([callOutput($0, st.model)], nil) })
        pushGeneration(g, st.model)
        return 1
    }

    /// `st:fork()`: an independent copy; pending tokens are evaluated first, so both share that work.
    func fork(_ a: Arguments, _ st: ModelState) throws -> Int32 {
        if st.count > 0 { _ = try st.logits() }
        pushState(st.fork())
        return 1
    }

    /// `st:rewind(n)`: keeps the first `n` tokens (a negative `n` drops the last `-n`). Returns the state.
    func rewind(_ a: Arguments, _ st: ModelState) throws -> Int32 {
        let n = try a.integer(2)
        let keep = n < 0 ? st.count + n : n
        guard keep >= 0, keep <= st.count else {
            throw LuaError.argument(2, "cannot rewind to \(n) in a state of \(st.count) tokens")
        }
        try st.rewind(to: keep)
        a.lua.pushValue(1)
        return 1
    }

    /// `st:text()`: the state's tokens as text, control tokens included.
    func text(_ a: Arguments, _ st: ModelState) throws -> Int32 {
        a.lua.push(st.model.detokenize(st.tokens, special: true))
        return 1
    }

    /// `st:ids()`: the state's token ids.
    func ids(_ a: Arguments, _ st: ModelState) throws -> Int32 {
        a.lua.push(ids: st.tokens)
        return 1
    }
}
