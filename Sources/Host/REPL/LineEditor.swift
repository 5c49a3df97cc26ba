// The REPL's line editor: libedit on a terminal (prompt, history file, tab completion, Ctrl-C as a key), plain
// readLine when standard input is not one. It knows nothing about Lua: completion comes through a callback.
import CEdit
import Foundation

final class LineEditor {
    /// What reading a line gave.
    enum Input: Equatable {
        case line(String)
        /// Ctrl-C while editing; `hadText` says whether the abandoned line was non-empty.
        case interrupt(hadText: Bool)
        /// Ctrl-D on an empty line, or the end of the input.
        case end
    }

    /// Candidates for the word at the end of the given text (the line up to the cursor); each candidate is a
    /// full replacement for that word ("lm.ge" → ["lm.generate"]).
    var complete: ((String) -> [String])?
    let historyPath: String?
    let isTerminal: Bool

    private var editor: OpaquePointer?
    private var history: OpaquePointer?
    /// The prompt libedit shows (kept alive here: libedit reads it through `promptFunction`).
    private var promptBytes: UnsafeMutablePointer<CChar>?
    private var interrupted = false
    /// The terminal's modes before libedit and the REPL changed them (what a suspended refrain leaves behind).
    private var startingModes = termios()

    /// `historyPath` nil keeps no history file.
    init(historyPath: String?, historySize: Int32 = 1000) {
        self.historyPath = historyPath
        isTerminal = isatty(STDIN_FILENO) == 1
        guard isTerminal, let e = refrain_el_open("refrain") else { return }
        editor = e
        history = refrain_history_open(historySize)
        refrain_el_configure(e, promptFunction, history)
        refrain_el_set_client(e, Unmanaged.passUnretained(self).toOpaque())
        refrain_el_bind(e, "refrain-complete", "complete the word before the cursor", completeFunction, "^I")
        refrain_el_bind(e, "refrain-interrupt", "abandon the line", interruptFunction, "^C")
        refrain_el_bind(e, "refrain-suspend", "suspend refrain (fg resumes it)", suspendFunction, "^Z")
        tcgetattr(STDIN_FILENO, &startingModes)
        if let p = historyPath { _ = refrain_history_load(history, p) }
    }

    deinit {
        if let e = editor { el_end(e) }
        if let h = history { history_end(h) }
        free(promptBytes)
    }

    /// Reads one line (without its newline) after showing `prompt`.
    func read(prompt: String) -> Input {
        guard let e = editor else {
            emit(prompt.replacingOccurrences(of: "\u{1}", with: ""))
            return readLine(strippingNewline: true).map(Input.line) ?? .end
        }
        free(promptBytes)
        promptBytes = strdup(prompt)
        interrupted = false
        var count: Int32 = 0
        let raw = el_gets(e, &count)
        if interrupted {
            emit("^C\n")  // libedit leaves the cursor on the abandoned line
            let text = raw.map { String(cString: $0) } ?? ""
            return .interrupt(hadText: !text.trimmingCharacters(in: .newlines).isEmpty)
        }
        guard let raw, count > 0 else { return .end }
        var line = String(cString: raw)
        if line.hasSuffix("\n") { line.removeLast() }
        return .line(line)
    }

    /// Adds an entry (a whole multi-line chunk is one entry, as lua.c keeps it).
    func remember(_ entry: String) {
        guard let h = history, !entry.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return }
        _ = refrain_history_enter(h, entry)
    }

    /// Writes the history file, making its folder if needed.
    func saveHistory() {
        guard let h = history, let p = historyPath else { return }
        try? FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        _ = refrain_history_save(h, p)
    }

    // MARK: - libedit callbacks

    fileprivate static func of(_ e: OpaquePointer?) -> LineEditor? {
        guard let e, let p = refrain_el_client(e) else { return nil }
        return Unmanaged<LineEditor>.fromOpaque(p).takeUnretainedValue()
    }

    fileprivate var prompt: UnsafeMutablePointer<CChar>? { promptBytes }

    /// Tab: a unique candidate replaces the word; several insert their common prefix and are listed below.
    fileprivate func completeWord(_ e: OpaquePointer) -> UInt8 {
        guard let info = el_line(e)?.pointee, let complete else { return UInt8(CC_ERROR) }
        let before = String(decoding: UnsafeRawBufferPointer(start: info.buffer, count: info.cursor - info.buffer),
                            as: UTF8.self)
        let candidates = complete(before)
        guard let first = candidates.first else { return UInt8(CC_ERROR) }
        let common = candidates.dropFirst().reduce(first) { commonPrefix($0, $1) }
        let word = LineEditor.replacedWord(in: before, by: common)
        if common.count > word.count {
            el_deletestr(e, Int32(word.count))
            _ = el_insertstr(e, common)
        }
        if candidates.count == 1 { return UInt8(CC_REFRESH) }
        if common.count > word.count { return UInt8(CC_REFRESH) }
        emit("\n" + LineEditor.columns(candidates, width: terminalWidth()))
        return UInt8(CC_REDISPLAY)
    }

    /// The longest end of `text` that `candidate` begins with: the word the candidate replaces.
    static func replacedWord(in text: String, by candidate: String) -> Substring {
        var start = text.index(text.endIndex, offsetBy: -min(text.count, candidate.count))
        while start < text.endIndex {
            if candidate.hasPrefix(text[start...]) { return text[start...] }
            start = text.index(after: start)
        }
        return text[text.endIndex...]
    }

    /// Candidates laid out in columns across `width` characters.
    static func columns(_ items: [String], width: Int) -> String {
        let cell = (items.map(\.count).max() ?? 0) + 2
        let perRow = max(1, width / cell)
        var out = ""
        for (i, s) in items.enumerated() {
            out += s
            let endOfRow = (i + 1) % perRow == 0 || i == items.count - 1
            out += endOfRow ? "\n" : String(repeating: " ", count: cell - s.count)
        }
        return out
    }

    /// Ctrl-Z while editing (the terminal's own suspend key is off outside evaluations): give the shell back its
    /// terminal modes, stop, and on `fg` restore the editing modes and redraw the line.
    fileprivate func suspend() -> UInt8 {
        var editing = termios()
        tcgetattr(STDIN_FILENO, &editing)
        emit("\n")
        tcsetattr(STDIN_FILENO, TCSADRAIN, &startingModes)
        kill(getpid(), SIGTSTP)
        tcsetattr(STDIN_FILENO, TCSADRAIN, &editing)
        return UInt8(CC_REDISPLAY)
    }

    fileprivate func interruptLine() -> UInt8 {
        interrupted = true
        return UInt8(CC_NEWLINE)
    }
}

private func commonPrefix(_ a: String, _ b: String) -> String {
    String(zip(a, b).prefix { $0 == $1 }.map(\.0))
}

private func terminalWidth() -> Int {
    var w = winsize()
    return ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &w) == 0 && w.ws_col > 0 ? Int(w.ws_col) : 80
}

private func promptFunction(_ e: OpaquePointer?) -> UnsafeMutablePointer<CChar>? {
    LineEditor.of(e)?.prompt
}

private func completeFunction(_ e: OpaquePointer?, _ key: Int32) -> UInt8 {
    guard let e, let ed = LineEditor.of(e) else { return UInt8(CC_ERROR) }
    return ed.completeWord(e)
}

private func interruptFunction(_ e: OpaquePointer?, _ key: Int32) -> UInt8 {
    LineEditor.of(e)?.interruptLine() ?? UInt8(CC_EOF)
}

private func suspendFunction(_ e: OpaquePointer?, _ key: Int32) -> UInt8 {
    LineEditor.of(e)?.suspend() ?? UInt8(CC_NORM)
}
