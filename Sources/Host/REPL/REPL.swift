// The interactive session, shaped as lua.c's loop: read a line, keep reading while Lua says the chunk is
// incomplete, evaluate it, print its values or its error, remember it. Around that: the banner, `:commands`,
// Ctrl-C (stop the evaluation; at an empty prompt a hint, then leave), streamed generation text and colour.
import Engine
import Foundation

final class REPL {
    let host: LuaHost
    let editor: LineEditor
    let style: Style
    var modelPath: String?
    /// `:time on`: print each evaluation's wall time.
    var timing = false
    /// Ctrl-C presses at an empty prompt in a row (the second leaves).
    private var emptyInterrupts = 0
    /// Whether the terminal's cursor is at the start of a line (streamed text may leave it mid-line).
    private var atLineStart = true

    init(host: LuaHost, modelPath: String?, historyPath: String?) {
        self.host = host
        self.modelPath = modelPath
        editor = LineEditor(historyPath: historyPath)
        style = Style(enabled: Style.wanted())
        editor.complete = { [unowned host] in host.completions(for: $0) }
        host.streamSink = { [unowned self] text in self.write(text) }
    }

    /// Runs the session until Ctrl-D, `:quit` or a second Ctrl-C at an empty prompt; saves the history.
    func run() -> Int32 {
        installInterruptHandler(for: host)
        terminalSignals(false)
        defer { terminalSignals(true) }
        banner()
        while let line = readLine() {
            if line.hasPrefix(":") {
                editor.remember(line)
                if !command(line) { break }
            } else if let chunk = readChunk(startingWith: line) {
                editor.remember(chunk.text)
                show(chunk.result, seconds: chunk.seconds)
            }
        }
        editor.saveHistory()
        return 0
    }

    // MARK: - Reading

    /// One line at the main prompt; nil means leave. Ctrl-C abandons a line; at an empty one it hints first.
    func readLine() -> String? {
        while true {
            switch editor.read(prompt: style.prompt("> ")) {
            case .line(let l):
                emptyInterrupts = 0
                if l.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                return l
            case .end:
                write("\n")
                return nil
            case .interrupt(let hadText):
                if hadText { emptyInterrupts = 0; continue }
                emptyInterrupts += 1
                if emptyInterrupts >= 2 { return nil }
                write(style.dim("(Ctrl-C again or Ctrl-D to leave)") + "\n")
            }
        }
    }

    /// Evaluates `line`, reading continuation lines while the chunk is incomplete (as lua.c's `multiline`).
    /// Nil when the user abandoned the chunk (Ctrl-C or Ctrl-D at the continuation prompt).
    func readChunk(startingWith line: String) -> (text: String, result: LuaHost.Evaluation, seconds: Double)? {
        var text = line
        while true {
            let (result, seconds) = evaluate(text)
            guard case .incomplete = result else { return (text, result, seconds) }
            switch editor.read(prompt: style.prompt(">> ")) {
            case .line(let more): text += "\n" + more
            case .interrupt, .end:
                editor.remember(text)
                write("\n")
                return nil
            }
        }
    }

    // MARK: - Evaluating and printing

    /// Runs `chunk` with Ctrl-C wired to the host, timing it.
    func evaluate(_ chunk: String) -> (LuaHost.Evaluation, Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let (result, _) = interruptible { host.evaluate(chunk) }
        fflush(nil)  // Lua's print and io.write go through C's buffered stdout
        return (result, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// Values on stdout (tab-separated, as lua.c prints them), errors on stderr, then the time if asked.
    func show(_ result: LuaHost.Evaluation, seconds: Double) {
        endStreamedLine()
        switch result {
        case .values(let vs): write(style.value(vs.joined(separator: "\t")) + "\n")
        case .error(let message): report(message)
        case .ok, .incomplete: break
        }
        if timing { write(style.dim(String(format: "(%.3f s)", seconds)) + "\n") }
    }

    func report(_ message: String) {
        endStreamedLine()
        FileHandle.standardError.write(Data((style.error(message) + "\n").utf8))
    }

    /// Writes to the terminal unbuffered, remembering whether the line was left open.
    func write(_ text: String) {
        guard !text.isEmpty else { return }
        emit(text)
        atLineStart = text.hasSuffix("\n")
    }

    /// A newline after streamed text that did not end one, so that values and the prompt start a line.
    func endStreamedLine() {
        if !atLineStart { write("\n") }
    }

    // MARK: - Session commands

    static let commandHelp = """
    :load FILE.lua      run a Lua file in this session
    :model PATH         load another GGUF model as lm.model
    :set OPTION VALUE   a default for generation (:set temperature 0.7); :set alone lists them
    :time on|off        print the wall time of each evaluation
    :help               this list (help() lists the Lua API)
    :quit               leave (as Ctrl-D does)

    """

    /// Runs a `:command`; false means leave.
    func command(_ line: String) -> Bool {
        let words = line.dropFirst().split(separator: " ", maxSplits: 1).map(String.init)
        let name = words.first ?? ""
        let arg = words.count > 1 ? words[1].trimmingCharacters(in: .whitespaces) : ""
        switch name {
        case "quit", "q": return false
        case "help", "h", "?": write(REPL.commandHelp)
        case "load":
            guard !arg.isEmpty else { report(":load needs a file"); break }
            if case .failure(let e) = host.readablePath((arg as NSString).expandingTildeInPath) { report("sandbox: " + e.description); break }
            let (_, seconds) = timed { host.runFile((arg as NSString).expandingTildeInPath, args: []) }
            endStreamedLine()  // a failing file's error has been reported by the host
            if timing { write(style.dim(String(format: "(%.3f s)", seconds)) + "\n") }
        case "model":
            guard !arg.isEmpty else { write("model: \(modelPath ?? "none")\n"); break }
            let path = (arg as NSString).expandingTildeInPath
            do {
                try host.loadModel(path: path)
                modelPath = path
                write("model: \(displayName(path))\n")
            } catch { report("\(error)") }
        case "set":
            let parts = arg.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { write(describe(host.defaults)); break }
            do { try host.set(option: parts[0], value: parts[1]) } catch { report("\(error)") }
        case "time":
            switch arg {
            case "on": timing = true
            case "off": timing = false
            case "": write("time: \(timing ? "on" : "off")\n")
            default: report(":time takes on or off")
            }
        default: report("unknown command :\(name) (:help lists them)")
        }
        return true
    }

    private func timed<T>(_ body: () -> T) -> (T, Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let (value, _) = interruptible(body)
        fflush(nil)
        return (value, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    private func describe(_ g: GenerationOptions) -> String {
        let s = g.sampling
        return """
        max_tokens \(g.maxTokens)  temperature \(s.temperature)  top_k \(s.topK)  top_p \(s.topP)  min_p \(s.minP)
        repeat_penalty \(s.repetitionPenalty)  repeat_last_n \(s.penaltyLastN)  seed \(s.seed)\
        \(g.stop.isEmpty ? "" : "  stop \(g.stop)")\(g.ignoreEOS ? "  ignore_eos" : "")

        """
    }

    // MARK: - Banner

    func banner() {
        let model = modelPath.map { "model \(displayName($0))" } ?? "no model (:model PATH loads one)"
        write("refrain · Lua 5.4 · \(model)\n")
        write(style.dim("help() for the Lua API, :help for session commands, Ctrl-D to leave") + "\n")
    }

    private func displayName(_ path: String) -> String { (path as NSString).lastPathComponent }
}

/// Where the REPL keeps its history: `$REFRAIN_HOME/history` (REFRAIN_HOME defaulting to ~/.cache/refrain,
/// where the models are too).
func historyPath() -> String {
    RefrainHome.history
}

/// ANSI colour for the prompt, values, errors and hints: only on a terminal, and never with NO_COLOR set.
struct Style {
    let enabled: Bool

    /// Colour when standard output is a terminal and NO_COLOR is unset or empty (https://no-color.org).
    static func wanted() -> Bool {
        isatty(STDOUT_FILENO) == 1 && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
    }

    /// The prompt, with its escape sequences bracketed by \u{1} for libedit (they take no room on the line).
    func prompt(_ s: String) -> String { enabled ? "\u{1}\u{1B}[1;32m\u{1}" + s + "\u{1}\u{1B}[0m\u{1}" : s }
    func value(_ s: String) -> String { paint(s, "36") }
    func error(_ s: String) -> String { paint(s, "31") }
    func dim(_ s: String) -> String { paint(s, "2") }
    private func paint(_ s: String, _ code: String) -> String { enabled ? "\u{1B}[\(code)m" + s + "\u{1B}[0m" : s }
}

/// `refrain` with no command and standard input a terminal: the REPL on the default model (or --model). (A
/// script on standard input is main.swift's `scriptEntry`.) Exits with the session's status.
func interactive(_ o: ReplCommand) throws -> Never {
    let host = try scriptHost(model: o.model, sandbox: o.sandbox, noStore: o.noStore, script: "repl", args: [])
    exit(REPL(host: host, modelPath: try o.model.pathIfPresent(), historyPath: historyPath()).run())
}
