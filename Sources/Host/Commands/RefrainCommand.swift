// refrain's command line, on swift-argument-parser: `refrain` (the Lua REPL, or Lua from -e or standard input) and
// its subcommands, each a type with its help beside its options. The bodies are in the files named in each type;
// the executable (Sources/refrain/main.swift) calls `Refrain.main` and nothing else.
import ArgumentParser
import Engine
import Foundation

/// `refrain`: the subcommands; with none, `repl` (the Lua REPL, or Lua from -e or standard input).
struct RefrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "refrain",
        abstract: "A Lua REPL and scripting host over a GGUF language model engine.",
        discussion: """
        With no command: the Lua REPL on the model (history in $REFRAIN_HOME/history; help() inside), or the Lua \
        code of -e, or a Lua script piped on standard input (refrain repl --help for its options). Models are GGUF \
        files of the \(Architecture.supportedList) architectures; $REFRAIN_HOME defaults to ~/.cache/refrain. Every model \
        call of the REPL, run and -e is recorded in the run store ($REFRAIN_HOME/runs.sqlite, or REFRAIN_STORE=PATH; \
        REFRAIN_STORE=0 or --no-store turns it off). Errors are one line on standard error; the exit status is 1, or \
        2 for a usage error.
        """,
        version: refrainVersion,
        subcommands: [ReplCommand.self, TokenizeCommand.self, GenerateCommand.self, ScoreCommand.self, BenchCommand.self,
                      InfoCommand.self, RunCommand.self, ServeCommand.self, LogCommand.self, ReplayCommand.self],
        defaultSubcommand: ReplCommand.self)
}

/// `refrain` with no command (or `refrain repl`): the Lua REPL on the model, or Lua from `-e`, or a script on
/// standard input when that is not a terminal.
struct ReplCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "repl",
        abstract: "The Lua REPL on the model (the default), or the Lua code of -e, or a Lua script on standard input.")
    @OptionGroup var model: ModelOptions
    @OptionGroup(title: "Sandbox and limits") var sandbox: SandboxFlags
    @Flag(name: .customLong("no-store"), help: "Record no model calls in the run store.") var noStore = false
    @Option(name: .customShort("e"), parsing: .unconditionalSingleValue, help: ArgumentHelp("Run Lua code (repeatable: each in turn).", valueName: "code"))
    var code: [String] = []

    func run() throws {
        // Lua without the REPL: `refrain -e CODE`, or a script on standard input when that is not a terminal.
        if !code.isEmpty || isatty(0) == 0 { throw ExitStatus(code: try scriptEntry(self)) }
        try interactive(self)
    }
}

/// An exit status a command ends with (a script's, replay's "did not reproduce").
struct ExitStatus: Error {
    let code: Int32
}

/// `refrain tokenize` (ModelCommands.swift).
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "Print the token ids of TEXT.")
    @OptionGroup var model: ModelOptions
    @Flag(help: "Machine-readable output (ids and pieces).") var json = false
    @Flag(help: "Parse control tokens written in the text (<|im_start|>, ...).") var special = false
    @Flag(name: .customLong("no-bos"), help: "Add no BOS token.") var noBOS = false
    @Argument(help: ArgumentHelp("The text, or - to read standard input.", valueName: "text")) var text: [String] = []
    func run() throws { try tokenizeCommand(self) }
}

/// `refrain generate` (ModelCommands.swift).
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Continue TEXT (or --ids), streaming the text as it comes.")
    @OptionGroup var model: ModelOptions
    @OptionGroup(title: "Generation") var generation: GenerationFlags
    @OptionGroup(title: "Control vectors (llama.cpp's flags)") var controlVectors: ControlVectorFlags
    @Flag(help: "Machine-readable output: ids, text, log-probabilities, top alternatives, finish, usage.") var json = false
    @Flag(help: "Parse control tokens written in the text.") var special = false
    @Flag(help: "Wrap TEXT as a user message in the model's chat template.") var chat = false
    @Option(help: ArgumentHelp("A system message (with --chat).", valueName: "text")) var system: String?
    @Option(help: ArgumentHelp("A chat template family when the file has none: \(ChatTemplate.Family.allCases.map(\.rawValue).joined(separator: ", ")).",
                               valueName: "name")) var template: String?
    @Option(help: ArgumentHelp("The prompt as comma-separated token ids, instead of TEXT.", valueName: "ids")) var ids: String?
    @Option(help: ArgumentHelp("quantized, or exact: f32 weights and activations (slow).", valueName: "precision")) var precision: String?
    @Flag(name: .customLong("no-store"), help: "Record the call in no run store.") var noStore = false
    @Argument(help: ArgumentHelp("The text, or - to read standard input.", valueName: "text")) var text: [String] = []
    func run() throws { try generateCommand(self) }
}

/// `refrain score` (ModelCommands.swift).
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "score", abstract: "Log-probabilities of a continuation after a prefix.")
    @OptionGroup var model: ModelOptions
    @Option(help: ArgumentHelp("The prefix text.", valueName: "text")) var prefix: String?
    @Option(help: ArgumentHelp("The continuation text (or TEXT, or - for standard input).", valueName: "text")) var continuation: String?
    @Option(name: .customLong("prefix-ids"), help: ArgumentHelp("The prefix as comma-separated token ids.", valueName: "ids")) var prefixIDs: String?
    @Option(help: ArgumentHelp("The continuation as comma-separated token ids.", valueName: "ids")) var ids: String?
    @OptionGroup(title: "Control vectors (llama.cpp's flags)") var controlVectors: ControlVectorFlags
    @Option(help: ArgumentHelp("quantized, or exact: f32 weights and activations (slow).", valueName: "precision")) var precision: String?
    @Flag(help: "Machine-readable output.") var json = false
    @Flag(help: "Parse control tokens written in the texts.") var special = false
    @Flag(name: .customLong("no-store"), help: "Record the call in no run store.") var noStore = false
    @Argument(help: ArgumentHelp("The continuation, or - to read standard input.", valueName: "text")) var text: [String] = []
    func run() throws { try scoreCommand(self) }
}

/// `refrain info` (ModelCommands.swift).
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "The model's architecture, sizes and metadata (the keys of Lua's m.info).")
    @OptionGroup var model: ModelOptions
    @Flag(help: "Machine-readable output.") var json = false
    @Flag(help: "Every metadata key of the file too.") var all = false
    func run() throws { try infoCommand(self) }
}

/// `refrain bench` (BenchCommand.swift).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", 
        abstract: "Prompt processing and decode speed (tokens/s), median of --runs runs, and peak memory.",
        discussion: "--sample N measures strategy workloads instead: sample(prompt, N, max_tokens = --tg, 64 by default) against N separate generate calls on the same --pp-token prompt, and a second call sharing a --prefix token prefix.")
    @Option(help: ArgumentHelp("A GGUF file (default: the default model).", valueName: "path")) var model: String?
    @Option(help: ArgumentHelp("Thread counts to measure, comma-separated (default 1,2; with --sample 2).", valueName: "list")) var threads: String?
    @Option(help: "Runs per measurement; the median is reported.") var runs = 5
    @Option(help: "Prompt tokens (default 128).") var pp: Int?
    @Option(help: "Generated tokens (default 128; with --sample 64).") var tg: Int?
    @Option(help: "Decode after this many tokens already in the cache.") var context = 0
    @Option(help: ArgumentHelp("Strategy workloads with N samples (see above).", valueName: "n")) var sample: Int?
    @Option(help: "The shared prefix of --sample's second call.") var prefix = 500
    @OptionGroup(title: "Control vectors: measure with them applied (llama.cpp's flags)") var controlVectors: ControlVectorFlags
    @Flag(help: "Machine-readable output.") var json = false
    @Flag(help: "f32 weights and activations (slow).") var exact = false
    func validate() throws {
        for (name, value, least) in [("--runs", runs, 1), ("--context", context, 0), ("--prefix", prefix, 1),
                                     ("--pp", pp ?? 1, sample == nil ? 0 : 1), ("--tg", tg ?? 1, sample == nil ? 0 : 1),
                                     ("--sample", sample ?? 1, 1)] where value < least {
            throw UsageError(description: "\(name) expects an integer ≥ \(least), got '\(value)'")
        }
    }
    func run() throws { try benchCommand(self) }
}

/// `refrain run FILE.lua ARGS...` (ScriptCommands.swift).
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", 
        abstract: "Run a Lua script: ARGS in `arg`; exit status 1 and a traceback on error.",
        discussion: "Every model call is recorded in the run store unless --no-store or REFRAIN_STORE=0.")
    @OptionGroup var model: ModelOptions
    @OptionGroup var sandbox: SandboxFlags
    @Flag(name: .customLong("no-store"), help: "Record no model calls in the run store.") var noStore = false
    @Argument(help: ArgumentHelp("The script and its arguments (everything after the script is the script's).",
                                 valueName: "file.lua args"))
    var script: [String] = []
    func run() throws { throw ExitStatus(code: try runCommand(self)) }
}

/// `refrain serve` (ServeCommand.swift).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", 
        abstract: "An OpenAI-compatible HTTP server over the model.",
        discussion: "Routes: /v1/models, /v1/completions, /v1/chat/completions, /tokenize, /detokenize, /apply-template. The address is printed on standard error.")
    @OptionGroup var model: ModelOptions
    @Option(help: "The IPv4 address to listen on.") var host = "127.0.0.1"
    @Option(parsing: .unconditional, help: ArgumentHelp("The port, 0 to 65535 (default 8080; 0 picks a free one).", valueName: "port")) var port: String?
    @Option(help: ArgumentHelp("The model's id in requests and responses (default: the file's name).", valueName: "id")) var name: String?
    @Option(name: .customLong("read-timeout"), parsing: .unconditional, help: ArgumentHelp("A request not received whole in this many seconds gets a 408 (default 30).", valueName: "s"))
    var readTimeout: String?
    func run() throws { try serveCommand(self) }
}

/// `refrain log` (LogCommand.swift).
struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "log", 
        abstract: "The run store: runs, calls, a search, one call in full, a run exported.",
        usage: """
        refrain log [--experiment NAME] [--limit N]      runs, newest last
        refrain log calls [--run ID] [--experiment NAME] [--item ID] [--strategy NAME] [--kind KIND] [--limit N]
        refrain log --search TEXT [--limit N]            calls whose prompt or output matches (SQLite FTS5 query)
        refrain log show CALL [--json]                   one call in full
        refrain log export RUN|--experiment NAME [--format jsonl|csv] [--output FILE]
        """)
    @Option(help: ArgumentHelp("The run store (default: REFRAIN_STORE, else $REFRAIN_HOME/runs.sqlite).", valueName: "path")) var store: String?
    @Option(help: ArgumentHelp("Only this experiment's runs or calls.", valueName: "name")) var experiment: String?
    @Option(help: "The most rows to list (default: 20 runs, 50 calls).") var limit: Int?
    @Option(help: ArgumentHelp("Calls whose prompt or output matches (an SQLite FTS5 query).", valueName: "text")) var search: String?
    @Option(name: .customLong("run"), help: ArgumentHelp("Only this run's calls.", valueName: "id")) var runID: String?
    @Option(help: ArgumentHelp("Only this item's calls.", valueName: "id")) var item: String?
    @Option(help: ArgumentHelp("Only this strategy's calls.", valueName: "name")) var strategy: String?
    @Option(help: ArgumentHelp("Only calls of this kind (generate, sample, score, ...).", valueName: "kind")) var kind: String?
    @Option(help: "export: jsonl or csv.") var format = "jsonl"
    @Option(help: ArgumentHelp("export: write to this file instead of standard output.", valueName: "file")) var output: String?
    @Flag(help: "show: the call as JSON.") var json = false
    @Argument(help: ArgumentHelp("calls, show CALL or export RUN.", valueName: "what")) var words: [String] = []
    func validate() throws {
        if let limit, limit < 1 { throw UsageError(description: "--limit expects an integer ≥ 1, got '\(limit)'") }
    }
    mutating func run() throws { try logCommand(self) }
}

/// `refrain replay CALL` (LogCommand.swift).
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "replay", 
        abstract: "Run a recorded call again: exit status 0 when it reproduced token for token, 1 when not.")
    @Option(help: ArgumentHelp("The run store (default: REFRAIN_STORE, else $REFRAIN_HOME/runs.sqlite).", valueName: "path")) var store: String?
    @Option(help: ArgumentHelp("Threads to compute with (default: the cores).", valueName: "n")) var threads: String?
    @Argument(help: ArgumentHelp("The call's id (refrain log calls lists them).", valueName: "call")) var call: String?
    func run() throws { throw ExitStatus(code: try replayCommand(self)) }
}

/// The `refrain` command line.
public enum Refrain {
    /// Runs the command `arguments` name (the words after the program's name) and exits with its status: 0, 1 for
    /// an error, 2 for a usage error (swift-argument-parser's 64 mapped to the project's 2).
    public static func main(_ arguments: [String]) -> Never {
        if arguments == ["version"] { print(refrainVersion); exit(0) }
        if arguments != ["--version"] && arguments != ["--help"] && arguments != ["-h"] {
            requireCPUFeatures()
            installBusErrorHandler()
        }
        do {
            var command = try RefrainCommand.parseAsRoot(prepare(arguments))
            try command.run()
            exit(0)
        } catch let status as ExitStatus {
            exit(status.code)
        } catch let e as UsageError {
            fail(e.description + "\nsee: refrain --help", code: 2)
        } catch let e as StoreCommandError {
            fail(e.description, code: 2)
        } catch {
            let code = RefrainCommand.exitCode(for: error)
            if code == .success {
                print(RefrainCommand.fullMessage(for: error))
                exit(0)
            }
            if code == .validationFailure {
                let message = RefrainCommand.message(for: error)
                fail(lowercasedFirst(message) + "\nsee: refrain --help", code: 2)
            }
            fail("\(error)")
        }
    }

    /// The arguments as the parser takes them. A bare `--sandbox` (no folder), like a bare `--allow-read`,
    /// `--allow-net` or `--allow-env` (everything), is written `--sandbox=` with a marker, since an option's value
    /// cannot be optional there. For `run`, a `--` goes before the script's name, so that
    /// the script's own arguments (`--model` among them, say) reach the script. After `--`, nothing is changed.
    static func prepare(_ arguments: [String]) -> [String] {
        let valued: Set<String> = ["--model", "--threads", "--memory-limit", "--time-limit", "--max-model-tokens",
                                   "--max-model-calls", "-e"]
        var out: [String] = [], i = 0
        let isRun = arguments.first == "run"
        while i < arguments.count {
            let a = arguments[i]
            if a == "--" { out += arguments[i...]; break }
            if isRun && i > 0 && !a.hasPrefix("-") { out += ["--"] + arguments[i...]; break }
            if ["--sandbox", "--allow-read", "--allow-net", "--allow-env"].contains(a) {
                out.append(a + "=" + SandboxFlags.noFolder); i += 1; continue
            }
            // llama.cpp's two-value flags, `--control-vector-scaled FILE SCALE` and
            // `--control-vector-layer-range START END`, as one value each (FILE:SCALE, START:END).
            if a == "--control-vector-scaled", i + 2 < arguments.count, Double(arguments[i + 2]) != nil {
                out.append(a + "=" + arguments[i + 1] + ":" + arguments[i + 2]); i += 3; continue
            }
            if a == "--control-vector-layer-range", i + 2 < arguments.count {
                out.append(a + "=" + arguments[i + 1] + ":" + arguments[i + 2]); i += 3; continue
            }
            out.append(a)
            if valued.contains(a), i + 1 < arguments.count { out.append(arguments[i + 1]); i += 2; continue }
            i += 1
        }
        return out
    }

    static func lowercasedFirst(_ s: String) -> String {
        s.prefix(1).lowercased() + s.dropFirst()
    }
}
