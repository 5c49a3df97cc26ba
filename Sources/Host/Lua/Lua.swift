// A thin Swift view of a `lua_State`: pushing and reading values, building tables, checking arguments. Nothing
// here raises a Lua error (a longjmp would skip Swift's cleanup): bindings throw `LuaError`, and the trampoline
// in LuaHost.swift raises it once every Swift frame that holds references has returned.
import CLua

/// The registry's pseudo-index (a macro in C).
let luaRegistry: Int32 = refrain_LUA_REGISTRYINDEX()

/// Writes to standard output through C's stdio (the stream Lua's `print` uses), flushed.
func writeStdout(_ s: String) {
    var s = s
    s.withUTF8 { b in b.withMemoryRebound(to: CChar.self) { refrain_write_stdout($0.baseAddress, $0.count) } }
}

/// An error a binding reports to Lua; the trampoline turns it into a Lua error.
enum LuaError: Error {
    /// `bad argument #n to 'f' (message)`, `n` counted on the Lua stack (Lua adjusts it for method calls).
    case argument(Int32, String)
    /// A message raised with the caller's position (`file:line: message`).
    case message(String)
    /// An error value that already carries its position (a callback's error), raised as is.
    case raw(String)
}

/// A borrowed `lua_State` with typed helpers; it owns nothing.
struct Lua {
    let L: OpaquePointer

    var top: Int32 { lua_gettop(L) }
    func type(_ i: Int32) -> Int32 { lua_type(L, i) }
    func typeName(_ i: Int32) -> String { String(cString: lua_typename(L, lua_type(L, i))) }
    func isNoneOrNil(_ i: Int32) -> Bool { lua_type(L, i) <= LUA_TNIL }
    func absolute(_ i: Int32) -> Int32 { lua_absindex(L, i) }

    // MARK: Pushing

    func push(_ s: String) {
        var s = s
        s.withUTF8 { b in _ = lua_pushlstring(L, b.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, b.count) }
    }
    func push(_ i: Int) { lua_pushinteger(L, lua_Integer(i)) }
    func push(_ d: Double) { lua_pushnumber(L, d) }
    func push(_ b: Bool) { lua_pushboolean(L, b ? 1 : 0) }
    func pushNil() { lua_pushnil(L) }
    func pushValue(_ i: Int32) { lua_pushvalue(L, i) }
    func pop(_ n: Int32 = 1) { lua_settop(L, -n - 1) }

    /// Pushes a new table and fills it with `build` (which sets fields on the table at the top).
    func newTable(array: Int = 0, record: Int = 0, _ build: () -> Void = {}) {
        lua_createtable(L, Int32(clamping: array), Int32(clamping: record))
        build()
    }
    /// `t[key] = value` for the table at the top, `value` pushed by `push`.
    func field(_ key: String, _ push: () -> Void) {
        push()
        lua_setfield(L, -2, key)
    }
    func field(_ key: String, _ s: String) { field(key) { self.push(s) } }
    func field(_ key: String, _ i: Int) { field(key) { self.push(i) } }
    func field(_ key: String, _ d: Double) { field(key) { self.push(d) } }
    func field(_ key: String, _ b: Bool) { field(key) { self.push(b) } }
    /// `t[i] = value` for the table at the top.
    func element(_ i: Int, _ push: () -> Void) {
        push()
        lua_rawseti(L, -2, lua_Integer(i))
    }
    /// Pushes a list of integers.
    func push(ids: [Int32]) {
        newTable(array: ids.count) { for (i, id) in ids.enumerated() { element(i + 1) { push(Int(id)) } } }
    }
    func push(numbers: [Float]) {
        newTable(array: numbers.count) { for (i, x) in numbers.enumerated() { element(i + 1) { push(Double(x)) } } }
    }
    func push(strings: [String]) {
        newTable(array: strings.count) { for (i, s) in strings.enumerated() { element(i + 1) { push(s) } } }
    }

    // MARK: Reading (no metamethods run)

    /// The string at `i` when it is a string (numbers are not converted).
    func string(_ i: Int32) -> String? {
        guard lua_type(L, i) == LUA_TSTRING else { return nil }
        var len = 0
        guard let p = refrain_lua_tolstring(L, i, &len) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: len), as: UTF8.self)
    }
    /// The integer at `i` when it is a number with an integral value.
    func integer(_ i: Int32) -> Int? {
        guard lua_type(L, i) == LUA_TNUMBER else { return nil }
        var ok: Int32 = 0
        let v = lua_tointegerx(L, i, &ok)
        return ok != 0 ? Int(v) : nil
    }
    func number(_ i: Int32) -> Double? {
        lua_type(L, i) == LUA_TNUMBER ? lua_tonumberx(L, i, nil) : nil
    }
    func boolean(_ i: Int32) -> Bool? {
        lua_type(L, i) == LUA_TBOOLEAN ? lua_toboolean(L, i) != 0 : nil
    }
    /// Pushes `t[key]` (raw) for the table at `t`; returns its type.
    @discardableResult func rawGet(_ t: Int32, _ key: String) -> Int32 {
        let t = absolute(t)
        push(key)
        return lua_rawget(L, t)
    }
    @discardableResult func rawGet(_ t: Int32, _ i: Int) -> Int32 { lua_rawgeti(L, t, lua_Integer(i)) }
    /// `#t` without metamethods.
    func rawLength(_ t: Int32) -> Int { Int(lua_rawlen(L, t)) }

    /// A string for any value, as Lua's `tostring` would make it without metamethods (for error messages).
    func describe(_ i: Int32) -> String {
        switch lua_type(L, i) {
        case LUA_TSTRING: return string(i)!
        case LUA_TNUMBER:
            var len = 0
            lua_pushvalue(L, i)
            let s = String(cString: refrain_lua_tolstring(L, -1, &len)!)
            pop()
            return s
        case LUA_TBOOLEAN: return boolean(i)! ? "true" : "false"
        case LUA_TNIL, LUA_TNONE: return "nil"
        default: return "(\(typeName(i)) value)"
        }
    }

    // MARK: Calling

    /// Calls the function below `nargs` arguments in protected mode; returns the error message (with traceback
    /// when `traceback`), or nil on success with `nresults` results pushed.
    func pcall(_ nargs: Int32, _ nresults: Int32, traceback: Bool) -> String? {
        var handler: Int32 = 0
        if traceback {
            let base = top - nargs
            lua_pushcclosure(L, LuaHost.messageHandler, 0)
            lua_rotate(L, base, 1)
            handler = base
        }
        let status = LuaHost.enforcing(L, true) { refrain_lua_pcall(L, nargs, nresults, handler) }
        defer { if traceback { lua_rotate(L, handler, -1); pop() } }
        if status == LUA_OK { return nil }
        let msg = string(-1) ?? "(error object is a \(typeName(-1)) value)"
        pop()
        return msg
    }
}

/// The arguments of one binding call, with checks that throw `bad argument` errors.
struct Arguments {
    let lua: Lua
    /// The Lua-visible name ("generate"), for messages that are not argument errors.
    let function: String

    func typeError(_ i: Int32, _ expected: String) -> LuaError {
        let got = lua.type(i) == LUA_TNONE ? "no value" : lua.typeName(i)
        return .argument(i, "\(expected) expected, got \(got)")
    }
    func string(_ i: Int32) throws -> String {
        guard let s = lua.string(i) else {
            if lua.type(i) == LUA_TNUMBER { return lua.describe(i) }
            throw typeError(i, "string")
        }
        return s
    }
    func optionalString(_ i: Int32) throws -> String? { lua.isNoneOrNil(i) ? nil : try string(i) }
    func integer(_ i: Int32, min: Int = Int.min) throws -> Int {
        guard let v = lua.integer(i) else {
            if lua.type(i) == LUA_TNUMBER { throw LuaError.argument(i, "number has no integer representation") }
            throw typeError(i, "integer")
        }
        guard v >= min else { throw LuaError.argument(i, "expected an integer ≥ \(min), got \(v)") }
        return v
    }
    /// Checks that `i` is a table (or nil when `optional`); returns whether one is there.
    @discardableResult func table(_ i: Int32, optional: Bool = false) throws -> Bool {
        if lua.type(i) == LUA_TTABLE { return true }
        if optional && lua.isNoneOrNil(i) { return false }
        throw typeError(i, "table")
    }
    /// A list of token ids at `i`, each checked against `vocabulary`.
    func ids(_ i: Int32, vocabulary: Int) throws -> [Int32] {
        try table(i)
        let n = lua.rawLength(i)
        var ids = [Int32](); ids.reserveCapacity(n)
        for k in 1...max(n, 1) where k <= n {
            lua.rawGet(i, k)
            defer { lua.pop() }
            guard let v = lua.integer(-1) else {
                throw LuaError.argument(i, "token id expected at position \(k), got \(lua.typeName(-1))")
            }
            guard v >= 0, v < vocabulary else {
                throw LuaError.argument(i, "token id \(v) at position \(k) is outside the vocabulary (0..\(vocabulary - 1))")
            }
            ids.append(Int32(v))
        }
        return ids
    }
}
