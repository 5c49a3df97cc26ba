// The sandbox's permissions, in the manner of Deno: under `--sandbox`, reading files, the network and the
// environment are refused unless granted (`--allow-read=PATH[,PATH]`, `--allow-net=HOST[:PORT][,...]`,
// `--allow-env=NAME[,...]`; a bare flag grants all). What a sandboxed script may always read: the sandbox folder,
// the script's own folder (unless that is the home folder or above it), the project's `scripts/` library, and the
// model files the host loaded. Every refusal names the flag that would grant it. The checks are here, in Swift,
// where a script cannot reach them; the Lua side (Sandbox.swift's chunk) only routes the standard library's file
// functions through `readable` and `writable`.
import CLua
import Foundation

/// What `--allow-read`, `--allow-net` and `--allow-env` grant.
public struct SandboxGrants: Equatable {
    /// Paths a sandboxed script may read (files, or folders with everything under them); nil: every path.
    public var read: [String]? = []
    /// Hosts (optionally with a port: `host:port`, `[v6]:port`) a sandboxed script may connect to; nil: every host.
    public var net: [String]? = []
    /// Environment variables a sandboxed script may read; nil: every one.
    public var env: [String]? = []

    public init(read: [String]? = [], net: [String]? = [], env: [String]? = []) {
        self.read = read
        self.net = net
        self.env = env
    }

    /// A flag's value as a grant list: nil (all) for the bare flag's marker, else the comma-separated entries.
    static func list(_ value: String, flag: String) throws -> [String]? {
        if value == SandboxFlags.noFolder { return nil }
        let parts = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.contains(where: \.isEmpty) else { throw UsageError(description: "\(flag)= has an empty entry in '\(value)'") }
        return parts
    }

    /// A host grant as (host, port): `example.com`, `example.com:8080`, `127.0.0.1:80`, `[::1]:8080`, `[::1]`.
    static func parseHost(_ s: String) throws -> (host: String, port: Int?) {
        guard !s.contains("/"), !s.contains("@"), !s.contains(where: \.isWhitespace) else {
            throw UsageError(description: "--allow-net: '\(s)' is not HOST[:PORT]")
        }
        var host = s, port: Int?
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { throw UsageError(description: "--allow-net: '\(s)' has no closing ']'") }
            host = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else { throw UsageError(description: "--allow-net: bad port in '\(s)'") }
                port = p
            }
        } else if let colon = s.lastIndex(of: ":") {
            guard !s[..<colon].contains(":") else {
                throw UsageError(description: "--allow-net: write an IPv6 address in brackets, as [\(s)] or [\(s)]:PORT")
            }
            host = String(s[..<colon])
            guard let p = Int(s[s.index(after: colon)...]) else { throw UsageError(description: "--allow-net: bad port in '\(s)'") }
            port = p
        }
        guard !host.isEmpty, !host.contains("/"), !host.contains("@") else { throw UsageError(description: "--allow-net: '\(s)' is not HOST[:PORT]") }
        if let port, !(1...65535).contains(port) { throw UsageError(description: "--allow-net: port \(port) out of range in '\(s)'") }
        return (host.lowercased(), port)
    }
}

/// The grants as the host checks them: paths resolved once, when the sandbox is installed (until then, and
/// without a sandbox, everything: nil).
struct SandboxAccess {
    /// Folders and files readable with everything under them (resolved); nil: everything.
    var readRoots: [String]?
    var hosts: [(host: String, port: Int?)]?
    var env: Set<String>?
}

extension LuaHost {
    /// Resolves the grants when the sandbox is installed: the folder, the script's folder, the scripts library and
    /// each `--allow-read` path (a path that does not exist yet is kept as written, made absolute).
    func resolveAccess(root: String?) throws -> SandboxAccess {
        var a = SandboxAccess()
        if let read = sandbox.grants.read {
            var roots: [String] = []
            if let root { roots.append(root) }
            if let script = sandbox.script, let dir = LuaHost.realPath(URL(fileURLWithPath: LuaHost.absolute(script)).deletingLastPathComponent().path) {
                // Not when the script sits in the home folder or above it: that would grant every file of the user.
                let home = LuaHost.realPath(NSHomeDirectory()) ?? NSHomeDirectory()
                if !(home == dir || LuaHost.inside(home, dir)) { roots.append(dir) }
            }
            // The strategy library: $REFRAIN_SCRIPTS when set, and the project's scripts/ beside the binary.
            for s in [LuaHost.scriptsDirectory(), LuaHost.projectScriptsDirectory()].compactMap({ $0 }) {
                if let r = LuaHost.realPath(s) { roots.append(r) }
            }
            for p in read { roots.append(LuaHost.resolveForReading(LuaHost.absolute(p))) }
            a.readRoots = roots
        } else {
            a.readRoots = nil
        }
        if let net = sandbox.grants.net { a.hosts = try net.map(SandboxGrants.parseHost) } else { a.hosts = nil }
        a.env = sandbox.grants.env.map(Set.init)
        return a
    }

    /// `path` made absolute against the current folder, `.` and `..` taken lexically (no link followed).
    static func absolute(_ path: String) -> String {
        let p = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var parts: [Substring] = []
        for c in p.split(separator: "/") {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// Whether `path` is `root` or lies under it (both resolved).
    static func inside(_ path: String, _ root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root + "/")
    }

    /// The path the kernel would open for `path` (absolute): resolved whole when it exists, else its folder
    /// resolved and the name added, else `path` with `..` taken lexically from the part that exists.
    static func resolveForReading(_ path: String) -> String {
        if let r = realPath(path) { return r }
        var existing = path.split(separator: "/").map(String.init)
        var missing: [String] = []
        var st = stat()
        while !existing.isEmpty && lstat("/" + existing.joined(separator: "/"), &st) != 0 {
            missing.insert(existing.removeLast(), at: 0)
        }
        let base = realPath("/" + existing.joined(separator: "/")) ?? "/"
        return absolute((base == "/" ? "" : base) + "/" + missing.joined(separator: "/"))
    }

    /// Under the sandbox: `path` resolved when a script may read it; otherwise why not, naming the flag. The
    /// refusal reads the same whether the file exists or not.
    func readablePath(_ path: String) -> Result<String, SandboxRefusal> {
        guard sandbox.enabled, let roots = access.readRoots else { return .success(path) }
        // C reads a name only up to a NUL: a name with one would be checked as one file and opened as another.
        guard !path.contains("\0") else { return .failure(SandboxRefusal(description: "reading a file name with a NUL byte is refused")) }
        let given = LuaHost.absolute(path)
        let resolved = LuaHost.resolveForReading(given)
        if roots.contains(where: { LuaHost.inside(resolved, $0) }) || loadedModelFiles.contains(resolved) {
            return .success(resolved)   // what was checked is what is opened
        }
        return .failure(SandboxRefusal(description: "reading '\(path)' is refused (grant it with --allow-read=\(given))"))
    }

    /// Under the sandbox, whether `lm.load` may read the model at `resolved` (what `resolveModelPath(given)` gave):
    /// a readable path, a model the host loaded, or a file of `$REFRAIN_HOME/models` named without a folder.
    func modelReadable(given: String, resolved: String) -> Result<Void, SandboxRefusal> {
        guard sandbox.enabled, access.readRoots != nil else { return .success(()) }
        if !given.contains("/"), resolved.hasPrefix(RefrainHome.models + "/") { return .success(()) }
        if loadedModelFiles.contains(LuaHost.resolveForReading(LuaHost.absolute(resolved))) { return .success(()) }
        switch readablePath(resolved) {
        case .success: return .success(())
        case .failure: return .failure(SandboxRefusal(description: "reading the model '\(given)' is refused (grant it with --allow-read=\(LuaHost.absolute(resolved)), or put it in $REFRAIN_HOME/models and name it without a folder)"))
        }
    }

    /// Under the sandbox, nil when a script may connect to `host`:`port`, else why not.
    func netRefusal(host: String, port: Int) -> String? {
        guard sandbox.enabled, let hosts = access.hosts else { return nil }
        return LuaHost.netRefusal(hosts: hosts, host: host, port: port)
    }

    /// The check of `netRefusal`, for a closure that outlives the call (https redirects).
    static func netRefusal(hosts: [(host: String, port: Int?)], host: String, port: Int) -> String? {
        let h = host.lowercased()
        if hosts.contains(where: { $0.host == h && ($0.port == nil || $0.port == port) }) { return nil }
        let shown = h.contains(":") ? "[\(h)]:\(port)" : "\(h):\(port)"
        return "sandbox: connecting to \(shown) is refused (grant it with --allow-net=\(shown))"
    }

    /// The sandbox's network check for HTTPPolicy (nil without a sandbox or with every host granted).
    var redirectCheck: (@Sendable (String, Int) -> String?)? {
        guard sandbox.enabled, let hosts = access.hosts else { return nil }
        let granted = hosts.map { SendableHost(host: $0.host, port: $0.port) }
        return { host, port in LuaHost.netRefusal(hosts: granted.map { ($0.host, $0.port) }, host: host, port: port) }
    }

    /// Under the sandbox, nil when a script may read the environment variable `name`, else why not.
    func envRefusal(_ name: String) -> String? {
        guard sandbox.enabled, let env = access.env else { return nil }
        return env.contains(name) ? nil : "sandbox: reading the environment variable \(name) is refused (grant it with --allow-env=\(name))"
    }

    /// `os.getenv` in the sandbox: the variable when granted, else nil and the refusal.
    func sandboxedGetenv(_ lua: Lua) throws -> Int32 {
        let name = try Arguments(lua: lua, function: "getenv").string(1)
        if let why = envRefusal(name) { lua.pushNil(); lua.push(why); return 2 }
        guard let v = getenv(name) else { lua.pushNil(); return 1 }
        lua.push(String(cString: v))
        return 1
    }
}

/// A granted host, as a closure that crosses threads holds it.
struct SendableHost: Sendable {
    let host: String
    let port: Int?
}
