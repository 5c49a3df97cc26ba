// The prefix cache: a few recent evaluated states, so that a later call whose tokens begin with one of them
// continues from its KV cache instead of evaluating those tokens again; and the model's calls that use it.
import Foundation

/// The prefix cache: a few recent states, most recent last, holding at most `maxBytes` of KV together. Used by its
/// model's one caller at a time (see `LanguageModel`), so it takes no lock of its own.
final class PrefixCache {
    var maxEntries = 4
    var maxBytes = 512 << 20
    /// A remembered state's tokens, KV cache and last logits, without the state itself: a state holds its model,
    /// and the model holds this cache, so an entry that kept the state would keep the model (and its threads)
    /// alive after its last user let go of it.
    struct Entry {
        let tokens: [Int32]
        let cache: KVCache
        let lastLogits: [Float]
        var isEvaluated: Bool { !tokens.isEmpty && cache.count == tokens.count }
        var count: Int { tokens.count }
    }
    private var entries: [Entry] = []

    /// The entry sharing the longest evaluated prefix with `ids`, as a state of `model`, and that length (moved to
    /// most recent).
    /// Only entries computed under `interventions` count; under interventions on prompt or generated positions
    /// only, an entry's positions from its first generated token on are not reused (a new call's prompt
    /// positions are prompt positions).
    func longestPrefix(of ids: [Int32], model: LanguageModel, interventions: Interventions? = nil) -> (ModelState, Int)? {
        // Longest first; among equals, one whose logits after exactly `ids` are at hand, then the most recent.
        var best: (index: Int, length: Int, exact: Bool)? = nil
        for (i, e) in entries.enumerated() where e.cache.interventions == interventions {
            var limit = min(ids.count, e.cache.count, e.tokens.count)
            if interventions?.dependsOnPhase == true, let g = e.cache.firstGenerated { limit = min(limit, g) }
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
        return (ModelState(model: model, entry: e), best.length)
    }

    /// Adds `state` as the most recent entry; an entry whose evaluated tokens `state` extends is dropped.
    func insert(_ state: ModelState) {
        guard maxEntries > 0, state.cache.bytes <= maxBytes else { return }
        let n = state.cache.count
        entries.removeAll { e in
            e.cache === state.cache || (e.cache.count <= n && e.tokens.prefix(e.cache.count).elementsEqual(state.tokens.prefix(e.cache.count)))
        }
        entries.append(state.entry)
        trim()
    }

    /// Drops the oldest entries beyond the limits.
    func trim() {
        while entries.count > maxEntries { entries.removeFirst() }
        while entries.reduce(0, { $0 + $1.cache.bytes }) > maxBytes, !entries.isEmpty { entries.removeFirst() }
    }
}

// MARK: - The model's prefix cache calls

extension LanguageModel {
    /// Most states the prefix cache keeps (0 turns it off), and the most bytes of KV they may hold together.
    public var prefixCacheEntries: Int {
        get { prefixCache.maxEntries }
        set { prefixCache.maxEntries = max(0, newValue); prefixCache.trim() }
    }
    public var prefixCacheBytes: Int {
        get { prefixCache.maxBytes }
        set { prefixCache.maxBytes = max(0, newValue); prefixCache.trim() }
    }

    /// A new state holding `prompt` whose cache starts with the longest evaluated prefix of `prompt` found in the
    /// prefix cache (with room for `room` more tokens). Returns it and how many of its positions were reused.
    /// The state is the caller's own: the cached one is copied, never shared.
    public func cachedState(for prompt: [Int32], room: Int = 0,
                            interventions: Interventions? = nil) throws -> (state: ModelState, cached: Int) {
        try cachedState(for: prompt, room: room, needLogits: true, interventions: interventions)
    }

    /// As `cachedState(for:room:)`; without `needLogits` (a caller that only extends the cache), a prompt wholly
    /// inside a cached state keeps all its positions, and the state's logits must not be used.
    func cachedState(for prompt: [Int32], room: Int, needLogits: Bool,
                     interventions: Interventions? = nil) throws -> (state: ModelState, cached: Int) {
        try validate(prompt)
        guard prompt.count <= config.contextLength else {
            throw EngineError.badInput("context full: the prompt's \(prompt.count) tokens exceed the model's context of \(config.contextLength)")
        }
        let fresh = { () -> (state: ModelState, cached: Int) in
            let st = ModelState(model: self, tokens: prompt)
            st.cache.intervene(interventions)
            return (st, 0)
        }
        guard let (entry, common) = prefixCache.longestPrefix(of: prompt, model: self, interventions: interventions) else {
            return fresh()
        }
        // A prompt wholly inside an entry: its logits are at hand only when the entry ends exactly there;
        // otherwise the last prompt token is evaluated again for them.
        var keep = common
        if needLogits && keep == prompt.count && !(entry.isEvaluated && entry.count == prompt.count) { keep -= 1 }
        if keep <= 0 { return fresh() }
        return (entry.derive(prompt, keeping: keep, room: room), keep)
    }

    /// Offers `state` to the prefix cache (the caller must not change it afterwards).
    public func rememberState(_ state: ModelState) {
        guard state.model === self, state.cache.count > 0 else { return }
        prefixCache.insert(state)
    }
}
