// The one owner of a model that several threads share. A `LanguageModel` is used by one caller at a time (its
// transformer's scratch buffers, thread pool, prefix cache and KV states are not guarded); a scheduler runs every
// piece of work on its model in turn, in the order asked, so that callers on other threads wait instead of
// overlapping. `refrain serve` hands its model to one; a single-threaded caller (the REPL, a script) needs none.
import Foundation

/// Runs work on one model, one piece at a time, for callers on any thread.
public final class ModelScheduler: @unchecked Sendable {
    /// The model. Outside `perform`, read only what never changes after loading: `file`, `config`, `tokenizer`,
    /// `chatTemplate`, and the calls over them (`tokenize`, `detokenize`, `validate`, `renderChat`).
    public let model: LanguageModel
    /// Serial: one piece of work at a time, first asked first run.
    private let queue: DispatchQueue

    /// Takes `model` over: from now on its evaluating calls go through `perform`.
    public init(_ model: LanguageModel, label: String = "refrain.model") {
        self.model = model
        queue = DispatchQueue(label: label)
    }

    /// Runs `work` with the model once the work asked for before it has finished, and returns its result (or
    /// throws its error). `work` must not call `perform` of the same scheduler: it would wait on itself.
    public func perform<T>(_ work: (LanguageModel) throws -> T) rethrows -> T {
        try queue.sync { try work(model) }
    }
}
