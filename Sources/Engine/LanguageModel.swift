// The engine's front door: a loaded model (file, weights, tokenizer, chat template, forward pass) and what a
// caller does with it: tokenize, generate with sampling and stop strings, score a continuation, fork a state.
//
// Its parts: ModelState.swift (a token sequence and its KV cache), GenerationRun.swift (one sequence being
// sampled), PrefixCache.swift (recent evaluated states, reused by later calls), GenerationTypes.swift (what a
// caller passes in and gets back).
import Foundation

/// A GGUF model loaded for inference.
///
/// One caller at a time: what evaluates the model (generate, sample, score, states, inspection) shares the
/// transformer's scratch buffers, thread pool and prefix cache, unguarded. What never changes after loading
/// (`file`, `config`, `tokenizer`, `chatTemplate`, and `tokenize`, `detokenize`, `validate`, `renderChat` over
/// them) may be read from any thread. To share a model between threads, hand it to a `ModelScheduler`.
public final class LanguageModel {
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

    /// A new state holding no tokens, whose positions will be computed under `interventions`.
    public func makeState(interventions: [Intervention] = []) throws -> ModelState {
        let st = ModelState(model: self)
        st.cache.intervene(try checked(interventions))
        return st
    }

    /// A new state holding no tokens.
    public func makeState() -> ModelState { ModelState(model: self) }

    /// `list` checked against this model (Intervention.swift); nil when it changes nothing.
    public func checked(_ list: [Intervention]) throws -> Interventions? {
        list.isEmpty ? nil : try Interventions.make(list, config: config)
    }

    /// Generates from `prompt` (ids), starting from the longest prefix of it a recent call evaluated (the prefix
    /// cache; `Generation.cachedTokens` says how many tokens were reused).
    public func generate(_ prompt: [Int32], options: GenerationOptions = .init(),
                         onToken: ((GeneratedToken) -> Bool)? = nil) throws -> Generation {
        guard !prompt.isEmpty else { throw EngineError.badInput("generation needs a prompt of at least one token") }
        try options.check()
        let (st, cached) = try cachedState(for: prompt, room: options.maxTokens, interventions: try checked(options.interventions))
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
            do { _ = try checked(q.options.interventions) } catch { throw EngineError.badInput("\(which)\(error)") }
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
            let (base, cached) = try cachedState(for: q.prompt, room: 0, interventions: try checked(q.options.interventions))
            _ = try base.logits()
            for i in 0..<(q.n ?? 1) {
                var o = q.options
                o.sampling.seed = q.options.sampling.seed &+ UInt64(i)
                let st = base.derive(base.tokens, keeping: base.cache.count, room: q.options.maxTokens)
                runs.append(try GenerationRun(state: st, options: o, start: t0, cached: cached))
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

    /// Log-probability of each token of `continuation` given `prefix` (at least one token), every position computed
    /// under `interventions`.
    public func score(prefix: [Int32], continuation: [Int32], interventions: [Intervention] = []) throws -> Score {
        let x = try checked(interventions)
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
                                            needLogits: false, interventions: x)
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

    // MARK: - Prefix cache (the calls that use it: PrefixCache.swift)

    /// Recent evaluated states, reused by later calls whose tokens share a prefix with them.
    let prefixCache = PrefixCache()
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

extension LanguageModel {
    /// The most bytes `sample` plans for its sequences' KV caches and logits: half the machine's memory.
    public static var sampleByteLimit: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory / 2) }

    /// The bytes one position of a KV cache holds on the current precision path (keys and values, every layer).
    public var kvBytesPerPosition: Int {
        let c = config
        return c.layerCount * c.kvHeadCount * (c.headDim + c.valueDim) * (transformer.precision == .quantized ? 2 : 4)
    }
}
