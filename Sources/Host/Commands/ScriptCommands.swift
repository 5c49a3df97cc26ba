// Running Lua without the REPL: `refrain run [--model PATH] [--threads N] [--no-store] FILE [ARGS...]`,
// `refrain [--model PATH] -e CODE`, and a script piped to `refrain` on standard input. Each is a run in the
// run store (unless --no-store or REFRAIN_STORE=0).
import Foundation

/// A host for Lua from the command line: `--model` or the default model when it is there (scripts that use no
/// model run without it), `--threads`, the sandbox, and recording into the run store as a run of `script` with
/// `args` (unless `noStore`).
func scriptHost(model: ModelOptions, sandbox: SandboxFlags, noStore: Bool, script: String, args: [String],
                scriptFile: String? = nil) throws -> LuaHost {
    var options = try sandbox.options()
    options.script = scriptFile
    let host = try LuaHost(modelPath: try model.pathIfPresent(), threads: try model.threadCount(), sandbox: options)
    host.openStore(path: noStore ? nil : RunStore.defaultPath(), script: script, args: args)
    return host
}

/// `refrain run FILE ARGS...`: the exit status of the script.
func runCommand(_ o: RunCommand) throws -> Int32 {
    guard let file = o.script.first else { throw UsageError(description: "run needs a Lua file: refrain run FILE.lua [ARGS...]") }
    if file.hasPrefix("-") && file != "-" { throw UsageError(description: "unknown option \(file)") }
    let args = Array(o.script.dropFirst())
    return try scriptHost(model: o.model, sandbox: o.sandbox, noStore: o.noStore, script: file, args: args,
                          scriptFile: file == "-" ? nil : file).runFile(file, args: args)
}

/// `refrain -e CODE` (each -e in turn), or the script on standard input when no -e is given.
func scriptEntry(_ o: ReplCommand) throws -> Int32 {
    let host = try scriptHost(model: o.model, sandbox: o.sandbox, noStore: o.noStore,
                              script: o.code.isEmpty ? "stdin" : "-e", args: o.code)
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
