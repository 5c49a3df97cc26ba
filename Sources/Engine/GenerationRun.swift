// One sequence being generated: sampling each token from the state's logits, streaming its text, watching for
// stop strings and end of generation. Shared by a single generation and by batched ones.
import Foundation

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
    /// The grammar the text must follow, and where in it the generation is.
    let constraint: GrammarConstraint?
    var grammarState: Int32 = 0

    init(state: ModelState, options: GenerationOptions, start: Date, promptTokens: Int? = nil, cached: Int = 0) throws {
        constraint = try options.constraintGrammar().map { try GrammarCache.shared.constraint($0, tokenizer: state.model.tokenizer) }
        grammarState = constraint?.initial ?? 0
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

    /// The most candidates a greedy or top-k draw asks the grammar about before it masks the row instead.
    static let candidateLimit = 1024
    /// The most draws a rejection draw makes before it masks the row instead.
    static let rejectionTries = 16

    /// Whether another token is to be sampled.
    var canContinue: Bool {
        !done && g.ids.count < options.maxTokens && state.count < state.cache.maxPositions
    }

    /// Whether the state holds a token not yet evaluated (it needs a step before the next sample).
    var needsStep: Bool { state.cache.count < state.count }

    /// Samples one token from `row` (the logits after the state's last token) and appends it; nil when the
    /// generation ended without one (end of generation).
    mutating func consume(_ row: [Float]) throws -> GeneratedToken? {
        let history = state.tokens
        var constrainedLogprob: Float? = nil
        let id: Int32
        if let c = constraint {
            // The grammar is complete and takes nothing more: the constraint ends the text.
            if !c.canContinue(grammarState) { g.finish = .stop; done = true; return nil }
            // Sampling (temperature, top-k/p, min-p, penalties) sees only the tokens the grammar allows. The
            // grammar is asked about a few tokens where the draw allows it, since a new state's mask walks most of
            // the vocabulary when the grammar allows most of it (a JSON string): an untruncated draw by rejection
            // (the same distribution, its own random stream), a greedy or top-k draw from the best candidates (the
            // very token the masked row gives, so the path taken never shows in the result).
            let n = row.count, st = grammarState
            var drawn: Int32? = nil
            if sampler.drawsFromWhole(of: n) {
                drawn = row.withUnsafeBufferPointer {
                    sampler.sample($0, history: history, allowing: { c.allowsWithoutMask(st, $0) }, tries: GenerationRun.rejectionTries)
                }
            } else if sampler.drawsFromBest(of: n) && !options.constrainedLogprobs && !c.hasMask(st) {
                drawn = row.withUnsafeBufferPointer {
                    sampler.sample($0, history: history, allowing: { c.allowsWithoutMask(st, $0) }, limit: GenerationRun.candidateLimit)
                }
            }
            if drawn == nil || options.constrainedLogprobs {
                // The masked row; only the allowed tokens are touched (a grammar often allows a few of the vocabulary).
                let allowed = c.allowed(st)
                var masked = [Float](repeating: -.infinity, count: n)
                var top = -Float.infinity
                for t in allowed { let v = row[Int(t)]; masked[Int(t)] = v; top = max(top, v) }
                guard top > -.infinity else { g.finish = .incomplete; done = true; return nil }   // no token can go on
                let d = drawn ?? sampler.sample(masked, history: history)
                if options.constrainedLogprobs {
                    if allowed.count > n / 8 {
                        constrainedLogprob = Float(LogProbs.logProb(masked, d))   // many allowed: the vectorised pass
                    } else {
                        var sum = 0.0
                        for t in allowed { sum += Foundation.exp(Double(row[Int(t)] - top)) }
                        constrainedLogprob = Float(Double(row[Int(d)] - top) - Foundation.log(sum))
                    }
                }
                id = d
            } else {
                id = drawn!
            }
        } else {
            id = sampler.sample(row, history: history)
        }
        let opts = options
        let (lp, top, entropy): (Float, [(id: Int32, logprob: Float)], Float?) = row.withUnsafeBufferPointer { row in
            let lp = Float(LogProbs.logProb(row, id))   // the model's own log-probability, as without a grammar
            guard opts.topLogprobs > 0 else { return (lp, [], nil) }
            return (lp, LogProbs.topK(row, opts.topLogprobs), Float(LogProbs.entropy(row)))
        }
        if eog.contains(id) && (!options.ignoreEOS || constraint != nil) { g.finish = .eos; g.endToken = id; done = true; return nil }
        if let c = constraint {
            guard let next = c.accept(grammarState, id) else {
                throw EngineError.badInput("grammar: token \(id) was drawn but the grammar refuses it (a bug: please report it)")
            }
            grammarState = next
        }
        try state.appendGenerated(id)
        g.ids.append(id)
        let step = stops.feed(decoder.push(id))
        text += step.text
        var tok = GeneratedToken(id: id, text: step.text, logprob: lp, top: top, entropy: entropy)
        tok.constrainedLogprob = constrainedLogprob
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
        // The token limit or the context reached inside the grammar: a finish reason of its own.
        if let c = constraint, g.finish == .length, !c.isComplete(grammarState) { g.finish = .incomplete }
        if g.finish != .stop {
            text += stops.feed(decoder.finish()).text
            text += stops.flush()
        }
        g.text = text
        g.seconds = Date().timeIntervalSince(start)
        return g
    }
}
