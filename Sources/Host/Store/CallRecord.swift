// One model call as the run store keeps it: what was asked, of which model, with which options, and what came back;
// the labels a script attached to it. The host's `Recorder` (Recorder.swift) takes them to the store.
import Foundation

/// One model call: what was asked, of which model, with which options, and what came back.
struct CallRecord: Sendable, Equatable {
    /// What the call was: "generate", "sample", "score", "choose", "state.generate", or a backend's own kind.
    var kind: String
    /// "local" for the engine in this process, else the backend's base URL (never a key).
    var backend: String = "local"
    /// The model: a file path for local calls, the served model's name for remote ones.
    var model: String
    /// The model file's SHA-256 when known (local calls; nil for remote models).
    var modelSHA256: String? = nil
    /// The prompt as text (a chat prompt rendered by the template; ids given directly are detokenized).
    var prompt: String
    /// The prompt's token ids, when the backend knows them.
    var promptIDs: [Int32]? = nil
    /// Every option of the call as a JSON object, the seed included (see `CallRecord.json`).
    var options: String = "{}"
    /// The outputs: one per sample, one per option scored, one for generate and score.
    var outputs: [CallOutput] = []
    /// Kind-specific results as a JSON object or nil (choose: the chosen option; score: sum and mean).
    var result: String? = nil
    /// When the call started.
    var started: Date
    /// How long it took, in seconds.
    var seconds: Double
    /// The error the call ended with, or nil when it succeeded.
    var error: String? = nil

    init(kind: String, backend: String = "local", model: String, modelSHA256: String? = nil, prompt: String,
         promptIDs: [Int32]? = nil, options: String = "{}", outputs: [CallOutput] = [], result: String? = nil,
         started: Date, seconds: Double, error: String? = nil) {
        self.kind = kind; self.backend = backend; self.model = model; self.modelSHA256 = modelSHA256
        self.prompt = prompt; self.promptIDs = promptIDs; self.options = options; self.outputs = outputs
        self.result = result; self.started = started; self.seconds = seconds; self.error = error
    }

    /// `value` as compact JSON text with sorted keys ("null" for what JSONSerialization cannot write).
    static func json(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject([value]),
              let d = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return "null" }
        return String(decoding: d, as: UTF8.self)
    }
}

/// One output of a call: generated text (or a scored continuation) and what the backend said about it.
struct CallOutput: Sendable, Equatable {
    /// The generated text, or the continuation / option that was scored.
    var text: String
    /// Its token ids, when known.
    var ids: [Int32]? = nil
    /// Why generation ended ("stop", "length", "eos", "cancelled"); nil for scoring.
    var finish: String? = nil
    /// The log-probability of each token, when known.
    var logprobs: [Double]? = nil
    /// The top alternatives per token as JSON (`[[{"id":..,"piece":..,"logprob":..}, ...], ...]`), when asked.
    var top: String? = nil
    /// Tokens used: prompt, completion, and prompt tokens served from a cache.
    var usage: CallUsage? = nil

    init(text: String, ids: [Int32]? = nil, finish: String? = nil, logprobs: [Double]? = nil, top: String? = nil,
         usage: CallUsage? = nil) {
        self.text = text; self.ids = ids; self.finish = finish; self.logprobs = logprobs; self.top = top; self.usage = usage
    }
}

/// Token counts of one output.
struct CallUsage: Sendable, Equatable {
    var prompt: Int
    var completion: Int
    var cached: Int = 0
    init(prompt: Int, completion: Int, cached: Int = 0) { self.prompt = prompt; self.completion = completion; self.cached = cached }
}

/// Where a host's call records go (the run store); the host holds at most one.
protocol CallRecorder: AnyObject {
    /// Writes `record` with the host's current labels; returns the call's id, or nil when it was not written.
    func record(_ record: CallRecord, labels: CallLabels) -> Int64?
}

/// What a script attached to the calls that follow (`lm.store.label`): experiment, item, strategy, injected
/// strings, and free labels.
struct CallLabels: Sendable, Equatable {
    var experiment: String? = nil
    var item: String? = nil
    var strategy: String? = nil
    var injected: [String] = []
    /// Other labels, name to value.
    var extra: [String: String] = [:]
}
