// Recording the local engine's calls: the records `generate`, `sample`, `score`, `choose` and a state's
// `generate` pass to `recordCall`, with the options as JSON (what `refrain replay` reads back).
import Engine
import Foundation

extension GenerationOptions {
    /// The options as the run store keeps them (GenerationSchema.recordFields).
    var recordFields: [String: Any] {
        var f = GenerationSchema.recordFields(self)
        if !interventions.isEmpty { f["intervene"] = LuaHost.recordFields(interventions) }
        return f
    }

    /// Options read back from `recordFields` (GenerationSchema.options(recordFields:)).
    init(recordFields f: [String: Any]) { self = GenerationSchema.options(recordFields: f) }
}

/// A generation as a call output.
func callOutput(_ g: Generation, _ m: LanguageModel) -> CallOutput {
    var top: String? = nil
    if g.tokens.contains(where: { !$0.top.isEmpty }) {
        let piece = { (id: Int32) in String(decoding: m.tokenizer.piece(id, special: true), as: UTF8.self) }
        top = CallRecord.json(g.tokens.map { t in
            t.top.map { ["id": Int($0.id), "piece": piece($0.id), "logprob": shortest($0.logprob)] as [String: Any] }
        })
    }
    return CallOutput(text: g.text, ids: g.ids, finish: g.finish.rawValue, logprobs: g.tokens.map { shortest($0.logprob) },
                      top: top, usage: CallUsage(prompt: g.promptTokens, completion: g.ids.count, cached: g.cachedTokens))
}

/// A score as a call output (the continuation's text, ids and log-probabilities).
func callOutput(_ s: Score, _ m: LanguageModel, text: String? = nil) -> CallOutput {
    CallOutput(text: text ?? m.detokenize(s.ids, special: true), ids: s.ids, logprobs: s.logprobs.map(shortest))
}

/// Records the call of a command-line command (`refrain generate`, `refrain score`) as a run of its own, with
/// `args` as the run's arguments; nothing when `off` (--no-store) or REFRAIN_STORE=0.
func recordCommandCall(_ command: String, args: [String], off: Bool, _ record: CallRecord) {
    guard !off, let path = RunStore.defaultPath() else { return }
    Recorder(destination: StoreSession(path: path, info: RunStore.RunInfo(script: command, args: args, engine: refrainVersion)))
        .record(record)
}
