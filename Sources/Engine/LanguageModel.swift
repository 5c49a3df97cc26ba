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

    /// Checks ids against the vocabulary; throws a clear error naming the first bad one (and `ModelFileChanged`
    /// when the model file changed on disk since it was loaded).
    public func validate(_ ids: [Int32]) throws {
        try file.checkUnchanged()
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

    /// Generates from `prompt` (ids), starting from the longest prefix of it a recent call evaluated (the prefix
    /// cache; `Generation.cachedTokens` says how many tokens were reused).
    public func generate(_ prompt: [Int32], options: GenerationOptions = .init(),
                         onToken: ((GeneratedToken) -> Bool)? = nil) throws -> Generation {
        guard !prompt.isEmpty else { throw EngineError.badInput("generation needs a prompt of at least one token") }
        try options.check()
        let (st, cached) = try cachedState(for: prompt, room: options.maxTokens)
        var g = try st.generate(options, onToken: onToken)
        g.cachedTokens = cached
        rememberState(st)
        return g
    }

    /// `n` generations from one prompt, decoded together: the prompt is evaluated once (from the prefix cache when
    /// it can), forked `n` times, and each step evaluates one token of every unfinished sequence in one batched
    /// pass. Sequence `i` samples with seed `options.sampling.seed + i` and has its own stop strings and end of
    /// generation; a finished one drops out of the batch. Its tokens equal those `generate` gives with that seed.
    /// `onToken(i, token)` sees each token of sequence `i` as it comes (sequences interleave) and says whether to
    /// go on with it, stop it, or stop them all (finish reason `cancelled`).
    /// Errors before any work when the `n` sequences' KV caches and logits would need more than `byteLimit`.
    public func sample(prompt: [Int32], n: Int, options: GenerationOptions = .init(),
                       byteLimit: Int = LanguageModel.sampleByteLimit,
                       onToken: ((Int, GeneratedToken) -> SampleAction)? = nil) throws -> [Generation] {
        let request = BatchRequest(prompt: prompt, n: n, options: options)
        let out = try generateBatch([request], byteLimit: byteLimit,
                                    onToken: onToken.map { cb in { _, i, tok in cb(i, tok) } })
        return out[0]
    }

    /// One request of `generateBatch`: a prompt and its options, and how many samples (`n` nil: one generation,
    /// as `generate` gives; `n` = k: k samples with seeds `seed`, `seed + 1`, ..., as `sample` gives).
    public struct BatchRequest: Sendable {
        public var prompt: [Int32]
        public var n: Int?
        public var options: GenerationOptions
        public init(prompt: [Int32], n: Int? = nil, options: GenerationOptions = .init()) {
            self.prompt = prompt; self.n = n; self.options = options
        }
    }

    /// Several requests decoded together, each with its own prompt and options: every prompt is evaluated in
    /// turn (from the prefix cache when it can), then each step evaluates one token of every unfinished sequence
    /// of every request in one batched pass (`Transformer.forwardStep`, whose rows are bit-identical to one-token
    /// steps). Request `r`'s generations are those `generate` (n nil) or `sample` (n = k) would give alone.
    /// `onToken(r, i, token)` sees token of sequence `i` of request `r` as it comes. Each evaluated prompt, and
    /// each finished single generation, is offered to the prefix cache as those calls do.
    /// Errors before any work when a request is invalid or the sequences' KV caches and logits would need more
    /// than `byteLimit` together.
    /// - Returns: per request, its generations (one when `n` is nil).
    public func generateBatch(_ requests: [BatchRequest], byteLimit: Int = LanguageModel.sampleByteLimit,
                              onToken: ((Int, Int, GeneratedToken) -> SampleAction)? = nil) throws -> [[Generation]] {
        var need = 0
        for (r, q) in requests.enumerated() {
            let which = requests.count == 1 ? "" : "request \(r + 1): "
            guard !q.prompt.isEmpty else { throw EngineError.badInput("\(which)generation needs a prompt of at least one token") }
            if let n = q.n, n < 1 { throw EngineError.badInput("\(which)sample needs n ≥ 1, got \(n)") }
            try q.options.check()
            let n = q.n ?? 1
            let positions = min(q.prompt.count + min(max(q.options.maxTokens, 0), config.contextLength), config.contextLength)
            let perSequence = positions * kvBytesPerPosition + 2 * config.vocabularySize * 4
            let (bytes, o1) = n.multipliedReportingOverflow(by: perSequence)
            let (sum, o2) = need.addingReportingOverflow(bytes)
            if o1 || o2 || sum > byteLimit {
                let gib = { (b: Double) in String(format: "%.1f GiB", b / Double(1 << 30)) }
                if requests.count == 1 {
                    throw EngineError.badInput("\(n) sequences of up to \(positions) positions need \(gib(Double(n) * Double(perSequence))) for their KV caches and logits, over the \(gib(Double(byteLimit))) limit (half this machine's memory): ask for at most \(max(1, byteLimit / perSequence)) at a time")
                }
                throw EngineError.badInput("\(requests.count) requests need more than \(gib(Double(byteLimit))) for their KV caches and logits (the limit: half this machine's memory); \(which)brings the total past it: batch fewer at a time")
            }
            need = sum
        }
        // Each prompt is evaluated once; its sequences are forks of it (a single generation too, so that the
        // evaluated prompt can go to the prefix cache before the others are looked up, as sequential calls would).
        var runs: [GenerationRun] = []
        var owner: [(request: Int, index: Int)] = []
        for (r, q) in requests.enumerated() {
            let t0 = Date()
            let (base, cached) = try cachedState(for: q.prompt, room: 0)
            _ = try base.logits()
            for i in 0..<(q.n ?? 1) {
                var o = q.options
                o.sampling.seed = q.options.sampling.seed &+ UInt64(i)
                let st = base.derive(base.tokens, keeping: base.cache.count, room: q.options.maxTokens)
                runs.append(GenerationRun(state: st, options: o, start: t0, cached: cached))
                owner.append((r, i))
            }
            rememberState(base)
        }
        let V = config.vocabularySize
        while true {
            let active = runs.indices.filter { runs[$0].canContinue }
            if active.isEmpty { break }
            let stepping = active.filter { runs[$0].needsStep }
            if !stepping.isEmpty {
                let states = stepping.map { runs[$0].state }
                for st in states where st.cache.count != st.count - 1 {
                    fatalError("generateBatch: a sequence holds \(st.count - st.cache.count) unevaluated tokens, not 1")
                }
                let rows = transformer.forwardStep(states.map { $0.tokens.last! }, caches: states.map { $0.cache })
                for (k, st) in states.enumerated() { st.evaluated(rows[(k * V)..<((k + 1) * V)]) }
            }
            for i in active where !runs[i].done {
                let row = try runs[i].state.logits()
                guard let tok = try runs[i].consume(row), !runs[i].done, let cb = onToken else { continue }
                switch cb(owner[i].request, owner[i].index, tok) {
                case .proceed: break
                case .stop: runs[i].cancel()
                case .stopAll: for j in runs.indices { runs[j].cancel() }
                }
            }
        }
        var out = [[Generation]](repeating: [], count: requests.count)
        for (k, (r, _)) in owner.enumerated() {
            out[r].append(runs[k].finish())
            // A single generation's final state goes to the prefix cache, as `generate` does.
            if requests[r].n == nil { rememberState(runs[k].state) }
        }
        return out
    }

    // MARK: - Prefix cache

    /// Recent evaluated states, reused by later calls whose tokens share a prefix with them.
    let prefixCache = PrefixCache()

    /// Most states the prefix cache keeps (0 turns it off), and the most bytes of KV they may hold together.
    public var prefixCacheEntries: Int {
        get { prefixCache.lock.withLock { prefixCache.maxEntries } }
        set { prefixCache.lock.withLock { prefixCache.maxEntries = max(0, newValue); prefixCache.trim() } }
    }
    public var prefixCacheBytes: Int {
        get { prefixCache.lock.withLock { prefixCache.maxBytes } }
        set { prefixCache.lock.withLock { prefixCache.maxBytes = max(0, newValue); prefixCache.trim() } }
    }

    /// A new state holding `prompt` whose cache starts with the longest evaluated prefix of `prompt` found in the
    /// prefix cache (with room for `room` more tokens). Returns it and how many of its positions were reused.
    /// The state is the caller's own: the cached one is copied, never shared.
    public func cachedState(for prompt: [Int32], room: Int = 0) throws -> (state: ModelState, cached: Int) {
        try cachedState(for: prompt, room: room, needLogits: true)
    }

    /// As `cachedState(for:room:)`; without `needLogits` (a caller that only extends the cache), a prompt wholly
    /// inside a cached state keeps all its positions, and the state's logits must not be used.
    func cachedState(for prompt: [Int32], room: Int, needLogits: Bool) throws -> (state: ModelState, cached: Int) {
        try validate(prompt)
        guard prompt.count <= config.contextLength else {
            throw EngineError.badInput("context full: the prompt's \(prompt.count) tokens exceed the model's context of \(config.contextLength)")
        }
        return prefixCache.lock.withLock {
            guard let (entry, common) = prefixCache.longestPrefix(of: prompt) else {
                return (ModelState(model: self, tokens: prompt), 0)
            }
            // A prompt wholly inside an entry: its logits are at hand only when the entry ends exactly there;
            // otherwise the last prompt token is evaluated again for them.
            var keep = common
            if needLogits && keep == prompt.count && !(entry.isEvaluated && entry.count == prompt.count) { keep -= 1 }
            if keep <= 0 { return (ModelState(model: self, tokens: prompt), 0) }
            return (entry.derive(prompt, keeping: keep, room: room), keep)
        }
    }

    /// Offers `state` to the prefix cache (the caller must not change it afterwards).
    public func rememberState(_ state: ModelState) {
        guard state.model === self, state.cache.count > 0 else { return }
        prefixCache.lock.withLock { prefixCache.insert(state) }
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
        // Positions before the last prefix token may come from the prefix cache; logits are needed only from the
        // last prefix position on: evaluate the rest of the prefix head without them.
        let (st, reused) = try cachedState(for: Array(prefix.dropLast()), room: continuation.count + 1,
                                            needLogits: false)
        let cached = min(reused, st.cache.count)
        let cache = st.cache
        let head = Array(prefix[cache.count..<(prefix.count - 1)])
        if !head.isEmpty { _ = transformer.forward(head, cache: cache, logits: .none) }
        let tail = [prefix.last!] + continuation.dropLast()
        let rows = transformer.forward(tail, cache: cache, logits: .all)
        rememberState(ModelState(model: self, cache: cache, tokens: all))
        let V = config.vocabularySize
        let lps = rows.withUnsafeBufferPointer { b in
            continuation.enumerated().map { i, id in
                Float(LogProbs.logProb(UnsafeBufferPointer(rebasing: b[(i * V)..<((i + 1) * V)]), id))
            }
        }
        var sc = Score(ids: continuation, logprobs: lps)
        sc.cached = cached
        return sc
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
    /// Prefix tokens whose evaluation was reused from an earlier call (the prefix cache).
    public var cached = 0
    public var sum: Double { logprobs.reduce(0) { $0 + Double($1) } }
    public var mean: Double { logprobs.isEmpty ? 0 : sum / Double(logprobs.count) }
}

/// What to generate and how.
public struct GenerationOptions: Sendable {
    public var maxTokens = 128
    public var sampling = SamplingParameters()
    /// Generation stops when the text contains one of these; the stop string is not part of the result.
    public var stop: [String] = []
    /// Alternatives to report per generated token (0: none; at most `maxTopLogprobs`).
    public var topLogprobs = 0
    /// Keep going past end-of-generation tokens.
    public var ignoreEOS = false
    public init() {}

    /// The most alternatives a generation reports per token (each becomes a table in Lua, a JSON object on the
    /// command line; the whole distribution is what `score` and `inspect` are for).
    public static let maxTopLogprobs = 1000

    /// Errors for options no generation can honour, before any work.
    public func check() throws {
        guard maxTokens >= 0 else { throw EngineError.badInput("max_tokens must be ≥ 0, got \(maxTokens)") }
        guard topLogprobs >= 0, topLogprobs <= GenerationOptions.maxTopLogprobs else {
            throw EngineError.badInput("logprobs: at most \(GenerationOptions.maxTopLogprobs) alternatives per token, got \(topLogprobs)")
        }
    }
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
    /// The entropy of the model's distribution at this step in nats (when alternatives were asked for).
    public var entropy: Float? = nil
}

/// What `sample` does after a token: go on, stop this sequence, or stop every sequence.
public enum SampleAction: Sendable {
    case proceed, stop, stopAll
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
    /// Prompt tokens whose evaluation was reused from an earlier call (the prefix cache), not evaluated again.
    public var cachedTokens = 0
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

    init(model: LanguageModel, cache: KVCache? = nil, tokens: [Int32] = []) {
        self.model = model
        self.cache = cache ?? model.transformer.makeCache()
        self.tokens = tokens
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
            try model.file.checkUnchanged()
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
        try options.check()
        let t0 = Date()
        _ = try logits()
        var run = GenerationRun(state: self, options: options, start: t0)
        while run.canContinue {
            let row = try logits()
            if let tok = try run.consume(row), !run.done, let cb = onToken, !cb(tok) { run.cancel() }
        }
        return run.finish()
    }

    /// Sets the logits after the last token, once a batched step has evaluated it.
    func evaluated(_ row: ArraySlice<Float>) {
        lastLogits = Array(row)
    }

    /// A copy holding `tokens` (which must extend the first `keep` of this state's evaluated positions) whose cache
    /// keeps those `keep` positions; the rest is evaluated when logits are next needed. When `keep` covers all of
    /// `tokens`, this state's logits are carried over (they must be the logits after exactly those tokens).
    func derive(_ tokens: [Int32], keeping keep: Int, room: Int) -> ModelState {
        let s = ModelState(model: model, cache: cache.fork(keeping: keep, room: tokens.count - keep + room))
        s.tokens = tokens
        if keep == tokens.count { s.lastLogits = lastLogits }
        return s
    }

    /// Whether the logits after the last token are at hand (every token evaluated).
    var isEvaluated: Bool { !tokens.isEmpty && cache.count == tokens.count }
}

/// One sequence being generated: its sampler, text decoder, stop matcher and result so far. Shared by a single
/// generation and by `sample`, where several decode together.
struct GenerationRun {
    let state: ModelState
    let options: GenerationOptions
    var sampler: Sampler
    var decoder: TokenStreamDecoder
    var stops: StopMatcher
    let eog: Set<Int32>
    let start: Date
    var g = Generation()
    var text = ""
    var done = false

    init(state: ModelState, options: GenerationOptions, start: Date, promptTokens: Int? = nil, cached: Int = 0) {
        self.state = state
        self.options = options
        self.start = start
        sampler = Sampler(options.sampling)
        decoder = state.model.tokenizer.makeStreamDecoder()
        stops = StopMatcher(stops: options.stop)
        eog = state.model.tokenizer.endOfGeneration
        g.promptTokens = promptTokens ?? state.count
        g.cachedTokens = cached
        g.promptSeconds = Date().timeIntervalSince(start)
    }

    /// Whether another token is to be sampled.
    var canContinue: Bool {
        !done && g.ids.count < options.maxTokens && state.count < state.cache.maxPositions
    }

    /// Whether the state holds a token not yet evaluated (it needs a step before the next sample).
    var needsStep: Bool { state.cache.count < state.count }

    /// Samples one token from `row` (the logits after the state's last token) and appends it; nil when the
    /// generation ended without one (end of generation).
    mutating func consume(_ row: [Float]) throws -> GeneratedToken? {
        let opts = options
        let history = state.tokens
        let (id, lp, top, entropy): (Int32, Float, [(id: Int32, logprob: Float)], Float?) = row.withUnsafeBufferPointer { row in
            let id = sampler.sample(row, history: history)
            let lp = Float(LogProbs.logProb(row, id))
            guard opts.topLogprobs > 0 else { return (id, lp, [], nil) }
            return (id, lp, LogProbs.topK(row, opts.topLogprobs), Float(LogProbs.entropy(row)))
        }
        if eog.contains(id) && !options.ignoreEOS { g.finish = .eos; g.endToken = id; done = true; return nil }
        try state.append([id])
        g.ids.append(id)
        let step = stops.feed(decoder.push(id))
        text += step.text
        let tok = GeneratedToken(id: id, text: step.text, logprob: lp, top: top, entropy: entropy)
        g.tokens.append(tok)
        if step.stop != nil { g.finish = .stop; done = true }
        return tok
    }

    /// Ends the generation early (finish `cancelled`).
    mutating func cancel() {
        if !done { g.finish = .cancelled; done = true }
    }

    /// The result, with the text held back by the decoder and the stop matcher.
    mutating func finish() -> Generation {
        if g.finish != .stop {
            text += stops.feed(decoder.finish()).text
            text += stops.flush()
        }
        g.text = text
        g.seconds = Date().timeIntervalSince(start)
        return g
    }
}

/// The prefix cache: a few recent states, most recent last, holding at most `maxBytes` of KV together. Callers
/// hold `lock`.
final class PrefixCache: @unchecked Sendable {
    let lock = NSLock()
    var maxEntries = 4
    var maxBytes = 512 << 20
    private var entries: [ModelState] = []

    /// The entry sharing the longest evaluated prefix with `ids`, and that length (moved to most recent).
    func longestPrefix(of ids: [Int32]) -> (ModelState, Int)? {
        // Longest first; among equals, one whose logits after exactly `ids` are at hand, then the most recent.
        var best: (index: Int, length: Int, exact: Bool)? = nil
        for (i, e) in entries.enumerated() {
            let limit = min(ids.count, e.cache.count)
            var n = 0
            e.tokens.withUnsafeBufferPointer { t in
                ids.withUnsafeBufferPointer { p in while n < limit && t[n] == p[n] { n += 1 } }
            }
            let exact = n == ids.count && e.isEvaluated && e.count == n
            if n > 0, best == nil || n > best!.length || (n == best!.length && (exact || !best!.exact)) {
                best = (i, n, exact)
            }
        }
        guard let best else { return nil }
        let e = entries.remove(at: best.index)
        entries.append(e)
        return (e, best.length)
    }

    /// Adds `state` as the most recent entry; an entry whose evaluated tokens `state` extends is dropped.
    func insert(_ state: ModelState) {
        guard maxEntries > 0, state.cache.bytes <= maxBytes else { return }
        let n = state.cache.count
        entries.removeAll { e in
            e === state || (e.cache.count <= n && e.tokens.prefix(e.cache.count).elementsEqual(state.tokens.prefix(e.cache.count)))
        }
        entries.append(state)
        trim()
    }

    /// Drops the oldest entries beyond the limits.
    func trim() {
        while entries.count > maxEntries { entries.removeFirst() }
        while entries.reduce(0, { $0 + $1.cache.bytes }) > maxBytes, !entries.isEmpty { entries.removeFirst() }
    }
}

extension LanguageModel {
    /// The most bytes `sample` plans for its sequences' KV caches and logits: half the machine's memory.
    public static var sampleByteLimit: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory / 2) }

    /// The bytes one position of a KV cache holds on the current precision path (keys and values, every layer).
    public var kvBytesPerPosition: Int {
        let c = config
        return c.layerCount * c.kvHeadCount * (c.headDim + c.valueDim) * (transformer.precision == .quantized ? 2 : 4)
    }
}
