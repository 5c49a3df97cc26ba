// What a caller passes to generation and scoring, and what it gets back: options, streamed tokens, finish
// reasons, results.

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
    /// A GBNF grammar (llama.cpp's syntax) the generated text must follow: every token is drawn from those the
    /// grammar allows at that point (GrammarMatcher.swift); nil: free generation.
    public var grammar: String? = nil
    /// A regular expression the whole generated text must match (ConstraintGrammar.regex); nil: none.
    public var regex: String? = nil
    /// Strings one of which is the whole generated text (generated, not scored); empty: none.
    public var choices: [String] = []
    /// A JSON schema (JSON text) the generated text must be an instance of, read into a grammar as llama.cpp's
    /// converter reads it (ConstraintGrammar.jsonSchema); nil: none.
    public var jsonSchema: String? = nil
    /// Report each constrained token's log-probability in the distribution the constraint leaves
    /// (`GeneratedToken.constrainedLogprob`). That needs every step's whole mask of allowed tokens, which a draw
    /// otherwise avoids (it asks the grammar about a few tokens: GenerationRun.consume); the tokens drawn are the
    /// same either way.
    public var constrainedLogprobs = false
    /// Changes to the forward pass (steering, ablation, patching) every position of the generation is computed
    /// under, the prompt's included (Intervention.swift); empty: none.
    public var interventions: [Intervention] = []
    public init() {}

    /// The grammar of the constraint asked for (`grammar`, `regex`, `choices` or `json_schema`; at most one), nil
    /// for none.
    public func constraintGrammar() throws -> String? {
        let given = [grammar != nil ? "grammar" : nil, regex != nil ? "regex" : nil, !choices.isEmpty ? "choices" : nil,
                     jsonSchema != nil ? "json_schema" : nil].compactMap { $0 }
        guard given.count <= 1 else {
            throw EngineError.badInput("give at most one of grammar, regex, choices and json_schema, got \(given.joined(separator: " and "))")
        }
        if let g = grammar { return g }
        if let r = regex { return try ConstraintGrammar.regex(r) }
        if !choices.isEmpty { return try ConstraintGrammar.choices(choices) }
        if let j = jsonSchema { return try ConstraintGrammar.cachedJSONSchema(j) }
        return nil
    }

    /// The most alternatives a generation reports per token (each becomes a table in Lua, a JSON object on the
    /// command line; the whole distribution is what `score` and `inspect` are for).
    public static let maxTopLogprobs = 1000

    /// Errors for options no generation can honour, before any work.
    public func check() throws {
        guard maxTokens >= 0 else { throw EngineError.badInput("max_tokens must be ≥ 0, got \(maxTokens)") }
        guard topLogprobs >= 0, topLogprobs <= GenerationOptions.maxTopLogprobs else {
            throw EngineError.badInput("logprobs: at most \(GenerationOptions.maxTopLogprobs) alternatives per token, got \(topLogprobs)")
        }
        if let g = try constraintGrammar() { _ = try GrammarCache.shared.grammar(g) }
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
    /// Under a grammar: the token's log-probability in the distribution the grammar left (the model's, renormalised
    /// over the allowed tokens, before temperature and truncation); nil without one.
    public var constrainedLogprob: Float? = nil
}

/// What `sample` does after a token: go on, stop this sequence, or stop every sequence.
public enum SampleAction: Sendable {
    case proceed, stop, stopAll
}

/// Why a generation ended.
public enum FinishReason: String, Sendable {
    /// `incomplete`: the token limit (or the context) was reached inside a grammar, before it was complete.
    case stop, length, eos, cancelled, incomplete
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
