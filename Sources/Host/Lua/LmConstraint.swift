// `lm.grammar` and `lm.accepts`: the constraint options (grammar, regex, choices, json_schema) outside a
// generation. `lm.grammar` shows the GBNF grammar a constraint becomes (what the engine matches, what lm.remote
// sends to a llama.cpp server); `lm.accepts` says whether a text is a complete sentence of it (lm.remote checks a
// server's constrained output with it, a strategy can check an answer).
import CLua
import Engine
import Foundation

extension LuaHost {
    static let constraintKeys = ["grammar", "regex", "choices", "json_schema"]

    /// The constraint options of the table at `i` (no lm.defaults: only what the table says).
    func constraintOptions(_ a: Arguments, _ i: Int32) throws -> GenerationOptions {
        let lua = a.lua
        try a.table(i)
        try LmOptions.checkNames(lua, i, known: Set(LuaHost.constraintKeys), function: a.function)
        var o = LuaGenerationOptions()
        for key in LuaHost.constraintKeys {
            lua.rawGet(i, key)
            defer { lua.pop() }
            if lua.isNoneOrNil(-1) { continue }
            try applyOption(lua, key, at: -1, into: &o, error: { name, msg in .argument(i, "option '\(name)' \(msg)") })
        }
        return o.engine
    }

    /// `lm.grammar` and `lm.accepts`, in the `lm` table at the absolute index `lm`.
    func installConstraintBindings(lm: Int32) {
        pushFunction("grammar") { [unowned self] lua in
            let a = Arguments(lua: lua, function: "lm.grammar")
            let o = try self.constraintOptions(a, 1)
            do {
                guard let g = try o.constraintGrammar() else { lua.pushNil(); return 1 }
                _ = try GrammarCache.shared.grammar(g)
                lua.push(g)
                if let s = o.jsonSchema { lua.push(s); return 2 }
                return 1
            } catch {
                throw LuaError.message("lm.grammar: \(error)")
            }
        }
        lua_setfield(L, lm, "grammar")
        pushFunction("accepts") { [unowned self] lua in
            let a = Arguments(lua: lua, function: "lm.accepts")
            let o = try self.constraintOptions(a, 1)
            let text = try a.string(2)
            do {
                guard let g = try o.constraintGrammar() else { throw LuaError.message("lm.accepts: give grammar, regex, choices or json_schema") }
                let c = try GrammarCache.shared.constraint(g, tokenizer: try self.defaultModel("accepts").tokenizer)
                lua.push(c.accepts(text: text))
                return 1
            } catch let e as LuaError {
                throw e
            } catch {
                throw LuaError.message("lm.accepts: \(error)")
            }
        }
        lua_setfield(L, lm, "accepts")
    }
}
