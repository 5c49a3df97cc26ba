// Where refrain keeps what outlives a process: `$REFRAIN_HOME` (default ~/.cache/refrain) with the models, the
// REPL's history and the run store. Resolved here only, so that every command agrees.
import Engine
import Foundation

/// refrain's folder and the files in it.
enum RefrainHome {
    /// `$REFRAIN_HOME`, else ~/.cache/refrain.
    static func path(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        environment["REFRAIN_HOME"] ?? (NSHomeDirectory() + "/.cache/refrain")
    }

    /// The models folder, `$REFRAIN_HOME/models`.
    static var models: String { path() + "/models" }

    /// The default model, SmolLM2-135M-Instruct (Q4_1), as `./setup.sh` leaves it.
    static var defaultModel: String { models + "/SmolLM2-135M-Instruct.Q4_1.gguf" }

    /// The REPL's history file.
    static var history: String { path() + "/history" }
}

/// The `--threads` of every command: at least 1; more than the machine's cores is capped at the cores, with a
/// warning (more threads than cores only wait on each other: 49 s instead of 0.5 s with 1000 on two cores).
enum Threads {
    /// The cores this process may use: the default thread count.
    static var cores: Int { LanguageModel.defaultThreads }

    /// A thread count written as `text` (a command-line value named `flag` in messages).
    static func parse(_ text: String, flag: String = "--threads") throws -> Int {
        guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n >= 1 else {
            throw UsageError(description: "\(flag) expects an integer ≥ 1, got '\(text)'")
        }
        return cap(n, flag: flag)
    }

    /// `n` as it is, with a warning on standard error when it is more than the cores (a benchmark's thread list
    /// measures what it is asked to).
    static func warnAbove(_ n: Int) -> Int {
        if n > cores {
            FileHandle.standardError.write(Data("refrain: warning: --threads \(n) is more than this machine's \(cores) cores: the threads will wait on each other\n".utf8))
        }
        return n
    }

    /// `n` capped at the cores, with a warning on standard error when it was more.
    static func cap(_ n: Int, flag: String = "--threads") -> Int {
        guard n > cores else { return n }
        FileHandle.standardError.write(Data("refrain: warning: \(flag) \(n) is more than this machine's \(cores) cores: using \(cores)\n".utf8))
        return cores
    }
}
