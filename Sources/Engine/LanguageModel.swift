// The engine's front door: a loaded model (file, weights, tokenizer, chat template, forward pass) and what a
// caller does with it: tokenize, generate with sampling and stop strings, score a continuation, fork a state.
import Foundation

/// A GGUF model loaded for inference.
public final class LanguageModel: @unchecked Sendable {
    public let file: GGUFFile
    public let weights: ModelWeights
    public let tokenizer: Tokenizer
    public let transformer: Transformer
    /// The chat template the file carries, if it has one the engine can render.
    public let chatTemplate: ChatTemplate?
    /// Why `chatTemplate` is nil, when the file has a template the engine cannot render (or none).
    public let chatTemplateError: Error?
    public var config: ModelConfig { weights.config }

    /// Threads used when none are given: the machine's processors.
    public static var defaultThreads: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Maps and validates the file, binds its weights and builds its tokenizer.
    public init(path: String, threads: Int = LanguageModel.defaultThreads) throws {
        file = try GGUFFile(path: path)
        weights = try ModelWeights(file: file)
        tokenizer = try Tokenizer(gguf: file)
        transformer = Transformer(weights: weights, threads: threads)
        if let src = file.string("tokenizer.chat_template") {
            do { chatTemplate = try ChatTemplate(source: src); chatTemplateError = nil } catch {
                chatTemplate = nil; chatTemplateError = error
            }
        } else {
            chatTemplate = nil
            chatTemplateError = ChatTemplateError.noTemplate(file: path)
        }
    }

    /// Token ids of `text`. BOS is added as the file says unless `addSpecial` overrides; `special` parses
    /// control tokens written in the text.
    public func tokenize(_ text: String, special: Bool = false, addSpecial: Bool? = nil) -> [Int32] {
        tokenizer.encode(text, addSpecial: addSpecial, parseSpecial: special)
    }

    /// Text of `ids` (control tokens rendered when `special`).
    public func detokenize(_ ids: [Int32], special: Bool = false) -> String {
        tokenizer.decode(ids, special: special)
    }

    /// Checks ids against the vocabulary; throws a clear error naming the first bad one.
    public func validate(_ ids: [Int32]) throws {
        if let (i, id) = ids.enumerated().first(where: { $0.element < 0 || Int($0.element) >= config.vocabularySize }) {
            throw EngineError.badInput("token id \(id) at index \(i) is outside the vocabulary (0..<\(config.vocabularySize))")
        }
    }

    /// The prompt the chat template makes of `messages` (with the assistant's turn opened).
    public func renderChat(_ messages: [ChatMessage], template: ChatTemplate? = nil) throws -> String {
        guard let t = template ?? chatTemplate else {
            throw chatTemplateError ?? ChatTemplateError.noTemplate(file: file.path)
        }
        return try t.render(messages, addGenerationPrompt: true)
    }

    /// A new state holding no tokens.
    public func makeState() -> ModelState { ModelState(model: self) }

    /// Generates from `prompt` (ids) in a fresh state.
    public func generate(_ prompt: [Int32], options: GenerationOptions = .init(),
                         onToken: ((GeneratedToken) -> Bool)? = nil) throws -> Generation {
        guard !prompt.isEmpty else { throw EngineError.badInput("generation needs a prompt of at least one token") }
        let st = makeState()
        try st.append(prompt)
        return try st.generate(options, onToken: onToken)
    }

    /// Log-probability of each token of `continuation` given `prefix` (at least one token).
    public func score(prefix: [Int32], continuation: [Int32]) throws -> Score {
        guard !prefix.isEmpty else { throw EngineError.badInput("score needs a prefix of at least one token") }
        try validate(prefix); try validate(continuation)
        guard !continuation.isEmpty else { return Score(ids: [], logprobs: []) }
        let all = prefix + continuation
        guard all.count <= config.contextLength else {
            throw EngineError.badInput("\(all.count) tokens exceed the context length \(config.contextLength)")
        }
        let cache = transformer.makeCache(maxPositions: all.count)
        // Logits are needed only from the last prefix position on: evaluate the prefix head without them.
        let head = Array(prefix.dropLast())
        if !head.isEmpty { _ = transformer.forward(head, cache: cache, logits: .none) }
        let tail = [prefix.last!] + continuation.dropLast()
        let rows = transformer.forward(tail, cache: cache, logits: .all)
        let V = config.vocabularySize
        let lps = rows.withUnsafeBufferPointer { b in
            continuation.enumerated().map { i, id in
                Float(LogProbs.logProb(UnsafeBufferPointer(rebasing: b[(i * V)..<((i + 1) * V)]), id))
            }
        }
        return Score(ids: continuation, logprobs: lps)
    }
}

/// Errors in what a caller asked of the engine.
public enum EngineError: Error, CustomStringConvertible {
    case badInput(String)
    case contextFull(Int)
    public var description: String {
        switch self {
        case .badInput(let m): return m
        case .contextFull(let n): return "context full: the model's context holds \(n) tokens"
        }
    }
}

/// Log-probabilities of a continuation.
public struct Score: Sendable {
    public let ids: [Int32]
    public let logprobs: [Float]
    public var sum: Double { logprobs.reduce(0) { $0 + Double($1) } }
    public var mean: Double { logprobs.isEmpty ? 0 : sum / Double(logprobs.count) }
}

/// What to generate and how.
public struct GenerationOptions: Sendable {
    public var maxTokens = 128
    public var sampling = SamplingParameters()
    /// Generation stops when the text contains one of these; the stop string is not part of the result.
    public var stop: [String] = []
    /// Alternatives to report per generated token (0: none).
    public var topLogprobs = 0
    /// Keep going past end-of-generation tokens.
    public var ignoreEOS = false
    public init() {}
}

/// One generated token, as streamed.
public struct GeneratedToken: Sendable {
    public let id: Int32
    /// The text this token completes (complete UTF-8 only; may be empty while a character spans tokens).
    public let text: String
    /// Log-probability of the token under the model's distribution (before temperature and truncation).
    public let logprob: Float
    /// The most likely alternatives with their log-probabilities, best first (when asked for).
    public let top: [(id: Int32, logprob: Float)]
}

/// Why a generation ended.
public enum FinishReason: String, Sendable {
    case stop, length, eos, cancelled
}

/// The result of a generation.
public struct Generation: Sendable {
    public var ids: [Int32] = []
    public var text = ""
    public var tokens: [GeneratedToken] = []
    public var finish = FinishReason.length
    /// The end-of-generation token that ended it (finish `eos`); not part of `ids` or `text`.
    public var endToken: Int32? = nil
    public var promptTokens = 0
    public var promptSeconds = 0.0
    public var seconds = 0.0
}

/// A token sequence and its KV cache, which can be extended, forked and rewound. Tokens are evaluated lazily,
/// when logits are needed, so appending a generated token costs nothing until the next step.
public final class ModelState: @unchecked Sendable {
    public let model: LanguageModel
    public private(set) var tokens: [Int32] = []
    let cache: KVCache
    private var lastLogits: [Float] = []

    init(model: LanguageModel, cache: KVCache? = nil) {
        self.model = model
        self.cache = cache ?? model.transformer.makeCache()
    }

    /// Number of tokens.
    public var count: Int { tokens.count }

    /// Appends `ids` (evaluated when logits are next needed).
    public func append(_ ids: [Int32]) throws {
        try model.validate(ids)
        guard tokens.count + ids.count <= cache.maxPositions else { throw EngineError.contextFull(cache.maxPositions) }
        tokens += ids
    }

    /// Logits after the last token (evaluating pending tokens first).
    public func logits() throws -> [Float] {
        guard !tokens.isEmpty else { throw EngineError.badInput("no tokens: the state is empty") }
        if cache.count < tokens.count {
            lastLogits = model.transformer.forward(Array(tokens[cache.count...]), cache: cache, logits: .last)
        }
        return lastLogits
    }

    /// An independent copy: appending to one does not change the other.
    public func fork() -> ModelState {
        let s = ModelState(model: model, cache: cache.fork())
        s.tokens = tokens
        s.lastLogits = lastLogits
        return s
    }

    /// Keeps the first `n` tokens.
    public func rewind(to n: Int) throws {
        guard n >= 0, n <= tokens.count else { throw EngineError.badInput("rewind to \(n) outside 0...\(tokens.count)") }
        if n == tokens.count { return }
        tokens.removeLast(tokens.count - n)
        // The last kept token is evaluated again so that its logits are at hand.
        if cache.count >= n { cache.rewind(to: max(0, n - 1)) }
    }

    /// Samples up to `options.maxTokens` tokens, appending them to this state. `onToken` sees each token as
    /// it comes and may return false to stop (finish reason `cancelled`).
    public func generate(_ options: GenerationOptions, onToken: ((GeneratedToken) -> Bool)? = nil) throws -> Generation {
        guard !tokens.isEmpty else { throw EngineError.badInput("generation needs a prompt of at least one token") }
        var g = Generation()
        g.promptTokens = tokens.count
        let t0 = Date()
        _ = try logits()
        g.promptSeconds = Date().timeIntervalSince(t0)
        var sampler = Sampler(options.sampling)
        var decoder = model.tokenizer.makeStreamDecoder()
        var stops = StopMatcher(stops: options.stop)
        let eog = model.tokenizer.endOfGeneration
        var text = ""
        while g.ids.count < options.maxTokens {
            if tokens.count >= cache.maxPositions { break }
            let row = try logits()
            let (id, lp, top): (Int32, Float, [(id: Int32, logprob: Float)]) = row.withUnsafeBufferPointer { row in
                let id = sampler.sample(row, history: tokens)
                let lp = Float(LogProbs.logProb(row, id))
                return (id, lp, options.topLogprobs > 0 ? LogProbs.topK(row, options.topLogprobs) : [])
            }
            if eog.contains(id) && !options.ignoreEOS { g.finish = .eos; g.endToken = id; break }
            try append([id])
            g.ids.append(id)
            let step = stops.feed(decoder.push(id))
            let safe = step.text, matched = step.stop != nil
            text += safe
            let tok = GeneratedToken(id: id, text: safe, logprob: lp, top: top)
            g.tokens.append(tok)
            if matched { g.finish = .stop; break }
            if let cb = onToken, !cb(tok) { g.finish = .cancelled; break }
        }
        if g.finish != .stop {
            text += stops.feed(decoder.finish()).text
            text += stops.flush()
        }
        g.text = text
        g.seconds = Date().timeIntervalSince(t0)
        return g
    }
}
