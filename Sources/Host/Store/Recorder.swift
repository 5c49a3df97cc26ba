// Recording model calls: the `Recorder` a host owns holds where records go (the run store's session, or nowhere)
// and the labels `lm.store.label` attached to the calls that follow. Local calls (LmModel, LmState) run through
// `recorded`; remote backends and command-line commands build a CallRecord and pass it to `record`.
import Engine
import Foundation

/// Where a host's model calls are recorded, with the labels in force.
final class Recorder {
    /// Where records go (a `StoreSession` over the run store), or nil when recording is off.
    var destination: CallRecorder?
    /// The labels `lm.store.label` attached to the calls that follow.
    var labels = CallLabels()

    init(destination: CallRecorder? = nil) { self.destination = destination }

    /// Whether calls are recorded at all.
    var isOn: Bool { destination != nil }

    /// Records one model call with `labels` (the labels in force when nil); a no-op when recording is off.
    /// Returns the call's id in the store, or nil.
    @discardableResult
    func record(_ record: CallRecord, labels: CallLabels? = nil) -> Int64? {
        destination?.record(record, labels: labels ?? self.labels)
    }

    /// Runs `body` (a local call) and records it: `outputs` turns its result into outputs and a result object.
    /// A call that throws is recorded with its error and the error rethrown. When recording is off, just runs `body`.
    func recorded<T>(_ kind: String, _ model: LanguageModel, prompt: [Int32], options: [String: Any],
                     _ body: () throws -> T, outputs: (T) -> (outputs: [CallOutput], result: [String: Any]?)) throws -> T {
        guard isOn else { return try body() }
        let started = Date()
        var call = CallRecord(kind: kind, model: model.file.path, prompt: model.detokenize(prompt, special: true),
                              promptIDs: prompt, options: CallRecord.json(options), started: started, seconds: 0)
        do {
            let r = try body()
            call.seconds = Date().timeIntervalSince(started)
            let (outs, result) = outputs(r)
            call.outputs = outs
            call.result = result.map { CallRecord.json($0) }
            record(call)
            return r
        } catch {
            call.seconds = Date().timeIntervalSince(started)
            call.error = "\(error)"
            record(call)
            throw error
        }
    }
}
