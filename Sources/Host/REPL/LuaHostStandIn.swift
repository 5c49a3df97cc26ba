// A stand-in for branch `lua`'s LuaHost, with its API, so that the REPL builds and runs before the merge: a bare
// Lua state, lua.c's evaluation rules, no `lm`. Deleted when LuaHost is merged.
import CLua
import Engine
import Foundation

final class LuaHost {
    enum Evaluation { case values([String]), ok, incomplete, error(String) }
    private let L: OpaquePointer
    var streamSink: ((String) -> Void)?
    var defaults = GenerationOptions()

    init(modelPath: String?, threads: Int) throws {
        L = luaL_newstate()
        luaL_openlibs(L)
    }

    func loadModel(path: String) throws {}

    func evaluate(_ chunk: String) -> Evaluation {
        let top = lua_gettop(L)
        defer { lua_settop(L, top) }
        if load("return " + chunk) != LUA_OK {
            lua_settop(L, top)
            let status = load(chunk)
            if status == LUA_ERRSYNTAX, let m = refrain_lua_tostring(L, -1).map({ String(cString: $0) }),
               m.hasSuffix("<eof>") { return .incomplete }
            if status != LUA_OK { return .error(String(cString: refrain_lua_tostring(L, -1))) }
        }
        if refrain_lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK {
            return .error(String(cString: refrain_lua_tostring(L, -1)))
        }
        let n = lua_gettop(L) - top
        if n == 0 { return .ok }
        return .values((1...n).map { String(cString: luaL_tolstring(L, top + $0, nil)) })
    }

    private func load(_ s: String) -> Int32 { refrain_luaL_loadbuffer(L, s, s.utf8.count, "=stdin") }

    func runFile(_ path: String, args: [String]) -> Int32 { luaL_loadfilex(L, path, nil) == LUA_OK && refrain_lua_pcall(L, 0, 0, 0) == LUA_OK ? 0 : 1 }
    func runString(_ code: String, name: String) -> Int32 { load(code) == LUA_OK && refrain_lua_pcall(L, 0, 0, 0) == LUA_OK ? 0 : 1 }
    func completions(for line: String) -> [String] {
        let word = line.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == "=" }).last.map(String.init) ?? ""
        return ["lm.generate", "lm.load", "lm.model"].filter { $0.hasPrefix(word) && !word.isEmpty }
    }
    func interrupt() {}
    func set(option: String, value: String) throws {}
}
