// The options several commands share, declared once for swift-argument-parser: the model and its threads, the
// sandbox and limits of Lua code, and the generation flags, which come from GenerationSchema.
import ArgumentParser
import Engine
import Foundation

/// `--model PATH` and `--threads N`.
struct ModelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A GGUF file, or a file name under $REFRAIN_HOME/models (default: SmolLM2-135M-Instruct Q4_1).",
                               valueName: "path"))
    var model: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads to compute with (default: the cores; more than the cores is capped).", valueName: "n"))
    var threads: String?

    /// The thread count: `--threads`, capped at the cores, else the cores.
    func threadCount() throws -> Int { try threads.map { try Threads.parse($0) } ?? Threads.cores }

    /// The model file: `--model` (a path, or a name under $REFRAIN_HOME/models), else the default model, which must
    /// be there.
    func path() throws -> String { try modelFile(model) }

    /// The model file a Lua host starts with: `--model`, else the default model when it is there, else nil (a
    /// script that uses no model runs without one).
    func pathIfPresent() throws -> String? {
        if let model { return try modelFile(model) }
        return FileManager.default.fileExists(atPath: RefrainHome.defaultModel) ? RefrainHome.defaultModel : nil
    }

    /// The model `--model` names (else the default), loaded with `threads` (else `--threads`).
    func load(threads: Int? = nil) throws -> LanguageModel {
        try LanguageModel(path: try path(), threads: try threads ?? threadCount())
    }
}

/// The model file `--model` names (a path, or a name under $REFRAIN_HOME/models), else the default model, which
/// must be there.
func modelFile(_ model: String?) throws -> String {
    if let model { return LuaHost.resolveModelPath(model) }
    let d = RefrainHome.defaultModel
    guard FileManager.default.fileExists(atPath: d) else {
        throw UsageError(description: "the default model is not at \(d): run ./setup.sh first, or give --model PATH")
    }
    return d
}

/// `--sandbox[=DIR]`, `--memory-limit MB`, `--time-limit S`: how Lua code from elsewhere runs (Lua/Sandbox.swift).
struct SandboxFlags: ParsableArguments {
    /// What a bare `--sandbox` (no folder) is rewritten to before parsing (see `Refrain.prepare`).
    static let noFolder = "\u{1}"

    @Option(name: .customLong("sandbox"), help: ArgumentHelp(
        "--sandbox alone: no os.execute, io.popen, os.exit, C modules or binary chunks, debug only for tracebacks, no files written; --sandbox=DIR: files are written only inside DIR. Reading (outside DIR, the script's folder and scripts/), the network and the environment are refused unless granted with --allow-read, --allow-net, --allow-env.",
        valueName: "dir"))
    var sandbox: String?

    @Option(name: .customLong("allow-read"), help: ArgumentHelp(
        "Under --sandbox, also readable: these files and folders (comma-separated); --allow-read alone: every file.", valueName: "path,..."))
    var allowRead: String?

    @Option(name: .customLong("allow-net"), help: ArgumentHelp(
        "Under --sandbox, lm.http and lm.remote may connect to these hosts (HOST, HOST:PORT, [IPv6]:PORT; comma-separated); --allow-net alone: any host.", valueName: "host[:port],..."))
    var allowNet: String?

    @Option(name: .customLong("allow-env"), help: ArgumentHelp(
        "Under --sandbox, os.getenv and api_key_env may read these variables (comma-separated); --allow-env alone: all of them.", valueName: "name,..."))
    var allowEnv: String?

    @Option(name: .customLong("max-model-tokens"), parsing: .unconditional, help: ArgumentHelp(
        "The tokens all model calls of the script may generate together (\"model token limit of N generated tokens reached\").", valueName: "n"))
    var maxModelTokens: String?

    @Option(name: .customLong("max-model-calls"), parsing: .unconditional, help: ArgumentHelp(
        "The model calls (generate, sample, score, choose, inspections; each request of a batch) the script may make.", valueName: "n"))
    var maxModelCalls: String?

    @Option(name: .customLong("memory-limit"), parsing: .unconditional, help: ArgumentHelp("The memory the Lua state may hold, in MB (\"memory limit of MB MB reached\").", valueName: "mb"))
    var memoryLimit: String?

    @Option(name: .customLong("time-limit"), parsing: .unconditional, help: ArgumentHelp("The wall time a script or a REPL line may run, in seconds (\"time limit of S s reached\").", valueName: "s"))
    var timeLimit: String?

    /// The sandbox these flags ask for.
    func options() throws -> SandboxOptions {
        var o = SandboxOptions()
        if let s = sandbox {
            o.enabled = true
            if s != SandboxFlags.noFolder {
                guard !s.isEmpty else { throw UsageError(description: "--sandbox= needs a folder (or no '=')") }
                o.folder = s
            }
        }
        if let v = memoryLimit {
            guard let mb = Double(v), mb.isFinite, mb > 0 else {
                throw UsageError(description: "--memory-limit expects a number of megabytes > 0, got '\(v)'")
            }
            o.memoryLimitMB = mb
        }
        if let v = timeLimit {
            guard let s = Double(v), s.isFinite, s > 0 else {
                throw UsageError(description: "--time-limit expects a number of seconds > 0, got '\(v)'")
            }
            o.timeLimit = s
        }
        // A grant means a sandbox: --allow-net=HOST alone refuses every other host.
        if let v = allowRead { o.grants.read = try SandboxGrants.list(v, flag: "--allow-read"); o.enabled = true }
        if let v = allowNet {
            o.grants.net = try SandboxGrants.list(v, flag: "--allow-net"); o.enabled = true
            for h in o.grants.net ?? [] { _ = try SandboxGrants.parseHost(h) }
        }
        if let v = allowEnv { o.grants.env = try SandboxGrants.list(v, flag: "--allow-env"); o.enabled = true }
        func count(_ v: String?, _ flag: String) throws -> Int? {
            guard let v else { return nil }
            guard let n = Int(v.trimmingCharacters(in: .whitespaces)), n >= 1 else { throw UsageError(description: "\(flag) expects an integer ≥ 1, got '\(v)'") }
            return n
        }
        o.maxModelTokens = try count(maxModelTokens, "--max-model-tokens")
        o.maxModelCalls = try count(maxModelCalls, "--max-model-calls")
        return o
    }
}

/// The generation flags of `refrain generate`: one property per option of GenerationSchema on the command line,
/// named by its key, with the schema's help. Values are read as text (a negative number too) and checked by the
/// schema (type and range), so that the command line, Lua and the server refuse the same values with the same words. OptionSchemaTests checks
/// that the properties and the schema's command-line options are the same set.
struct GenerationFlags: ParsableArguments {
    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: schemaHelp("max_tokens")) var max_tokens: String?
    @Option(name: .customLong("temperature"), parsing: .unconditional, help: schemaHelp("temperature")) var temperature: String?
    @Option(name: .customLong("top-k"), parsing: .unconditional, help: schemaHelp("top_k")) var top_k: String?
    @Option(name: .customLong("top-p"), parsing: .unconditional, help: schemaHelp("top_p")) var top_p: String?
    @Option(name: .customLong("min-p"), parsing: .unconditional, help: schemaHelp("min_p")) var min_p: String?
    @Option(name: .customLong("repeat-penalty"), parsing: .unconditional, help: schemaHelp("repeat_penalty")) var repeat_penalty: String?
    @Option(name: .customLong("repeat-last-n"), parsing: .unconditional, help: schemaHelp("repeat_last_n")) var repeat_last_n: String?
    @Option(name: .customLong("presence-penalty"), parsing: .unconditional, help: schemaHelp("presence_penalty")) var presence_penalty: String?
    @Option(name: .customLong("frequency-penalty"), parsing: .unconditional, help: schemaHelp("frequency_penalty")) var frequency_penalty: String?
    @Option(name: .customLong("seed"), parsing: .unconditional, help: schemaHelp("seed")) var seed: String?
    @Option(name: .customLong("stop"), parsing: .unconditionalSingleValue, help: schemaHelp("stop")) var stop: [String] = []
    @Option(name: .customLong("logprobs"), parsing: .unconditional, help: schemaHelp("logprobs")) var logprobs: String?
    @Flag(name: .customLong("ignore-eos"), help: schemaHelp("ignore_eos")) var ignore_eos = false
    @Option(name: .customLong("grammar"), parsing: .unconditional, help: schemaHelp("grammar")) var grammar: String?
    @Option(name: .customLong("regex"), parsing: .unconditional, help: schemaHelp("regex")) var regex: String?
    @Option(name: .customLong("choices"), parsing: .unconditionalSingleValue, help: schemaHelp("choices")) var choices: [String] = []
    @Option(name: .customLong("json-schema"), parsing: .unconditional, help: schemaHelp("json_schema")) var json_schema: String?

    /// The values given, as (schema key, text), read off the properties by their names.
    var given: [(key: String, text: String)] {
        Mirror(reflecting: self).children.flatMap { child -> [(key: String, text: String)] in
            guard let label = child.label, label.hasPrefix("_") else { return [] }
            let key = String(label.dropFirst())
            if let o = child.value as? Option<String?> { return o.wrappedValue.map { [(key, $0)] } ?? [] }
            if let o = child.value as? Option<[String]> { return o.wrappedValue.map { (key, $0) } }
            if let f = child.value as? Flag<Bool> { return f.wrappedValue ? [(key, "true")] : [] }
            return []
        }
    }

    /// The schema keys these flags stand for (every property's name).
    static var keys: [String] {
        Mirror(reflecting: GenerationFlags()).children.compactMap { $0.label.map { String($0.dropFirst()) } }
    }

    /// The engine's options: the defaults, with the flags given applied and checked by the schema.
    func options() throws -> GenerationOptions {
        var g = GenerationOptions()
        do { try GenerationSchema.apply(commandLine: given, to: &g) } catch let e as OptionError {
            throw UsageError(description: e.description)
        }
        return g
    }
}

/// A flag's help from the schema: its line, default and range.
func schemaHelp(_ key: String) -> ArgumentHelp {
    guard let spec = GenerationSchema.byKey[key] else { return ArgumentHelp("(not in the schema)") }
    let valueName: String
    switch spec.kind {
    case .integer: valueName = "n"
    case .number: valueName = "x"
    case .strings: valueName = "text"
    case .text: valueName = "text"
    case .json: valueName = "json"
    case .boolean, .function, .interventions: valueName = ""
    }
    return ArgumentHelp(spec.help + GenerationSchema.notes(spec), valueName: valueName.isEmpty ? nil : valueName)
}

/// llama.cpp's control-vector flags, with its meaning: `--control-vector FILE` (scale 1) and
/// `--control-vector-scaled FILE SCALE` (also FILE:SCALE), each repeatable, the vectors summed;
/// `--control-vector-layer-range START END` (inclusive; default 1 to the layer count).
struct ControlVectorFlags: ParsableArguments {
    @Option(name: .customLong("control-vector"), help: ArgumentHelp(
        "Add a control vector (llama.cpp's GGUF format, e.g. from llama-cvector-generator or v:save); repeatable.", valueName: "file"))
    var controlVector: [String] = []

    @Option(name: .customLong("control-vector-scaled"), help: ArgumentHelp(
        "Add a control vector times SCALE (FILE SCALE, or FILE:SCALE as llama.cpp also writes it); repeatable.", valueName: "file scale"))
    var controlVectorScaled: [String] = []

    @Option(name: .customLong("control-vector-layer-range"), help: ArgumentHelp(
        "Apply the control vectors to layers START to END only (inclusive; default 1 to the number of layers).", valueName: "start end"))
    var layerRange: String?

    /// No control-vector flag was given.
    var isEmpty: Bool { controlVector.isEmpty && controlVectorScaled.isEmpty && layerRange == nil }

    /// The interventions the flags ask for on `m` (none without a vector); errors name the flag and the file.
    func interventions(for m: LanguageModel) throws -> [Intervention] {
        var parts: [(ControlVector, Float)] = []
        func load(_ path: String, _ scale: Float, flag: String) throws {
            let v: ControlVector
            do { v = try ControlVector(path: path) } catch { throw UsageError(description: "--\(flag): \(error)") }
            guard v.dimension == m.config.embeddingLength else {
                throw UsageError(description: "--\(flag): \(path) holds directions of \(v.dimension) values; the model's embedding has \(m.config.embeddingLength)")
            }
            parts.append((v, scale))
        }
        for p in controlVector { try load(p, 1, flag: "control-vector") }
        for item in controlVectorScaled {
            guard let colon = item.lastIndex(of: ":"), let s = Float(item[item.index(after: colon)...]), s.isFinite else {
                throw UsageError(description: "--control-vector-scaled takes FILE SCALE (or FILE:SCALE), got '\(item)'")
            }
            try load(String(item[..<colon]), s, flag: "control-vector-scaled")
        }
        var range: ClosedRange<Int>? = nil
        if let r = layerRange {
            let ends = r.split(separator: ":").map { Int($0) }
            guard ends.count == 2, let lo = ends[0], let hi = ends[1] else {
                throw UsageError(description: "--control-vector-layer-range takes START END (two layer numbers), got '\(r.replacingOccurrences(of: ":", with: " "))'")
            }
            // llama.cpp: a start ≤ 0 means 1, an end ≤ 0 the layer count.
            let start = lo <= 0 ? 1 : lo, end = hi <= 0 ? m.config.layerCount : hi
            guard start <= end else { throw UsageError(description: "--control-vector-layer-range: START \(start) is after END \(end)") }
            range = start...end
        }
        if parts.isEmpty {
            if range != nil { throw UsageError(description: "--control-vector-layer-range needs a control vector (--control-vector or --control-vector-scaled)") }
            return []
        }
        let sum = try ControlVector.sum(parts)
        // Directions past the model's layers are ignored, as llama.cpp ignores them.
        return sum.interventions(scale: 1, layers: range).filter { $0.layer < m.config.layerCount }
    }
}
