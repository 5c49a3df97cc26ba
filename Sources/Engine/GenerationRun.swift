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
