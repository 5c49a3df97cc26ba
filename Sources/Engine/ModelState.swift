// A model state: a token sequence and its KV cache, extended, forked, rewound and generated from; tokens are
// evaluated only when logits are needed.
import Foundation

/// A token sequence and its KV cache, which can be extended, forked and rewound. Tokens are evaluated lazily,
/// when logits are needed, so appending a generated token costs nothing until the next step.
public final class ModelState {
    public let model: LanguageModel
    public private(set) var tokens: [Int32] = []
    let cache: KVCache
    private var lastLogits: [Float] = []

    init(model: LanguageModel, cache: KVCache? = nil, tokens: [Int32] = []) {
        self.model = model
        self.cache = cache ?? model.transformer.makeCache()
        self.tokens = tokens
    }

    /// A state over a prefix-cache entry's tokens, cache and logits.
    convenience init(model: LanguageModel, entry: PrefixCache.Entry) {
        self.init(model: model, cache: entry.cache, tokens: entry.tokens)
        lastLogits = entry.lastLogits
    }

    /// This state as a prefix-cache entry (sharing its cache).
    var entry: PrefixCache.Entry { PrefixCache.Entry(tokens: tokens, cache: cache, lastLogits: lastLogits) }

    /// Number of tokens.
    public var count: Int { tokens.count }

    /// Appends `ids` (evaluated when logits are next needed).
    public func append(_ ids: [Int32]) throws {
        try model.validate(ids)
        guard tokens.count + ids.count <= cache.maxPositions else { throw EngineError.contextFull(cache.maxPositions) }
        tokens += ids
    }

    /// Appends a token a generation drew (an intervention on generated positions acts on it).
    func appendGenerated(_ id: Int32) throws {
        try append([id])
        cache.markGenerated(tokens.count - 1)
    }

    /// The interventions this state's positions are computed under.
    public var interventions: Interventions? { cache.interventions }

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
        cache.trimGenerated(to: n)
        // The last kept token is evaluated again so that its logits are at hand.
        if cache.count >= n { cache.rewind(to: max(0, n - 1)) }
    }

    /// Samples up to `options.maxTokens` tokens, appending them to this state. `onToken` sees each token as
    /// it comes and may return false to stop (finish reason `cancelled`).
    public func generate(_ options: GenerationOptions, onToken: ((GeneratedToken) -> Bool)? = nil) throws -> Generation {
        guard !tokens.isEmpty else { throw EngineError.badInput("generation needs a prompt of at least one token") }
        try options.check()
        if !options.interventions.isEmpty, try model.checked(options.interventions) != cache.interventions {
            throw EngineError.badInput("a state's interventions are set when it is made (its positions were computed under them), not per generation")
        }
        let t0 = Date()
        _ = try logits()
        var run = try GenerationRun(state: self, options: options, start: t0)
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
