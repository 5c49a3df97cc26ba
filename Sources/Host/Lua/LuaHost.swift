// The Lua host: one lua_State with the standard libraries, the `lm` module over the engine, `help`, and the
// entry points the REPL and the command line use (evaluate a line, run a file or a string, complete a word,
// interrupt). Swift functions reach Lua through one C trampoline that finds its host in an upvalue.
import CLua
import Engine
import Foundation
import Synchronization

/// A Lua 5.4 state with the `lm` module, driven by the REPL and by `refrain run`.
public final class LuaHost {
    /// What evaluating a REPL chunk gave.
    public enum Evaluation: Equatable {
        /// The pretty-printed values of an expression.
        case values([String])
        /// A statement ran (or a `;` suppressed the values).
        case ok
        /// The chunk ends before its syntax does: the REPL reads another line and evaluates the two together.
        case incomplete
        /// A syntax or run-time error, with a traceback for run-time errors.
        case error(String)
    }

    /// An error the host reports to Swift callers (bad `:set` values, model files that do not load).
    public struct HostError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The Lua state's main thread (what `lua_close` takes).
    let mainState: OpaquePointer
    /// The thread the host works on: the main thread, or, while a binding runs, the thread (a coroutine) that
    /// called it, so that what a binding pushes lands on its caller's stack.
    var L: OpaquePointer
    let threads: Int
    /// The sandbox and limits this host runs its code under (none by default).
    let sandbox: SandboxOptions
    /// The sandbox's grants, resolved when it is installed (Permissions.swift).
    var access = SandboxAccess()
    /// The model files this host loaded (resolved): a sandboxed script may read them.
    var loadedModelFiles: Set<String> = []
    /// The tokens generated and the model calls made so far (`--max-model-tokens`, `--max-model-calls`).
    var generatedTokens = 0
    var modelCalls = 0
    /// Experiments a sandboxed script was found to own (LmStore.swift's `checkOwnExperiment`).
    var ownExperiments: Set<String> = []
    /// The allocator's count and limit (SandboxOptions.memoryLimitMB); owned by the host, freed after the state.
    let limits: UnsafeMutablePointer<refrain_limits>
    /// When the current evaluation's time is up (uptime nanoseconds; 0: no limit running).
    var deadline: UInt64 = 0
    /// Swift functions callable from Lua, indexed by the trampoline's second upvalue.
    var bindings: [(name: String, body: (Lua) throws -> Int32)] = []
    /// Set by `interrupt()`; a generation in progress or the count hook takes it.
    let interruptFlag = Atomic<Bool>(false)
    /// Whether the last generation was cancelled by an interrupt (so that `sample` stops too).
    var lastInterrupted = false
    /// Registry references: the `lm` table, the pretty-printer, the model and state method tables.
    var lmRef: Int32 = LUA_NOREF
    var prettyRef: Int32 = LUA_NOREF
    var modelMethodsRef: Int32 = LUA_NOREF
    var helpNamesRef: Int32 = LUA_NOREF
    /// Help entries registered from Lua with `lm.document` (the harness modules' among them).
    var documented: [HelpEntry] = []
    /// Records this host's model calls, with the labels `lm.store.label` attached (Store/Recorder.swift).
    let recorder = Recorder()

    /// Where streamed generation text goes in the REPL; when set, generation streams unless `stream=false`.
    public var streamSink: ((String) -> Void)?

    /// Creates the Lua state and the `lm` module; loads the model at `modelPath` as `lm.model` (nil: none yet,
    /// `lm.load` and `loadModel` still work). `threads` is what models loaded here compute with; `sandbox`
    /// restricts the library and limits memory and time (Sandbox.swift).
    public init(modelPath: String?, threads: Int, sandbox: SandboxOptions = SandboxOptions()) throws {
        guard let L = luaL_newstate() else { throw HostError(description: "cannot create a Lua state") }
        self.L = L
        self.mainState = L
        self.threads = threads
        self.sandbox = sandbox
        limits = .allocate(capacity: 1)
        limits.initialize(to: refrain_limits())
        refrain_luaL_openlibs(L)
        refrain_lua_extraspace(L).pointee = Unmanaged.passUnretained(self).toOpaque()
        lua_sethook(L, LuaHost.interruptHook, LUA_MASKCOUNT, 1000)
        try installModule()
        if let p = modelPath { try loadModel(path: p) }
        try installSandbox()
    }

    deinit {
        lua_close(mainState)
        limits.deallocate()
    }

    var lua: Lua { Lua(L: L) }

    /// Loads the model at `path` (a file, or a name under `$REFRAIN_HOME/models`) and makes it `lm.model`.
    public func loadModel(path: String) throws {
        let resolved = LuaHost.resolveModelPath(path)
        if case .failure(let e) = modelReadable(given: path, resolved: resolved) { throw HostError(description: "sandbox: " + e.description) }
        let model = try LanguageModel(path: resolved, threads: threads)
        loadedModelFiles.insert(LuaHost.resolveForReading(LuaHost.absolute(resolved)))
        lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
        pushModel(model)
        lua_setfield(L, -2, "model")
        lua.pop()
    }

    /// Asks running code to stop: a generation ends at its next token (finish "cancelled", the partial result
    /// returned), Lua code raises "interrupted!" at its next count hook. Only sets an atomic flag, so a signal
    /// handler may call it.
    public func interrupt() {
        interruptFlag.store(true, ordering: .relaxed)
    }

    /// Takes a pending interrupt (clearing it).
    func takeInterrupt() -> Bool {
        interruptFlag.exchange(false, ordering: .relaxed)
    }

    // MARK: - Running code

    /// Evaluates one REPL chunk by lua.c's rules: `=expr` means `return expr`; a chunk is first tried as
    /// `return <chunk>` so that a bare expression prints its values; a syntax error at `<eof>` means the chunk is
    /// incomplete. The first value is kept in the global `_`; a trailing `;` suppresses printing.
    public func evaluate(_ chunk: String) -> Evaluation {
        beginEvaluation()
        let base = lua.top
        defer { lua_settop(L, base); endEvaluation() }
        var code = chunk
        if code.hasPrefix("=") { code = "return " + code.dropFirst() }
        let quiet = chunk.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(";")
        if load("return " + code, name: "=stdin") != nil {
            if let err = load(code, name: "=stdin") {
                return err.hasSuffix("<eof>") ? .incomplete : .error(explain(err))
            }
        }
        if let err = lua.pcall(0, LUA_MULTRET, traceback: true) { return .error(explain(err)) }
        let n = lua.top - base
        if n == 0 { return .ok }
        lua.pushValue(base + 1)
        lua_setglobal(L, "_")
        if quiet { return .ok }
        return .values((1...n).map { pretty(base + $0) })
    }

    /// Runs a script file with `args` in the global `arg` (arg[0] the script) and as the chunk's `...`.
    /// Errors go to standard error with a traceback; returns the exit status (0 or 1).
    public func runFile(_ path: String, args: [String]) -> Int32 {
        lua.newTable(array: args.count, record: 1) {
            lua.element(0) { lua.push(path) }
            for (i, a) in args.enumerated() { lua.element(i + 1) { lua.push(a) } }
        }
        lua_setglobal(L, "arg")
        guard let data = FileManager.default.contents(atPath: path) else {
            report("cannot open \(path)")
            return 1
        }
        // The bytes as they are: Lua strings are bytes, and a script may hold NULs or text that is not UTF-8.
        var bytes = [UInt8](data)
        if bytes.first == UInt8(ascii: "#") { bytes = Array("--".utf8) + bytes }   // a #! line, as lua.c skips it
        return run(bytes, name: "@" + path, args: args)
    }

    /// Runs `code` (from `-e`, or a script read from standard input) under the chunk name `name`.
    public func runString(_ code: String, name: String) -> Int32 {
        run(Array(code.utf8), name: "=" + name, args: [])
    }

    /// Runs the bytes of a script (standard input's, which need not be UTF-8) under the chunk name `name`.
    public func runCode(_ code: [UInt8], name: String) -> Int32 {
        run(code, name: "=" + name, args: [])
    }

    private func run(_ code: [UInt8], name: String, args: [String]) -> Int32 {
        beginEvaluation()
        let base = lua.top
        defer { lua_settop(L, base); endEvaluation() }
        if let err = load(code, name: name) { report(explain(err)); return 1 }
        for a in args { lua.push(a) }
        if let err = lua.pcall(Int32(args.count), 0, traceback: true) { report(explain(err)); return 1 }
        refrain_flush_stdout()
        return 0
    }

    /// Compiles `code`, pushing the chunk; returns the syntax error instead (nothing pushed). The code's length
    /// is its byte count: a NUL inside it does not end it.
    private func load(_ code: String, name: String) -> String? {
        load(Array(code.utf8), name: name)
    }

    private func load(_ code: [UInt8], name: String) -> String? {
        let status = LuaHost.enforcing(L, true) {
            code.withUnsafeBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) { refrain_luaL_loadbufferx(L, $0.baseAddress, $0.count, name, "t") }
            }
        }
        if status == LUA_OK { return nil }
        let msg = lua.string(-1) ?? "syntax error"
        lua.pop()
        return msg
    }

    private func report(_ message: String) {
        refrain_flush_stdout()
        FileHandle.standardError.write(Data(("refrain: " + message + "\n").utf8))
    }

    /// The pretty-printed value at `i` (the prelude's `lm.pretty`).
    func pretty(_ i: Int32) -> String {
        let i = lua.absolute(i)
        lua_rawgeti(L, luaRegistry, lua_Integer(prettyRef))
        lua.pushValue(i)
        if let err = lua.pcall(1, 1, traceback: false) { return "<cannot print: \(err)>" }
        defer { lua.pop() }
        return lua.string(-1) ?? "?"
    }

    // MARK: - Calling Swift from Lua

    /// Pushes a Lua function that runs `body`; `name` is what its non-argument errors are prefixed with.
    func pushFunction(_ name: String, _ body: @escaping (Lua) throws -> Int32) {
        bindings.append((name, body))
        lua_pushlightuserdata(L, Unmanaged.passUnretained(self).toOpaque())
        lua.push(bindings.count - 1)
        lua_pushcclosure(L, LuaHost.trampoline, 2)
    }

    /// Makes `body` the global function `name` (for the REPL's own helpers, and tests).
    func register(global name: String, _ body: @escaping (Lua) throws -> Int32) {
        pushFunction(name, body)
        lua_setglobal(L, name)
    }

    /// Every Swift function's C entry. `dispatch` does the work and returns; only then, with no Swift frame
    /// holding references, does the error (if any) longjmp.
    static let trampoline: lua_CFunction = { L in
        let r = LuaHost.dispatch(L!)
        if r >= 0 { return r }
        if r == -1 { return refrain_lua_raise(L) }
        if r == -2 { return refrain_lua_raise_where(L) }
        return refrain_lua_raise_arg(L, -r - 2)
    }

    /// Runs the binding named by the upvalues; returns the result count, or (with the message pushed) -1 for a
    /// raw error, -2 for a positioned message, -(n + 2) for a bad argument n.
    @inline(never) static func dispatch(_ L: OpaquePointer) -> Int32 {
        let host = Unmanaged<LuaHost>.fromOpaque(lua_touserdata(L, refrain_lua_upvalueindex(1))!).takeUnretainedValue()
        let index = Int(lua_tointegerx(L, refrain_lua_upvalueindex(2), nil))
        let binding = host.bindings[index]
        let lua = Lua(L: L)
        // A binding called from a coroutine works on that coroutine's stack.
        let callerState = host.L
        host.L = L
        defer { host.L = callerState }
        // The host's own work is not held to the memory limit (a refused allocation would longjmp through Swift
        // frames); the limits are checked when it returns.
        let saved = host.limits.pointee.enforcing
        host.limits.pointee.enforcing = 0
        defer { host.limits.pointee.enforcing = saved }
        do {
            let results = try binding.body(lua)
            if let limit = host.limitReached() { lua.push(limit); return -2 }
            return results
        } catch LuaError.argument(let n, let msg) {
            lua.push(msg); return -(n + 2)
        } catch LuaError.message(let msg) {
            lua.push(msg); return -2
        } catch LuaError.raw(let msg) {
            lua.push(msg); return -1
        } catch {
            lua.push("\(binding.name): \(error)"); return -2
        }
    }

    /// lua.c's message handler: the error as a string with a traceback.
    static let messageHandler: lua_CFunction = { L in
        guard let L else { return 0 }
        if lua_type(L, 1) != LUA_TSTRING && lua_type(L, 1) != LUA_TNUMBER {
            if luaL_callmeta(L, 1, "__tostring") != 0 && lua_type(L, -1) == LUA_TSTRING { return 1 }
            lua_pushstring(L, "(error object is a \(String(cString: refrain_luaL_typename(L, 1))) value)")
            refrain_lua_replace(L, 1)
        }
        luaL_traceback(L, L, refrain_lua_tostring(L, 1), 1)
        return 1
    }

    /// The count hook: raises "interrupted!" when an interrupt is pending, as lua.c's SIGINT hook does, and the
    /// limits' errors when the time is up or the state holds more than its memory limit.
    static let interruptHook: lua_Hook = { L, _ in
        let (stop, value) = LuaHost.hookCheck(L!)
        switch stop {
        case 1: _ = refrain_lua_raise_interrupted(L)
        case 2: _ = refrain_lua_raise_time_limit(L, value)
        case 3: _ = refrain_lua_raise_memory_limit(L, value)
        default: break
        }
    }

    /// What the hook must raise: 0 nothing, 1 an interrupt, 2 the time limit (of `value` seconds), 3 the memory
    /// limit (of `value` MB). Returns plain values, so that no Swift reference is held when the hook raises.
    @inline(never) static func hookCheck(_ L: OpaquePointer) -> (Int32, Double) {
        guard let p = refrain_lua_extraspace(L).pointee else { return (0, 0) }
        let host = Unmanaged<LuaHost>.fromOpaque(p).takeUnretainedValue()
        if host.takeInterrupt() { return (1, 0) }
        if host.timeIsUp { return (2, host.sandbox.timeLimit ?? 0) }
        if host.overMemoryLimit() { return (3, host.sandbox.memoryLimitMB ?? 0) }
        return (0, 0)
    }

    /// A limit's message when one is reached (checked as a binding returns).
    func limitReached() -> String? {
        if timeIsUp { return sandbox.timeMessage }
        if tokenLimitReached { return sandbox.tokenMessage }
        if overMemoryLimit() { return sandbox.memoryMessage }
        return nil
    }

    // MARK: - Paths

    /// A model path as given, or a name (with or without `.gguf`) under `$REFRAIN_HOME/models`.
    static func resolveModelPath(_ p: String) -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: p) { return p }
        for name in [p, p + ".gguf"] where !p.contains("/") {
            let q = RefrainHome.models + "/" + name
            if fm.fileExists(atPath: q) { return q }
        }
        return p
    }

    /// The project's `scripts/` folder: `$REFRAIN_SCRIPTS`, else the one in a repository above the executable.
    static func scriptsDirectory() -> String? {
        if let s = ProcessInfo.processInfo.environment["REFRAIN_SCRIPTS"] { return s }
        return projectScriptsDirectory()
    }

    /// The `scripts/` folder of the repository above the executable, if it runs from one.
    static func projectScriptsDirectory() -> String? {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let fm = FileManager.default
        while dir.path != "/" {
            if fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path),
               fm.fileExists(atPath: dir.appendingPathComponent("scripts").path) {
                return dir.appendingPathComponent("scripts").path
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    /// `package.path`: the current folder, `~/.refrain`, the project's scripts, then Lua's default.
    func setPackagePath() {
        var parts = ["./?.lua", "./?/init.lua", NSHomeDirectory() + "/.refrain/?.lua", NSHomeDirectory() + "/.refrain/?/init.lua"]
        if let s = LuaHost.scriptsDirectory() { parts += [s + "/?.lua", s + "/?/init.lua"] }
        lua_getglobal(L, "package")
        lua.rawGet(-1, "path")
        let old = lua.string(-1) ?? ""
        lua.pop()
        lua.field("path", (parts + [old]).joined(separator: ";"))
        lua.pop()
    }
}
