// The sandbox for scripts from elsewhere (`refrain run --sandbox[=DIR]`, `refrain --sandbox`): the standard
// library without what reaches outside the process (running commands, loading C code or binary chunks, the debug
// library's reach into other functions, writing files outside DIR), and the limits any host may have
// (`--memory-limit MB`, a counting allocator; `--time-limit S`, checked by the count hook and between tokens).
// A script that reaches a limit gets a Lua error; the host goes on.
import CLua
import Foundation

/// What `--sandbox`, `--memory-limit` and `--time-limit` ask of a host.
public struct SandboxOptions: Equatable {
    /// Whether the library is restricted (`--sandbox`).
    public var enabled = false
    /// The only folder a sandboxed script may write in (`--sandbox=DIR`); nil: it may write no file.
    public var folder: String?
    /// The bytes the Lua state may hold (`--memory-limit MB`); nil: no limit.
    public var memoryLimitMB: Double?
    /// The wall time one evaluation (a REPL line, a script) may take (`--time-limit S`); nil: no limit.
    public var timeLimit: Double?

    public init(enabled: Bool = false, folder: String? = nil, memoryLimitMB: Double? = nil, timeLimit: Double? = nil) {
        self.enabled = enabled || folder != nil
        self.folder = folder
        self.memoryLimitMB = memoryLimitMB
        self.timeLimit = timeLimit
    }

    /// The limit's message, as the count hook raises it.
    var memoryMessage: String { "memory limit of \(LuaHost.format(memoryLimitMB ?? 0)) MB reached" }
    var timeMessage: String { "time limit of \(LuaHost.format(timeLimit ?? 0)) s reached" }
}

extension LuaHost {
    /// Applies `sandbox`: the memory limit under the state, the restricted library. Runs last in `init`, so that
    /// the host's own modules load unrestricted.
    func installSandbox() throws {
        if let mb = sandbox.memoryLimitMB {
            let bytes = mb * 1_048_576
            limits.pointee.limit = bytes >= Double(Int.max / 2) ? Int.max / 2 : max(1, Int(bytes))
            limits.pointee.hard = limits.pointee.limit + 1 << 20
            refrain_lua_count_memory(L, limits)
        }
        let base = lua.top
        defer { lua_settop(L, base) }
        if sandbox.timeLimit != nil {
            guard LuaHost.limitsChunk.withCString({ refrain_luaL_loadbufferx(L, $0, strlen($0), "=limits", "t") }) == LUA_OK else {
                throw HostError(description: "the limits do not load: \(lua.string(-1) ?? "?")")
            }
            // A binding that does nothing: the trampoline raises the limit's error as it returns.
            pushFunction("limits") { _ in 0 }
            if let err = lua.pcall(1, 0, traceback: false) { throw HostError(description: "the limits do not install: \(err)") }
        }
        guard sandbox.enabled else { return }
        var root: String?
        if let dir = sandbox.folder {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw HostError(description: "--sandbox: cannot create the folder '\(dir)': \(error.localizedDescription)")
            }
            guard let r = LuaHost.realPath(dir) else { throw HostError(description: "--sandbox: cannot resolve the folder '\(dir)'") }
            root = r
        }
        guard LuaHost.sandboxChunk.withCString({ refrain_luaL_loadbufferx(L, $0, strlen($0), "=sandbox", "t") }) == LUA_OK else {
            throw HostError(description: "the sandbox does not load: \(lua.string(-1) ?? "?")")
        }
        pushFunction("sandbox") { lua in
            let path = try Arguments(lua: lua, function: "sandbox").string(1)
            switch LuaHost.writablePath(path, root: root) {
            case .success(let p): lua.push(p); return 1
            case .failure(let e): lua.pushNil(); lua.push(e.description); return 2
            }
        }
        if let err = lua.pcall(1, 0, traceback: false) { throw HostError(description: "the sandbox does not install: \(err)") }
    }

    /// With a time limit, the functions that catch errors re-raise the limit's error: a script cannot outrun the
    /// limit by catching it in a loop. Called with `check()`, which raises the limit's error once one is reached.
    static let limitsChunk = #"""
    local check = ...
    local pcall, xpcall, resume = pcall, xpcall, coroutine.resume
    local function after(ok, ...)
      if not ok then check() end
      return ok, ...
    end
    _G.pcall = function(...) return after(pcall(...)) end
    _G.xpcall = function(...) return after(xpcall(...)) end
    coroutine.resume = function(...) return after(resume(...)) end
    """#

    /// The Lua side of the sandbox, called with `writable(path) -> resolved | nil, why`.
    static let sandboxChunk = #"""
    local writable = ...
    local function blocked(name)
      return function() error("sandbox: " .. name .. " is blocked (refrain --sandbox)", 2) end
    end
    for _, name in ipairs { "execute", "exit", "tmpname", "setlocale" } do os[name] = blocked("os." .. name) end
    io.popen = blocked("io.popen")
    io.tmpfile = blocked("io.tmpfile")
    package.loadlib = blocked("package.loadlib")
    package.cpath = ""

    -- Writing: only to paths inside the folder, resolved (symbolic links and '..' followed) before they are opened.
    local function checked(path)
      local p, why = writable(path)
      if not p then error("sandbox: " .. why, 3) end
      return p
    end
    local open, output, remove, rename = io.open, io.output, os.remove, os.rename
    io.open = function(name, mode)
      if type(name) == "string" and type(mode) == "string" and mode:find("[wa+]") then name = checked(name) end
      return open(name, mode)
    end
    io.output = function(file)
      if type(file) == "string" then file = checked(file) end
      return output(file)
    end
    os.remove = function(name) return remove(checked(name)) end
    os.rename = function(from, to) return rename(checked(from), checked(to)) end

    -- Code: text chunks only (a binary chunk can break the VM), and no C modules.
    local load, loadfile = load, loadfile
    _G.load = function(chunk, name, mode, ...) return load(chunk, name, "t", ...) end
    _G.loadfile = function(name, mode, ...) return loadfile(name, "t", ...) end
    _G.dofile = function(name)
      local chunk, err = loadfile(name, "t")
      if not chunk then error(err, 2) end
      return chunk()
    end
    package.searchers[2] = function(name)
      local path, err = package.searchpath(name, package.path)
      if not path then return err end
      local chunk, lerr = loadfile(path, "t")
      if not chunk then error(("error loading module '%s' from file '%s':\n\t%s"):format(name, path, lerr), 3) end
      return chunk, path
    end
    package.searchers[3], package.searchers[4] = nil, nil

    -- debug: tracebacks and function information only (no hooks, locals, upvalues, metatables or registry).
    local safe = { traceback = debug.traceback, getinfo = debug.getinfo }
    _G.debug, package.loaded.debug = safe, safe
    """#

    /// Why a path may not be written, for the sandbox's error.
    struct SandboxRefusal: Error, CustomStringConvertible { let description: String }

    /// `path` resolved (relative to the current folder, symbolic links and `..` followed) when it lies inside
    /// `root`; otherwise why not. A file that does not exist yet is resolved through its folder.
    static func writablePath(_ path: String, root: String?) -> Result<String, SandboxRefusal> {
        guard let root else {
            return .failure(SandboxRefusal(description: "writing '\(path)' is blocked (refrain --sandbox=DIR allows writing inside DIR)"))
        }
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var resolved: String
        var st = stat()
        if lstat(absolute, &st) == 0 {
            guard let r = realPath(absolute) else {
                return .failure(SandboxRefusal(description: "cannot resolve '\(path)' (a link to a missing file?)"))
            }
            resolved = r
        } else {
            let url = URL(fileURLWithPath: absolute)
            let name = url.lastPathComponent
            guard !name.isEmpty, name != ".", name != "..", let dir = realPath(url.deletingLastPathComponent().path) else {
                return .failure(SandboxRefusal(description: "cannot write '\(path)': its folder does not exist"))
            }
            resolved = (dir == "/" ? "" : dir) + "/" + name
        }
        guard resolved == root || resolved.hasPrefix(root == "/" ? "/" : root + "/") else {
            return .failure(SandboxRefusal(description: "writing '\(path)' is outside the sandbox folder \(root)"))
        }
        return .success(resolved)
    }

    /// `path`, a folder to make with its missing parents, resolved as `writablePath` does when it lies inside
    /// `root`: the part that exists is resolved (symbolic links and `..` followed), the rest must not hold `..`.
    static func creatablePath(_ path: String, root: String?) -> Result<String, SandboxRefusal> {
        guard let root else {
            return .failure(SandboxRefusal(description: "writing '\(path)' is blocked (refrain --sandbox=DIR allows writing inside DIR)"))
        }
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var existing = absolute.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var missing: [String] = []
        var st = stat()
        while !existing.isEmpty && lstat("/" + existing.joined(separator: "/"), &st) != 0 {
            missing.insert(existing.removeLast(), at: 0)
        }
        missing.removeAll { $0 == "." }
        guard !missing.contains("..") else {
            return .failure(SandboxRefusal(description: "cannot make '\(path)': '..' after a folder that does not exist"))
        }
        guard let dir = realPath("/" + existing.joined(separator: "/")) else {
            return .failure(SandboxRefusal(description: "cannot resolve '\(path)' (a link to a missing file?)"))
        }
        let resolved = ([dir == "/" ? "" : dir] + missing).joined(separator: "/")
        guard resolved == root || resolved.hasPrefix(root == "/" ? "/" : root + "/") else {
            return .failure(SandboxRefusal(description: "writing '\(path)' is outside the sandbox folder \(root)"))
        }
        return .success(resolved.isEmpty ? "/" : resolved)
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// A limit's number as the user wrote it: 64, 0.5.
    static func format(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
    }

    // MARK: - Limits during an evaluation

    /// Starts the clock of one evaluation (a REPL chunk, a script) and forgets earlier refusals.
    func beginEvaluation() {
        _ = takeInterrupt()
        limits.pointee.refused = 0
        if let s = sandbox.timeLimit { deadline = DispatchTime.now().uptimeNanoseconds &+ UInt64(s * 1e9) }
    }

    func endEvaluation() {
        deadline = 0
    }

    var timeIsUp: Bool { deadline != 0 && DispatchTime.now().uptimeNanoseconds >= deadline }

    /// Whether the state holds more than its limit once garbage is collected.
    func overMemoryLimit() -> Bool {
        guard limits.pointee.limit > 0, limits.pointee.used > limits.pointee.limit else { return false }
        refrain_lua_collect(L)
        return limits.pointee.used > limits.pointee.limit
    }

    /// The message of an error that reached the host: Lua's "not enough memory" names the limit that refused it.
    func explain(_ message: String) -> String {
        if limits.pointee.refused != 0 && message.hasPrefix("not enough memory") {
            return sandbox.memoryMessage + " (an allocation was refused)"
        }
        return message
    }

    /// Runs `body` with the memory limit enforced (Lua code between host calls); restores the previous state.
    static func enforcing<T>(_ L: OpaquePointer, _ on: Bool, _ body: () -> T) -> T {
        guard let p = refrain_lua_extraspace(L).pointee else { return body() }
        let limits = Unmanaged<LuaHost>.fromOpaque(p).takeUnretainedValue().limits
        let saved = limits.pointee.enforcing
        limits.pointee.enforcing = on ? 1 : 0
        defer { limits.pointee.enforcing = saved }
        return body()
    }
}
