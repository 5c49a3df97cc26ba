// The generation options, declared once. Every surface that takes them reads this table: Lua's argument checking
// and `lm.defaults`, the REPL's `:set`, the command line's flags, the run store's record fields (both ways), the
// server's request parsing, help's key list and the table `lm.remote` checks against (`lm.options`). An option
// added here shows up in all of them; `OptionSchemaTests` fails when a surface disagrees.
import Engine
import Foundation

/// A value of a generation option, whichever surface it came from.
public enum OptionValue: Equatable, Sendable {
    case integer(Int)
    case number(Double)
    case boolean(Bool)
    case strings([String])
    /// One string ("" for none: the option is off).
    case text(String)
}

/// The surfaces an option appears on.
public struct OptionSurfaces: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// A Lua call's `opts`, `lm.defaults` and the REPL's `:set`.
    public static let lua = OptionSurfaces(rawValue: 1)
    /// A flag of `refrain generate`.
    public static let commandLine = OptionSurfaces(rawValue: 2)
    /// A field of a `refrain serve` request (OpenAI's name, or llama.cpp's and vLLM's where OpenAI has none).
    public static let server = OptionSurfaces(rawValue: 4)
    /// A field of the run store's `options` object (what `refrain replay` reads back).
    public static let store = OptionSurfaces(rawValue: 8)
    /// An option `lm.remote`'s models accept.
    public static let remote = OptionSurfaces(rawValue: 16)
    public static let all: OptionSurfaces = [.lua, .commandLine, .server, .store, .remote]
}

/// One generation option: its key in Lua and JSON, its command-line flag, its type and range, its default, one
/// line of help, and where its value lands in the engine's `GenerationOptions`.
public struct OptionSpec: Sendable {
    /// What values the option takes.
    public enum Kind: String, Sendable {
        case integer, number, boolean, strings, text, function
        /// A JSON document (a JSON schema): JSON text, or in Lua a table (written as JSON text); held as `.text`.
        case json
        /// Interventions in the forward pass (a vector, an intervention table or a list of them; Lua only).
        case interventions
    }

    /// The key in Lua tables, JSON requests and the run store (`max_tokens`).
    public let key: String
    public let kind: Kind
    /// The smallest value allowed (inclusive; exclusive when `exclusiveMinimum`), nil: none.
    public let minimum: Double?
    public let exclusiveMinimum: Bool
    /// The largest value allowed (inclusive), nil: none.
    public let maximum: Double?
    /// One line of help, shown by `help(lm.options)`, `refrain generate --help` and the server's docs.
    public let help: String
    public let surfaces: OptionSurfaces
    /// A request field the server also reads for this option (llama.cpp's and vLLM's spellings).
    public let serverAlias: String?
    /// Where the value lands in the engine's options; nil for the host's own options (`stream`, `on_token`).
    let field: EngineField?

    /// The command-line flag without its dashes (`max-tokens`), for options on the command line.
    public var flag: String? { surfaces.contains(.commandLine) ? key.replacingOccurrences(of: "_", with: "-") : nil }

    /// Only a model in this process can honour it: a remote model refuses it by name.
    public var localOnly: Bool { surfaces.contains(.lua) && !surfaces.contains(.remote) }

    /// The engine's default, as a value (nil for the host's own options).
    public var defaultValue: OptionValue? { field?.get(GenerationOptions()) }

    init(_ key: String, _ kind: Kind, min: Double? = nil, above: Double? = nil, max: Double? = nil,
         surfaces: OptionSurfaces = .all, serverAlias: String? = nil, _ field: EngineField?, _ help: String) {
        self.key = key; self.kind = kind; self.minimum = above ?? min; self.exclusiveMinimum = above != nil
        self.maximum = max; self.surfaces = surfaces; self.serverAlias = serverAlias; self.field = field; self.help = help
    }

    /// The value's range in words ("between 0 and 1", "at least 0", "greater than 0"), nil when unbounded.
    public var rangeText: String? {
        switch (minimum, maximum) {
        case let (lo?, hi?): return "between \(OptionSpec.show(lo)) and \(OptionSpec.show(hi))"
        case let (lo?, nil): return exclusiveMinimum ? "greater than \(OptionSpec.show(lo))" : "at least \(OptionSpec.show(lo))"
        case let (nil, hi?): return "at most \(OptionSpec.show(hi))"
        case (nil, nil): return nil
        }
    }

    /// Checks a value's type and range; the message follows the option's name ("must be at least 0, got -1").
    public func check(_ value: OptionValue) -> String? {
        let x: Double
        switch (kind, value) {
        case (.integer, .integer(let i)): x = Double(i)
        case (.number, .number(let d)): x = d
        case (.number, .integer(let i)): x = Double(i)
        case (.boolean, .boolean), (.strings, .strings), (.text, .text), (.json, .text): return nil
        default: return "must be \(kindText)"
        }
        let inside = !x.isNaN && (minimum.map { exclusiveMinimum ? x > $0 : x >= $0 } ?? true) && (maximum.map { x <= $0 } ?? true)
        return inside ? nil : "must be \(rangeText ?? "a number"), got \(OptionSpec.show(x))"
    }

    /// The type in words, after "must be".
    var kindText: String {
        switch kind {
        case .integer: "an integer"
        case .number: "a number"
        case .boolean: "a boolean"
        case .strings: "a string or a list of strings"
        case .text: "a string"
        case .function: "a function"
        case .json: "a JSON schema (JSON text, or in Lua a table)"
        case .interventions: "a vector, an intervention table or a list of them"
        }
    }

    /// Reads a value written as text (a command-line flag, the REPL's `:set`): integers, numbers, booleans as
    /// true/false/on/off/yes/no/1/0, strings as they are (`\n` and `\t` written as escapes). Checks the range.
    public func parse(_ text: String) -> Result<OptionValue, OptionError> {
        let v = text.trimmingCharacters(in: .whitespaces)
        let value: OptionValue
        switch kind {
        case .integer:
            guard let i = Int(v) else { return .failure(OptionError(key: key, message: "expects an integer, got '\(text)'")) }
            value = .integer(i)
        case .number:
            guard let d = Double(v), d.isFinite else { return .failure(OptionError(key: key, message: "expects a number, got '\(text)'")) }
            value = .number(d)
        case .boolean:
            switch v.lowercased() {
            case "true", "on", "yes", "1": value = .boolean(true)
            case "false", "off", "no", "0": value = .boolean(false)
            default: return .failure(OptionError(key: key, message: "expects on or off, got '\(text)'"))
            }
        case .strings:
            let s = text.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\t", with: "\t")
            value = .strings(s.isEmpty || s == "none" ? [] : [s])
        case .text:
            let s = text.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\t", with: "\t")
            value = .text(s == "none" ? "" : s)
        case .function:
            return .failure(OptionError(key: key, message: "takes a function: set it in Lua (lm.defaults.\(key) = function ... end)"))
        case .interventions:
            return .failure(OptionError(key: key, message: "takes vectors or intervention tables: set it in Lua (lm.defaults.\(key) = v)"))
        case .json:
            // JSON text as it is (JSON has its own escapes); "none" turns it off
            if v == "none" || v.isEmpty { value = .text(""); break }
            do { _ = try ConstraintGrammar.cachedJSONSchema(v) } catch {
                return .failure(OptionError(key: key, message: "\(error)".replacingOccurrences(of: "json_schema: ", with: "")))
            }
            value = .text(v)
        }
        if let m = check(value) { return .failure(OptionError(key: key, message: m)) }
        return .success(value)
    }

    /// A number as it is written in messages and help (1, not 1.0).
    static func show(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }
}

/// An option's value that does not check: `key` and the rest of the sentence ("must be at least 0, got -1").
public struct OptionError: Error, CustomStringConvertible, Equatable {
    public let key: String
    public let message: String
    public var description: String { "\(key) \(message)" }
}

/// How an option's value is read from and written into the engine's options.
struct EngineField: Sendable {
    let get: @Sendable (GenerationOptions) -> OptionValue
    let set: @Sendable (inout GenerationOptions, OptionValue) -> Void

    static func integer(_ path: WritableKeyPath<GenerationOptions, Int> & Sendable) -> EngineField {
        EngineField(get: { .integer($0[keyPath: path]) }, set: { if case .integer(let i) = $1 { $0[keyPath: path] = i } })
    }
    static func float(_ path: WritableKeyPath<GenerationOptions, Float> & Sendable) -> EngineField {
        EngineField(get: { .number(shortest($0[keyPath: path])) }, set: { o, v in
            switch v {
            case .number(let d): o[keyPath: path] = Float(d)
            case .integer(let i): o[keyPath: path] = Float(i)
            default: break
            }
        })
    }
    static func seed(_ path: WritableKeyPath<GenerationOptions, UInt64> & Sendable) -> EngineField {
        EngineField(get: { .integer(Int(clamping: $0[keyPath: path])) },
                    set: { if case .integer(let i) = $1, i >= 0 { $0[keyPath: path] = UInt64(i) } })
    }
    static func boolean(_ path: WritableKeyPath<GenerationOptions, Bool> & Sendable) -> EngineField {
        EngineField(get: { .boolean($0[keyPath: path]) }, set: { if case .boolean(let b) = $1 { $0[keyPath: path] = b } })
    }
    static func strings(_ path: WritableKeyPath<GenerationOptions, [String]> & Sendable) -> EngineField {
        EngineField(get: { .strings($0[keyPath: path]) }, set: { if case .strings(let s) = $1 { $0[keyPath: path] = s } })
    }
    /// An optional string: "" reads and writes as nil (off).
    static func text(_ path: WritableKeyPath<GenerationOptions, String?> & Sendable) -> EngineField {
        EngineField(get: { .text($0[keyPath: path] ?? "") },
                    set: { if case .text(let s) = $1 { $0[keyPath: path] = s.isEmpty ? nil : s } })
    }
}

/// A Float as the shortest decimal that reads back as it (0.05, not 0.05000000074505806), for JSON.
func shortest(_ f: Float) -> Double { f.isFinite ? Double("\(f)") ?? Double(f) : Double(f) }

/// The generation options of `generate`, `sample`, a state's `generate`, `lm.defaults`, `refrain generate` and
/// `refrain serve`, in the order help lists them.
public enum GenerationSchema {
    public static let options: [OptionSpec] = [
        OptionSpec("max_tokens", .integer, min: 0, surfaces: [.lua, .commandLine, .store, .remote], .integer(\.maxTokens),
                   "the most tokens to generate"),
        OptionSpec("temperature", .number, min: 0, .float(\.sampling.temperature),
                   "softmax temperature; 0 is greedy"),
        OptionSpec("top_k", .integer, min: 0, .integer(\.sampling.topK),
                   "keep the K most likely tokens; 0 turns it off"),
        OptionSpec("top_p", .number, min: 0, max: 1, .float(\.sampling.topP),
                   "keep the most likely tokens whose probabilities sum to P; 1 turns it off"),
        OptionSpec("min_p", .number, min: 0, max: 1, .float(\.sampling.minP),
                   "drop tokens less likely than P times the most likely one; 0 turns it off"),
        OptionSpec("repeat_penalty", .number, above: 0, serverAlias: "repetition_penalty", .float(\.sampling.repetitionPenalty),
                   "llama.cpp's repetition penalty over the last repeat_last_n tokens; 1 turns it off"),
        OptionSpec("repeat_last_n", .integer, min: -1, .integer(\.sampling.penaltyLastN),
                   "how many recent tokens the penalties look at; 0 none, -1 all"),
        OptionSpec("presence_penalty", .number, .float(\.sampling.presencePenalty),
                   "subtracted once from the logit of each token in the last repeat_last_n tokens"),
        OptionSpec("frequency_penalty", .number, .float(\.sampling.frequencyPenalty),
                   "subtracted from a token's logit once per occurrence in the last repeat_last_n tokens"),
        OptionSpec("seed", .integer, min: 0, .seed(\.sampling.seed),
                   "seed of the random draws: the same seed and input give the same tokens"),
        OptionSpec("stop", .strings, .strings(\.stop),
                   "stop when the text contains this string (not part of the result); a list of strings, repeatable flag"),
        OptionSpec("logprobs", .integer, min: 0, max: Double(GenerationOptions.maxTopLogprobs),
                   surfaces: [.lua, .commandLine, .store, .remote], .integer(\.topLogprobs),
                   "report the K most likely alternatives of each generated token"),
        OptionSpec("ignore_eos", .boolean, .boolean(\.ignoreEOS),
                   "keep generating past end-of-generation tokens"),
        OptionSpec("grammar", .text, .text(\.grammar),
                   "a GBNF grammar (llama.cpp's syntax, start rule root) the text must follow; each token is drawn from those it allows"),
        OptionSpec("regex", .text, serverAlias: "guided_regex", .text(\.regex),
                   "a regular expression the whole text must match (each token drawn from those that can still match)"),
        OptionSpec("choices", .strings, serverAlias: "guided_choice", .strings(\.choices),
                   "the text is one of these strings, generated (not scored); a list of strings, repeatable flag"),
        OptionSpec("json_schema", .json, .text(\.jsonSchema),
                   "a JSON schema the text must be an instance of (read as llama.cpp reads it: properties in order, required first)"),
        OptionSpec("constrained_logprobs", .boolean, surfaces: [.lua, .store], .boolean(\.constrainedLogprobs),
                   "with a constraint, also report each token's log-probability in the distribution the constraint leaves (costs each step's whole mask)"),
        OptionSpec("intervene", .interventions, surfaces: [.lua], nil,
                   "change the forward pass: a vector (steering), or {add=, ablate=, clamp=, heads=, attention=, patch=, layers=, scale=, positions=} tables (help(lm.vector))"),
        OptionSpec("stream", .boolean, surfaces: [.lua, .remote], nil,
                   "print the text as it comes (default: in the REPL)"),
        OptionSpec("on_token", .function, surfaces: [.lua], nil,
                   "function(piece, info) called for each token; returning false stops the generation"),
    ]

    /// The options by key.
    public static let byKey: [String: OptionSpec] = Dictionary(uniqueKeysWithValues: options.map { ($0.key, $0) })

    /// The keys of the options on `surface`, in schema order.
    public static func keys(on surface: OptionSurfaces) -> [String] {
        options.filter { $0.surfaces.contains(surface) }.map(\.key)
    }

    /// The options as the run store keeps them: every engine option on the store surface, the seed included.
    public static func recordFields(_ o: GenerationOptions) -> [String: Any] {
        var f: [String: Any] = [:]
        for spec in options where spec.surfaces.contains(.store) {
            guard let v = spec.field?.get(o) else { continue }
            if case .text("") = v { continue }   // an option that is off is not written
            f[spec.key] = jsonValue(v)
        }
        return f
    }

    /// Options read back from `recordFields` (what is missing or of the wrong type keeps the engine's default).
    public static func options(recordFields f: [String: Any]) -> GenerationOptions {
        var o = GenerationOptions()
        for spec in options where spec.surfaces.contains(.store) {
            guard let field = spec.field, let raw = f[spec.key], let v = value(json: raw, kind: spec.kind) else { continue }
            field.set(&o, v)
        }
        return o
    }

    /// A value as JSONSerialization writes it.
    static func jsonValue(_ v: OptionValue) -> Any {
        switch v {
        case .integer(let i): i
        case .number(let d): d
        case .boolean(let b): b
        case .strings(let s): s
        case .text(let s): s
        }
    }

    /// A value of `kind` read from what JSONSerialization gave, nil when it is of another type.
    static func value(json raw: Any, kind: OptionSpec.Kind) -> OptionValue? {
        switch kind {
        case .integer: return (raw as? NSNumber).map { .integer($0.intValue) }
        case .number: return (raw as? NSNumber).map { .number($0.doubleValue) }
        case .boolean: return (raw as? Bool).map { .boolean($0) }
        case .strings: return (raw as? [String]).map { .strings($0) } ?? (raw as? String).map { .strings([$0]) }
        case .text, .json: return (raw as? String).map { .text($0) }
        case .function, .interventions: return nil
        }
    }

    /// Applies `values` (key, text) from the command line to `o`, in order; a repeated `stop` adds a string.
    public static func apply(commandLine values: [(key: String, text: String)], to o: inout GenerationOptions) throws -> Void {
        var lists: [String: [String]] = [:]
        for (key, text) in values {
            guard let spec = byKey[key], let field = spec.field else { continue }
            if spec.kind == .strings { lists[key, default: []].append(text); field.set(&o, .strings(lists[key]!)); continue }
            switch spec.parse(text) {
            case .success(let v): field.set(&o, v)
            case .failure(let e): throw OptionError(key: "--" + (spec.flag ?? key), message: e.message)
            }
        }
    }

    /// What help adds after an option's line: " (default X; range)", or nothing.
    public static func notes(_ spec: OptionSpec) -> String {
        var notes: [String] = []
        if let d = spec.defaultValue, spec.kind != .boolean {
            switch d {
            case .integer(let i): notes.append("default \(i)")
            case .number(let x): notes.append("default \(OptionSpec.show(x))")
            case .strings(let s) where !s.isEmpty: notes.append("default \(s)")
            default: break
            }
        }
        if let r = spec.rangeText { notes.append(r) }
        return notes.isEmpty ? "" : " (" + notes.joined(separator: "; ") + ")"
    }

    /// The option closest to `name` by edit distance, when it is close enough to be a likely typo.
    public static func suggestion(for name: String, among known: some Collection<String>) -> String? {
        var best: (name: String, distance: Int)? = nil
        for k in known.sorted() {
            let d = editDistance(name, k)
            if best == nil || d < best!.distance { best = (k, d) }
        }
        guard let best, best.distance <= max(2, name.count / 3) else { return nil }
        return best.name
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...max(a.count, 1) where i <= a.count {
            cur[0] = i
            for j in 1...max(b.count, 1) where j <= b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}
