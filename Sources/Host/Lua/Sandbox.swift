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
    /// What a sandboxed script may read, connect to and see of the environment besides the defaults
    /// (`--allow-read`, `--allow-net`, `--allow-env`; Permissions.swift).
    public var grants = SandboxGrants()
    /// The script `refrain run` runs, whose folder a sandboxed script may read (nil: `-e`, standard input, the REPL).
    public var script: String?
    /// The tokens all model calls together may generate (`--max-model-tokens N`); nil: no limit.
    public var maxModelTokens: Int?
    /// The model calls a script may make (`--max-model-calls N`); nil: no limit.
    public var maxModelCalls: Int?

    public init(enabled: Bool = false, folder: String? = nil, memoryLimitMB: Double? = nil, timeLimit: Double? = nil,
                grants: SandboxGrants = SandboxGrants(), script: String? = nil, maxModelTokens: Int? = nil,
                maxModelCalls: Int? = nil) {
        self.enabled = enabled || folder != nil
        self.folder = folder
        self.memoryLimitMB = memoryLimitMB
        self.timeLimit = timeLimit
        self.grants = grants
        self.script = script
        self.maxModelTokens = maxModelTokens
        self.maxModelCalls = maxModelCalls
    }

    /// The limit's message, as the count hook raises it.
    var memoryMessage: String { "memory limit of \(LuaHost.format(memoryLimitMB ?? 0)) MB reached" }
    var timeMessage: String { "time limit of \(LuaHost.format(timeLimit ?? 0)) s reached" }
    var tokenMessage: String { "model token limit of \(maxModelTokens ?? 0) generated tokens reached (--max-model-tokens)" }
    var callMessage: String { "model call limit of \(maxModelCalls ?? 0) calls reached (--max-model-calls)" }
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
        do { access = try resolveAccess(root: root) } catch { throw HostError(description: "\(error)") }
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
        pushFunction("sandbox") { [unowned self] lua in
            let path = try Arguments(lua: lua, function: "sandbox").string(1)
            switch self.readablePath(path) {
            case .success(let p): lua.push(p); return 1
            case .failure(let e): lua.pushNil(); lua.push(e.description); return 2
            }
        }
        pushFunction("getenv") { [unowned self] lua in try self.sandboxedGetenv(lua) }
        if let err = lua.pcall(3, 0, traceback: false) { throw HostError(description: "the sandbox does not install: \(err)") }
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

    /// The Lua side of the sandbox, called with `writable(path)` and `readable(path)` (each `-> resolved | nil,
    /// why`) and `getenv(name)`. Every function it uses is captured as a local when it is installed, and no string
    /// method is called through the string metatable: a script that replaces `type`, `string.find` or
    /// `getmetatable("").__index` changes nothing here.
    static let sandboxChunk = #"""
    local writable, readable, getenv = ...
    local type, tostring, error, select, pcall = type, tostring, error, select, pcall
    local find, gsub, gmatch, format, concat = string.find, string.gsub, string.gmatch, string.format, table.concat
    local function blocked(name)
      return function() error("sandbox: " .. name .. " is blocked (refrain --sandbox)", 2) end
    end
    for _, name in ipairs { "execute", "exit", "tmpname", "setlocale" } do os[name] = blocked("os." .. name) end
    io.popen = blocked("io.popen")
    io.tmpfile = blocked("io.tmpfile")
    package.loadlib = blocked("package.loadlib")
    package.cpath = ""
    os.getenv = getenv

    -- File names as the C functions read them: a number is its text (io.open(123) opens the file "123").
    local function text(x)
      if type(x) == "number" then return tostring(x) end
      return x
    end
    -- A path through a check (writable or readable), resolved (symbolic links and '..' followed) before it is opened.
    local function checked(check, path, level)
      local p, why = check(path)
      if not p then error("sandbox: " .. why, level or 3) end
      return p
    end
    local open, lines, input, output, remove, rename = io.open, io.lines, io.input, io.output, os.remove, os.rename
    io.open = function(name, mode)
      name = text(name)
      if type(name) == "string" then
        if type(mode) == "string" and find(mode, "[wa+]") then name = checked(writable, name)
        else name = checked(readable, name) end
      end
      return open(name, mode)
    end
    io.lines = function(name, ...)
      name = text(name)
      if type(name) == "string" then name = checked(readable, name) end
      return lines(name, ...)
    end
    io.input = function(file)
      file = text(file)
      if type(file) == "string" then file = checked(readable, file) end
      return input(file)
    end
    io.output = function(file)
      file = text(file)
      if type(file) == "string" then file = checked(writable, file) end
      return output(file)
    end
    os.remove = function(name) return remove(checked(writable, text(name))) end
    os.rename = function(from, to) return rename(checked(writable, text(from)), checked(writable, text(to))) end

    -- Code: text chunks only (a binary chunk can break the VM), read from readable files, and no C modules.
    local load, loadfile = load, loadfile
    local function readfile(name)
      name = text(name)
      if name ~= nil then name = checked(readable, name, 4) end
      return name
    end
    _G.load = function(chunk, name, mode, ...) return load(chunk, name, "t", ...) end
    _G.loadfile = function(name, mode, ...) return loadfile(readfile(name), "t", ...) end
    _G.dofile = function(name)
      local chunk, err = loadfile(readfile(name), "t")
      if not chunk then error(err, 2) end
      return chunk()
    end
    -- package.searchpath as Lua's, trying only the files a script may read (the others are named as refused).
    local function searchpath(name, path, sep, rep)
      if type(name) ~= "string" or type(path) ~= "string" then error("bad argument to 'searchpath' (strings expected)", 2) end
      sep, rep = sep or ".", rep or "/"
      if sep ~= "" then name = gsub(name, gsub(sep, "%p", "%%%0"), (gsub(rep, "%%", "%%%%"))) end
      local tried = {}
      for template in gmatch(path, "[^;]+") do
        local file = gsub(template, "%?", (gsub(name, "%%", "%%%%")))
        local p = readable(file)
        if p then
          local f = open(p, "r")
          if f then f:close(); return file end
          tried[#tried + 1] = "\n\tno file '" .. file .. "'"
        else
          tried[#tried + 1] = "\n\tno file '" .. file .. "' (not readable in the sandbox: --allow-read)"
        end
      end
      return nil, concat(tried)
    end
    package.searchpath = searchpath
    package.searchers[2] = function(name)
      local path, err = searchpath(name, package.path)
      if not path then return err end
      local chunk, lerr = loadfile(checked(readable, path), "t")
      if not chunk then error(format("error loading module '%s' from file '%s':\n\t%s", name, path, lerr), 3) end
      return chunk, path
    end
    package.searchers[3], package.searchers[4] = nil, nil

    -- debug: tracebacks and function information only (no hooks, locals, upvalues, metatables or registry), and
    -- getinfo without 'f': the function running at a level (a C function of the library inside a finalizer or a
    -- message handler, say) is not handed out.
    local getinfo = debug.getinfo
    local function noF(what)
      if what == nil then return "lnSrtu" end
      if type(what) == "string" then return (gsub(what, "[f>]", "")) end
      return what
    end
    -- A level counts from the caller of this wrapper, as it would from the caller of debug.getinfo.
    local function safeinfo(...)
      local a, b, c = ...
      if type(a) == "thread" then return getinfo(a, b, noF(c)) end
      if type(a) == "number" then a = a + 1 end
      local info = getinfo(a, noF(b))
      return info
    end
    local safe = { traceback = debug.traceback, getinfo = safeinfo }
    _G.debug, package.loaded.debug = safe, safe
    """#

    /// Why a path may not be written, for the sandbox's error.
    struct SandboxRefusal: Error, CustomStringConvertible { let description: String }

    /// `path` resolved (relative to the current folder, symbolic links and `..` followed) when it lies inside
    /// `root`; otherwise why not. A file that does not exist yet is resolved through its folder.
    static func writablePath(_ path: String, root: String?) -> Result<String, SandboxRefusal> {
        guard !path.contains("\0") else { return .failure(SandboxRefusal(description: "writing a file name with a NUL byte is refused")) }
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
        guard !path.contains("\0") else { return .failure(SandboxRefusal(description: "writing a file name with a NUL byte is refused")) }
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

    /// Whether the model calls together have generated `--max-model-tokens` tokens.
    var tokenLimitReached: Bool { sandbox.maxModelTokens.map { generatedTokens >= $0 } ?? false }

    /// Counts `count` model calls (a generation, a sample, a score, an inspection; a batch counts each request),
    /// refusing them when `--max-model-calls` or `--max-model-tokens` is spent.
    func admitModelCall(_ function: String, count: Int = 1) throws {
        if tokenLimitReached { throw LuaError.message("\(function): \(sandbox.tokenMessage)") }
        if let max = sandbox.maxModelCalls, modelCalls + count > max { throw LuaError.message("\(function): \(sandbox.callMessage)") }
        modelCalls += count
    }

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
