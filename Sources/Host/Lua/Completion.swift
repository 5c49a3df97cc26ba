// Tab completion for the REPL: the word at the end of a line (`lm.ge`, `m:gen`, `pri`) completed from globals,
// table fields and methods, following `__index` tables (never running a metamethod).
import CLua

extension LuaHost {
    /// Full replacement candidates for the word at the end of `line`, sorted: "lm.ge" → ["lm.generate"],
    /// "m:gen" → ["m:generate"]. After `:` only functions are offered.
    public func completions(for line: String) -> [String] {
        let identifier: (Character) -> Bool = { $0.isLetter || $0.isNumber || $0 == "_" }
        let word = String(line.reversed().prefix { identifier($0) || $0 == "." || $0 == ":" }.reversed())
        if let first = word.first, first.isNumber || first == "." || first == ":" { return [] }
        var parts = word.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var last = parts.removeLast(), method = false, path = parts
        if let colon = last.firstIndex(of: ":") {
            path.append(String(last[..<colon]))
            last = String(last[last.index(after: colon)...])
            method = true
            if last.contains(":") { return [] }
        }
        if path.contains(where: { $0.contains(":") || $0.isEmpty }) { return [] }
        let base = lua.top
        defer { lua_settop(L, base) }
        lua_rawgeti(L, luaRegistry, lua_Integer(LUA_RIDX_GLOBALS))
        for p in path {
            guard lookup(p) else { return [] }
        }
        let prefix = String(word.dropLast(last.count))
        var names = Set<String>()
        collect(into: &names, startingWith: last, functionsOnly: method)
        return names.sorted().map { prefix + $0 }
    }

    /// Replaces the value at the top with its field `key` (raw, then through `__index` tables); false when absent.
    private func lookup(_ key: String) -> Bool {
        for _ in 0..<8 {
            if lua.type(-1) == LUA_TTABLE {
                if lua.rawGet(-1, key) != LUA_TNIL { refrain_lua_replace(L, -2); return true }
                lua.pop()
            }
            guard nextIndexTable() else { return false }
        }
        return false
    }

    /// Replaces the value at the top with its metatable's `__index` when that is a table.
    private func nextIndexTable() -> Bool {
        guard lua_getmetatable(L, -1) != 0 else { return false }
        let t = lua.rawGet(-1, "__index")
        refrain_lua_replace(L, -2)
        guard t == LUA_TTABLE else { lua.pop(); return false }
        refrain_lua_replace(L, -2)
        return true
    }

    /// Adds the identifier keys of the value at the top and of its `__index` chain that start with `prefix`.
    private func collect(into names: inout Set<String>, startingWith prefix: String, functionsOnly: Bool) {
        lua.pushValue(-1)
        for _ in 0..<8 {
            if lua.type(-1) == LUA_TTABLE {
                lua.pushNil()
                while lua_next(L, -2) != 0 {
                    if let k = lua.string(-2), k.hasPrefix(prefix), !k.hasPrefix("__"),
                       k.first.map({ $0.isLetter || $0 == "_" }) ?? false,
                       k.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }),
                       !functionsOnly || lua.type(-1) == LUA_TFUNCTION {
                        names.insert(k)
                    }
                    lua.pop()
                }
            }
            guard nextIndexTable() else { break }
        }
        lua.pop()
    }
}
