// The experiment harness: lm.extract, lm.verify, lm.data, lm.tasks, lm.stats, lm.json, lm.random, lm.progress,
// lm.plot, lm.analysis, lm.view and lm.batch, written in Lua (Sources/Host/Lua/lm/*.lua, what researchers read and change),
// plus the three things Lua cannot do alone that they need: a monotonic clock, isatty, and making folders.
//
// Where the Lua lives: SwiftPM's `embedInCode` copies each lm/*.lua file into the binary (`PackageResources`), and
// the host puts them in `package.preload`, so `require "lm.stats"` finds the same code under `swift run`, under
// the tests (whose REFRAIN_SCRIPTS points at Tests/lua/scripts) and in a binary copied anywhere, with no search
// path to get wrong. They are loaded when the host starts, not lazily on first use, so that Tab completes
// `lm.stats.` and `help(lm.stats.auc)` works before anything touched lm.stats; compiling and running all of them
// takes a few milliseconds (6 ms measured on a busy two-core machine).
import CLua
import Foundation

extension LuaHost {
    /// The harness modules in load order, with their embedded sources: `lm.<name>` is `require "lm.<name>"`.
    static let harnessModules: [(name: String, source: [UInt8])] = [
        ("random", PackageResources.random_lua), ("json", PackageResources.json_lua),
        ("extract", PackageResources.extract_lua), ("verify", PackageResources.verify_lua),
        ("data", PackageResources.data_lua), ("tasks", PackageResources.tasks_lua),
        ("stats", PackageResources.stats_lua), ("progress", PackageResources.progress_lua),
        ("plot", PackageResources.plot_lua), ("analysis", PackageResources.analysis_lua),
        ("view", PackageResources.view_lua), ("choice", PackageResources.choice_lua), ("remote", PackageResources.remote_lua),
        ("batch", PackageResources.batch_lua),
    ]

    /// The absolute path of the running binary (`lm.executable`, for a script that starts more refrain processes,
    /// as the experiment runner's --workers does): /proc/self/exe where there is one, else argv[0] made absolute
    /// (a bare name is looked up on $PATH).
    static func executablePath() -> String {
        let fm = FileManager.default
        if let p = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe"), p.hasPrefix("/") { return p }
        let a = CommandLine.arguments.first ?? "refrain"
        if a.hasPrefix("/") { return a }
        if a.contains("/") { return URL(fileURLWithPath: fm.currentDirectoryPath).appendingPathComponent(a).standardized.path }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let p = String(dir) + "/" + a
            if fm.isExecutableFile(atPath: p) { return p }
        }
        return a
    }

    /// `lm.executable`, `lm.clock` and `lm.isatty`, in the `lm` table at the absolute index `lm`.
    func installHarnessBindings(lm: Int32) {
        pushFunction("executable") { lua in
            lua.push(LuaHost.executablePath())
            return 1
        }
        lua_setfield(L, lm, "executable")
        pushFunction("clock") { lua in
            var t = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t)
            lua.push(Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9)
            return 1
        }
        lua_setfield(L, lm, "clock")
        pushFunction("isatty") { lua in
            let a = Arguments(lua: lua, function: "isatty")
            let fd: Int32
            if let n = lua.integer(1) {
                fd = Int32(clamping: n)
            } else if let p = luaL_testudata(lua.L, 1, "FILE*") {
                let stream = p.assumingMemoryBound(to: luaL_Stream.self).pointee
                guard stream.closef != nil, let f = stream.f else { lua.push(false); return 1 }
                fd = fileno(f)
            } else {
                throw a.typeError(1, "file or file descriptor")
            }
            lua.push(isatty(fd) == 1)
            return 1
        }
        lua_setfield(L, lm, "isatty")
        lua.newTable()
        pushFunction("mkdir") { [unowned self] lua in
            let path = try Arguments(lua: lua, function: "lm.fs.mkdir").string(1)
            lua.push(try self.makeFolder(path))
            return 1
        }
        lua_setfield(L, -2, "mkdir")
        pushFunction("lock") { [unowned self] lua in
            let path = try Arguments(lua: lua, function: "lm.fs.lock").string(1)
            switch try self.lockFile(path) {
            case .none: lua.push(true); return 1
            case .some(let holder): lua.push(false); lua.push(holder); return 2
            }
        }
        lua_setfield(L, -2, "lock")
        pushFunction("cwd") { lua in
            lua.push(FileManager.default.currentDirectoryPath)
            return 1
        }
        lua_setfield(L, -2, "cwd")
        lua_setfield(L, lm, "fs")
    }

    /// The lock files this process holds (`lm.fs.lock`), by path: open descriptors with an exclusive flock(2), kept
    /// until the process ends, when the kernel releases them, however it ends (a kill -9 too).
    nonisolated(unsafe) static var heldLocks: [String: Int32] = [:]

    /// `lm.fs.lock(path)`: takes an exclusive lock on the file at path (made if missing) for the rest of this
    /// process. nil when taken (or already held by this process); when another process holds it, what that
    /// process wrote into the file ("pid N since DATE"). Sandboxed, the file must lie inside the sandbox folder.
    func lockFile(_ path: String) throws -> String? {
        var target = path
        if sandbox.enabled {
            switch LuaHost.creatablePath(path, root: sandbox.folder.flatMap(LuaHost.realPath)) {
            case .success(let p): target = p
            case .failure(let e): throw LuaError.message("lm.fs.lock: sandbox: \(e.description)")
            }
        }
        let key = LuaHost.realPath(target) ?? target
        if LuaHost.heldLocks[key] != nil { return nil }
        // O_CLOEXEC: child processes (the runner's workers, a shell) must not inherit the lock and keep it alive.
        let fd = open(target, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw LuaError.message("lm.fs.lock: cannot open '\(path)': \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            var buffer = [UInt8](repeating: 0, count: 512)
            let n = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            if e != EWOULDBLOCK { throw LuaError.message("lm.fs.lock: cannot lock '\(path)': \(String(cString: strerror(e)))") }
            let text = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            return text.isEmpty ? "another process" : text
        }
        let stamp = ISO8601DateFormatter().string(from: Date())
        let note = Array("pid \(getpid()) since \(stamp)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, note, note.count, 0)
        LuaHost.heldLocks[LuaHost.realPath(target) ?? key] = fd
        return nil
    }

    /// `lm.fs.mkdir(path)`: makes the folder and the missing folders above it (`mkdir -p`); true when it made it,
    /// false when it was there. Sandboxed, the folder must lie inside the sandbox folder, as for writing a file.
    func makeFolder(_ path: String) throws -> Bool {
        var target = path
        if sandbox.enabled {
            switch LuaHost.creatablePath(path, root: sandbox.folder.flatMap(LuaHost.realPath)) {
            case .success(let p): target = p
            case .failure(let e): throw LuaError.message("lm.fs.mkdir: sandbox: \(e.description)")
            }
        }
        // mkdir(2) folder by folder, so that a failure names its cause (strerror).
        var prefix = target.hasPrefix("/") ? "" : "."
        var made = false
        let parts = target.split(separator: "/")
        for (i, part) in parts.enumerated() {
            prefix += "/" + part
            if mkdir(prefix, 0o777) == 0 { made = true; continue }
            let e = errno
            var st = stat()
            if e == EEXIST, stat(prefix, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { made = false; continue }
            if e == EEXIST && i == parts.count - 1 { throw LuaError.message("lm.fs.mkdir: '\(path)' exists and is not a folder") }
            // A file where a folder above it should be: mkdir says it exists; the reason is that it is no folder.
            throw LuaError.message("lm.fs.mkdir: cannot create '\(path)': \(String(cString: strerror(e == EEXIST ? ENOTDIR : e)))")
        }
        return made
    }

    /// Puts each harness module in `package.preload` and sets `lm.<name>` to what it returns. Runs after the
    /// global `lm` and `package.loaded.lm` exist (the modules `require "lm"`).
    func installHarness() throws {
        let base = lua.top
        defer { lua_settop(L, base) }
        lua_getglobal(L, "package")
        lua.rawGet(-1, "preload")
        let preload = lua.absolute(-1)
        for (name, source) in LuaHost.harnessModules {
            let status = source.withUnsafeBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) {
                    refrain_luaL_loadbufferx(L, $0.baseAddress, $0.count, "@lm/\(name).lua", "t")
                }
            }
            guard status == LUA_OK else {
                throw HostError(description: "the harness module lm.\(name) does not compile: \(lua.string(-1) ?? "?")")
            }
            lua_setfield(L, preload, "lm." + name)
        }
        lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
        let lm = lua.absolute(-1)
        for (name, _) in LuaHost.harnessModules {
            lua_getglobal(L, "require")
            lua.push("lm." + name)
            if let err = lua.pcall(1, 1, traceback: true) {
                throw HostError(description: "the harness module lm.\(name) does not load: \(err)")
            }
            lua_setfield(L, lm, name)
        }
    }
}
