// Running Lua without the REPL: `refrain run [--model PATH] [--threads N] [--no-store] FILE [ARGS...]`,
// `refrain [--model PATH] -e CODE`, and a script piped to `refrain` on standard input. Each is a run in the
// run store (unless --no-store or REFRAIN_STORE=0).
import Foundation

/// The leading `--model PATH` / `--threads N` / `--no-store` / sandbox options of a script command, and what
/// follows them.
struct ScriptOptions {
    var model: String?
    var noStore = false
    var threads = LanguageModelThreads.default
    var sandbox = SandboxOptions()
    var code: [String] = []
    var rest: [String] = []

    init(_ args: [String], allowCode: Bool) throws {
        var i = 0
        while i < args.count {
            let a = args[i]
            func value() throws -> String {
                guard i + 1 < args.count else { throw UsageError(description: "option \(a) needs a value") }
                i += 1
                return args[i]
            }
            let taken = try sandbox.parse(args, at: i)
            if taken > 0 { i += taken; continue }
            switch a {
            case "--model": model = try value()
            case "--threads":
                let v = try value()
                guard let t = Int(v), t >= 1 else { throw UsageError(description: "--threads expects an integer ≥ 1, got '\(v)'") }
                threads = t
            case "--no-store": noStore = true
            case "-e" where allowCode: code.append(try value())
            case "--":
                rest = Array(args[(i + 1)...]); return
            default:
                if a.hasPrefix("-") && a != "-" { throw UsageError(description: "unknown option \(a)") }
                rest = Array(args[i...]); return
            }
            i += 1
        }
    }

    /// A host with `--model`, or the default model when it is there (scripts that use no model run without it),
    /// recording into the run store as a run of `script` with `args`.
    func host(script: String, args: [String]) throws -> LuaHost {
        let d = defaultModelPath()
        let host = try LuaHost(modelPath: model ?? (FileManager.default.fileExists(atPath: d) ? d : nil), threads: threads,
                               sandbox: sandbox)
        host.openStore(path: noStore ? nil : RunStore.defaultPath(), script: script, args: args)
        return host
    }
}

enum LanguageModelThreads {
    static var `default`: Int { ProcessInfo.processInfo.activeProcessorCount }
}

/// `refrain run FILE ARGS...`: the exit status of the script.
func runCommand(_ args: [String]) throws -> Int32 {
    let o = try ScriptOptions(args, allowCode: false)
    guard let file = o.rest.first else { throw UsageError(description: "run needs a Lua file: refrain run FILE.lua [ARGS...]") }
    let args = Array(o.rest.dropFirst())
    return try o.host(script: file, args: args).runFile(file, args: args)
}

/// `refrain -e CODE` (each -e in turn), or the script on standard input when no -e is given.
func scriptEntry(_ args: [String]) throws -> Int32 {
    let o = try ScriptOptions(args, allowCode: true)
    let host = try o.host(script: o.code.isEmpty ? "stdin" : "-e", args: o.code)
    if o.code.isEmpty {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        return host.runCode([UInt8](data), name: "stdin")
    }
    for c in o.code {
        let status = host.runString(c, name: "(command line)")
        if status != 0 { return status }
    }
    return 0
}
