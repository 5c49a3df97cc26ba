// Recording the local engine's calls: the records `generate`, `sample`, `score`, `choose` and a state's
// `generate` pass to `recordCall`, with the options as JSON (what `refrain replay` reads back).
import Engine
import Foundation

extension GenerationOptions {
    /// The options as the store keeps them: every engine option under its Lua name, the seed included.
    var recordFields: [String: Any] {
        let s = sampling
        let d = shortest
        return ["max_tokens": maxTokens, "temperature": d(s.temperature), "top_k": s.topK, "top_p": d(s.topP),
                "min_p": d(s.minP), "repeat_penalty": d(s.repetitionPenalty), "repeat_last_n": s.penaltyLastN,
                "presence_penalty": d(s.presencePenalty), "frequency_penalty": d(s.frequencyPenalty),
                "seed": s.seed, "stop": stop, "logprobs": topLogprobs, "ignore_eos": ignoreEOS]
    }

    /// Options read back from `recordFields` (what is missing keeps the engine's default).
    init(recordFields f: [String: Any]) {
        self.init()
        func num(_ k: String) -> Double? { (f[k] as? NSNumber)?.doubleValue }
        if let v = num("max_tokens") { maxTokens = Int(v) }
        if let v = num("temperature") { sampling.temperature = Float(v) }
        if let v = num("top_k") { sampling.topK = Int(v) }
        if let v = num("top_p") { sampling.topP = Float(v) }
        if let v = num("min_p") { sampling.minP = Float(v) }
        if let v = num("repeat_penalty") { sampling.repetitionPenalty = Float(v) }
        if let v = num("repeat_last_n") { sampling.penaltyLastN = Int(v) }
        if let v = num("presence_penalty") { sampling.presencePenalty = Float(v) }
        if let v = num("frequency_penalty") { sampling.frequencyPenalty = Float(v) }
        if let v = f["seed"] as? NSNumber { sampling.seed = v.uint64Value }
        if let v = f["stop"] as? [String] { stop = v }
        if let v = num("logprobs") { topLogprobs = Int(v) }
        if let v = f["ignore_eos"] as? Bool { ignoreEOS = v }
    }
}

/// A Float as the shortest decimal that reads back as it (0.05, not 0.05000000074505806), for JSON.
func shortest(_ f: Float) -> Double { f.isFinite ? Double("\(f)") ?? Double(f) : Double(f) }

extension LuaHost {
    /// Runs `body` (a local call) and records it: `outputs` turns its result into outputs and a result object.
    /// A call that throws is recorded with its error and the error rethrown. Without a store, just runs `body`.
    func recorded<T>(_ kind: String, _ m: LanguageModel, prompt: [Int32], options: [String: Any],
                     _ body: () throws -> T, outputs: (T) -> (outputs: [CallOutput], result: [String: Any]?)) throws -> T {
        guard recorder != nil else { return try body() }
        let started = Date()
        var record = CallRecord(kind: kind, model: m.file.path, prompt: m.detokenize(prompt, special: true),
                                promptIDs: prompt, options: CallRecord.json(options), started: started, seconds: 0)
        do {
            let r = try body()
            record.seconds = Date().timeIntervalSince(started)
            let (outs, result) = outputs(r)
            record.outputs = outs
            record.result = result.map { CallRecord.json($0) }
            recordCall(record)
            return r
        } catch {
            record.seconds = Date().timeIntervalSince(started)
            record.error = "\(error)"
            recordCall(record)
            throw error
        }
    }

    /// A generation as a call output.
    func callOutput(_ g: Generation, _ m: LanguageModel) -> CallOutput {
        var top: String? = nil
        if g.tokens.contains(where: { !$0.top.isEmpty }) {
            top = CallRecord.json(g.tokens.map { t in
                t.top.map { ["id": Int($0.id), "piece": piece(m, $0.id), "logprob": shortest($0.logprob)] as [String: Any] }
            })
        }
        return CallOutput(text: g.text, ids: g.ids, finish: g.finish.rawValue, logprobs: g.tokens.map { shortest($0.logprob) },
                          top: top, usage: CallUsage(prompt: g.promptTokens, completion: g.ids.count, cached: g.cachedTokens))
    }

    /// A score as a call output (the continuation's text, ids and log-probabilities).
    func callOutput(_ s: Score, _ m: LanguageModel, text: String? = nil) -> CallOutput {
        CallOutput(text: text ?? m.detokenize(s.ids, special: true), ids: s.ids, logprobs: s.logprobs.map(shortest))
    }
}
