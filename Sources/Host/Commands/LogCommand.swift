// `refrain log` (runs, calls, full-text search, one call in full, a run exported as JSONL or CSV) and
// `refrain replay CALL` (a local call run again with the same model, options and seed, compared token for token).
import Engine
import Foundation

/// A problem `refrain log` or `refrain replay` found (not a usage mistake): one line, exit status 2, so that
/// replay's 1 keeps meaning "did not reproduce".
struct StoreCommandError: Error, CustomStringConvertible {
    let description: String
}

/// The store a command reads: `--store PATH`, else REFRAIN_STORE / $REFRAIN_HOME/runs.sqlite; it must exist.
func openStoreForReading(_ store: String?) throws -> RunStore {
    guard let path = store ?? RunStore.defaultPath() else {
        throw StoreCommandError(description: "the run store is off (REFRAIN_STORE=0); give --store PATH")
    }
    guard FileManager.default.fileExists(atPath: path) else { throw StoreCommandError(description: "no run store at \(path)") }
    return try RunStore(path: path)
}

func callID(_ s: String?, _ what: String) throws -> Int64 {
    guard let s else { throw UsageError(description: "\(what) needs a call id (refrain log lists them)") }
    guard let id = Int64(s), id > 0 else { throw UsageError(description: "'\(s)' is not a call id") }
    return id
}

/// One line of text, cut to `n` characters, with newlines shown as ⏎.
func snippet(_ s: String, _ n: Int) -> String {
    let flat = s.replacingOccurrences(of: "\n", with: "⏎")
    return flat.count <= n ? flat : String(flat.prefix(n - 1)) + "…"
}

func timestamp(_ d: Date) -> String {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return f.string(from: d)
}

func logCommand(_ o: LogCommand) throws {
    let store = try openStoreForReading(o.store)
    let sub = o.words.first
    switch sub {
    case nil where o.search == nil:
        let runs = try store.runs(experiment: o.experiment, limit: o.limit ?? 20)
        if runs.isEmpty { print("no runs in \(store.path)"); return }
        print("   RUN  STARTED (UTC)        CALLS  SCRIPT")
        for r in runs {
            var line = String(format: "%6lld  %@  %5d  ", r.id, timestamp(r.started), r.calls)
            line += snippet(([r.script ?? "?"] + r.args).joined(separator: " "), 72)
            if !r.experiments.isEmpty { line += "  [" + r.experiments.joined(separator: ", ") + "]" }
            print(line)
        }
    case nil, "calls":
        var f = CallFilter()
        f.search = o.search
        f.run = try o.runID.map { try callID($0, "--run") }
        f.experiment = o.experiment; f.item = o.item; f.strategy = o.strategy
        f.kind = o.kind
        f.limit = o.limit ?? 50
        let calls: [StoredCall]
        do { calls = try store.calls(f) } catch let e as SQLiteError where f.search != nil {
            throw UsageError(description: "bad search '\(f.search!)': \(e.description.components(separatedBy: ": ").dropFirst().first ?? e.description)")
        }
        if calls.isEmpty { print("no calls match"); return }
        print("  CALL    RUN  KIND            ITEM/STRATEGY             PROMPT → OUTPUT")
        for c in calls {
            let labels = [c.labels.item, c.labels.strategy].compactMap { $0 }.joined(separator: "/")
            let out = c.record.error.map { "error: " + $0 } ?? c.record.outputs.first?.text ?? ""
            let line = String(format: "%6lld %6lld  ", c.id, c.run) + c.record.kind.padding(toLength: 14, withPad: " ", startingAt: 0)
                + "  " + snippet(labels, 24).padding(toLength: 24, withPad: " ", startingAt: 0)
                + "  " + snippet(c.record.prompt, 40) + " → " + snippet(out, 40)
            print(line)
        }
    case "show":
        let id = try callID(o.words.dropFirst().first, "log show")
        guard let c = try store.calls(CallFilter(id: id)).first else { throw StoreCommandError(description: "no call \(id) in \(store.path)") }
        if o.json { printJSON(c.jsonObject); return }
        printCall(c)
    case "export":
        var f = CallFilter()
        if let r = o.words.dropFirst().first { f.run = try callID(r, "log export") } else if let e = o.experiment {
            f.experiment = e
        } else { throw UsageError(description: "log export needs a run id or --experiment NAME") }
        if let r = f.run, try store.runs(id: r).isEmpty { throw StoreCommandError(description: "no run \(r) in \(store.path)") }
        let format = o.format
        let calls = try store.calls(f)
        let text: String
        switch format {
        case "jsonl": text = calls.map { jsonLine($0.jsonObject) + "\n" }.joined()
        case "csv": text = csvExport(calls)
        default: throw UsageError(description: "--format expects jsonl or csv, got '\(format)'")
        }
        if let out = o.output {
            try Data(text.utf8).write(to: URL(fileURLWithPath: out))
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    default:
        throw UsageError(description: "unknown log command '\(sub!)' (refrain log --help)")
    }
}

func jsonLine(_ obj: Any) -> String {
    let data = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
}

/// `refrain log show`: the call's fields, then each output.
func printCall(_ c: StoredCall) {
    let r = c.record
    print("call \(c.id)  run \(c.run)  \(r.kind)  \(timestamp(r.started)) UTC  \(String(format: "%.3f", r.seconds)) s")
    print("model: \(r.model)  (\(r.backend)\(r.modelSHA256.map { ", sha256 " + $0 } ?? ""))")
    let labels = [("experiment", c.labels.experiment), ("item", c.labels.item), ("strategy", c.labels.strategy)]
        .compactMap { k, v in v.map { "\(k)=\($0)" } } + c.labels.extra.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    if !labels.isEmpty { print("labels: " + labels.joined(separator: "  ")) }
    for s in c.labels.injected { print("injected: \(s.debugDescription)") }
    print("options: \(r.options)")
    if let res = r.result { print("result: \(res)") }
    if let e = r.error { print("error: \(e)") }
    print("prompt (\(r.promptIDs?.count ?? 0) tokens):\n" + r.prompt.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n"))
    for (i, out) in r.outputs.enumerated() {
        var head = "output \(i + 1)"
        if let f = out.finish { head += " (\(f))" }
        if let ids = out.ids { head += ", \(ids.count) tokens" }
        if let lp = out.logprobs, !lp.isEmpty { head += String(format: ", logprob sum %.4f", lp.reduce(0, +)) }
        print(head + ":\n" + out.text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n"))
    }
}

/// One CSV row per output (a call without outputs, a failed one, gives one row with an empty output).
func csvExport(_ calls: [StoredCall]) -> String {
    let header = ["call", "run", "n", "kind", "backend", "model", "model_sha256", "experiment", "item", "strategy", "injected",
                  "started", "seconds", "error", "options", "prompt", "output", "finish", "completion_tokens", "logprob_sum"]
    func field(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
    var rows = [header.joined(separator: ",")]
    for c in calls {
        let r = c.record
        let outs: [CallOutput?] = r.outputs.isEmpty ? [nil] : r.outputs.map { $0 }
        for (i, out) in outs.enumerated() {
            var row: [String] = [String(c.id), String(c.run), out == nil ? "" : String(i + 1), r.kind, r.backend, r.model]
            row += [r.modelSHA256 ?? "", c.labels.experiment ?? "", c.labels.item ?? "", c.labels.strategy ?? ""]
            row += [CallRecord.json(c.labels.injected), String(r.started.timeIntervalSince1970), String(r.seconds)]
            row += [r.error ?? "", r.options, r.prompt, out?.text ?? "", out?.finish ?? ""]
            let tokens: String = out?.ids.map { String($0.count) } ?? ""
            let sum: String = out?.logprobs.map { String($0.reduce(0, +)) } ?? ""
            row += [tokens, sum]
            rows.append(row.map(field).joined(separator: ","))
        }
    }
    return rows.joined(separator: "\r\n") + "\r\n"
}

// MARK: - replay

/// `refrain replay CALL`: exit status 0 when the call reproduced token for token, 1 when not (with where it
/// first differs), 2 for errors (unknown call, a model file that changed, a server that cannot be reached). A remote
/// call is sent again to the server it went to.
func replayCommand(_ o: ReplayCommand) throws -> Int32 {
    let id = try callID(o.call, "replay")
    let store = try openStoreForReading(o.store)
    guard let c = try store.calls(CallFilter(id: id)).first else { throw StoreCommandError(description: "no call \(id) in \(store.path)") }
    let r = c.record
    guard r.error == nil else { throw StoreCommandError(description: "call \(id) ended in an error (\(r.error!)); there is nothing to compare") }
    guard r.backend == "local" else { return try replayRemote(r, id: id) }
    guard FileManager.default.fileExists(atPath: r.model) else { throw StoreCommandError(description: "call \(id): the model file \(r.model) is gone") }
    if let want = r.modelSHA256, let have = store.modelSHA256(path: r.model), want != have {
        throw StoreCommandError(description: "call \(id): model file changed: sha256 mismatch for \(r.model) (recorded \(want.prefix(12))…, now \(have.prefix(12))…)")
    }
    guard let prompt = r.promptIDs else { throw StoreCommandError(description: "call \(id) has no prompt ids to replay") }
    let fields = RunStore.decode(.text(r.options)) as? [String: Any] ?? [:]
    if fields["intervene"] != nil {
        throw StoreCommandError(description: "call \(id) ran under interventions (intervene: steering, ablation or patching); the store keeps their vectors by SHA-256 only, so replay cannot rebuild them")
    }
    let m = try LanguageModel(path: r.model, threads: try o.threads.map { try Threads.parse($0) } ?? Threads.cores)
    let options = GenerationOptions(recordFields: fields)
    if let p = fields["precision"] as? String, let v = Precision(rawValue: p) { m.transformer.precision = v }   // refrain generate/score
    var replayed: [[Int32]] = []
    var logprobs: [[Double]] = []
    switch r.kind {
    case "generate", "state.generate":
        replayed = [try m.generate(prompt, options: options) { _ in true }.ids]
    case "sample":
        let n = (fields["n"] as? NSNumber)?.intValue ?? r.outputs.count
        if fields["stream"] as? Bool == true {
            // Streamed samples ran one after another with seeds seed, seed+1, ...
            for i in 0..<n {
                var oi = options
                oi.sampling.seed = options.sampling.seed &+ UInt64(i)
                replayed.append(try m.generate(prompt, options: oi) { _ in true }.ids)
            }
        } else {
            replayed = try m.sample(prompt: prompt, n: n, options: options) { _, _ in .proceed }.map(\.ids)
        }
    case "score":
        let s = try m.score(prefix: prompt, continuation: r.outputs.first?.ids ?? [])
        replayed = [s.ids]; logprobs = [s.logprobs.map(Double.init)]
    case "choose":
        for out in r.outputs {
            let s = try m.score(prefix: prompt, continuation: out.ids ?? [])
            replayed.append(s.ids); logprobs.append(s.logprobs.map(Double.init))
        }
    default:
        throw StoreCommandError(description: "call \(id) is a '\(r.kind)' call, which replay does not know how to run")
    }
    if let d = firstDifference(recorded: r.outputs, replayed: replayed, logprobs: logprobs, model: m) {
        print("call \(id) (\(r.kind)) did not reproduce: \(d)")
        return 1
    }
    let tokens = replayed.reduce(0) { $0 + $1.count }
    let what = logprobs.isEmpty ? "\(tokens) tokens" : "\(tokens) tokens, log-probabilities within \(replayTolerance)"
    print("call \(id) (\(r.kind)) reproduced: \(replayed.count) output\(replayed.count == 1 ? "" : "s"), \(what)")
    return 0
}

/// Replays a remote call: the same request to the server and model it went to (through `lm.remote` in a Lua host
/// that records nothing), compared with the record by `lm.remote`'s replay. 0 reproduced, 1 not.
private func replayRemote(_ r: CallRecord, id: Int64) throws -> Int32 {
    var outputs: [[String: Any]] = []
    for o in r.outputs {
        var d: [String: Any] = ["text": o.text]
        if let ids = o.ids { d["ids"] = ids.map(Int.init) }
        if let lp = o.logprobs { d["logprobs"] = lp }
        outputs.append(d)
    }
    var rec: [String: Any] = ["kind": r.kind, "backend": r.backend, "model": r.model, "prompt": r.prompt,
                              "options": r.options, "outputs": outputs]
    if let ids = r.promptIDs { rec["prompt_ids"] = ids.map(Int.init) }
    let host = try LuaHost(modelPath: nil, threads: 1)
    let code = """
        local ok, msg = require("lm.remote")._replay(lm.json.decode(\(luaQuoted(CallRecord.json(rec)))), \(replayTolerance))
        print(("call \(id) (\(r.kind), remote) %s: %s"):format(ok and "reproduced" or "did not reproduce", msg))
        return ok
        """
    switch host.evaluate(code) {
    case .values(let v) where v.first == "true": return 0
    case .values: return 1
    case .error(let e):
        throw StoreCommandError(description: "call \(id): replay on \(r.backend) failed: " + (e.split(separator: "\n").first.map(String.init) ?? e))
    case .ok, .incomplete:
        throw StoreCommandError(description: "call \(id): replay on \(r.backend) returned nothing")
    }
}

/// `s` as a Lua string literal of the same bytes (quotes and backslashes escaped, other bytes outside printable ASCII
/// as three-digit decimal escapes).
private func luaQuoted(_ s: String) -> String {
    var out = "\""
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "\""): out += "\\\""
        case UInt8(ascii: "\\"): out += "\\\\"
        case 32..<127: out.unicodeScalars.append(Unicode.Scalar(b))
        default: out += String(format: "\\%03d", Int(b))   // control bytes and UTF-8's bytes, as decimal escapes
        }
    }
    return out + "\""
}

/// How far a replayed log-probability may be from the recorded one (the engine's kernels are deterministic for a
/// given thread count; this allows for another count's summation order).
let replayTolerance = 1e-3

/// Where the replay first differs from the record, or nil when it does not.
func firstDifference(recorded: [CallOutput], replayed: [[Int32]], logprobs: [[Double]], model m: LanguageModel) -> String? {
    if recorded.count != replayed.count { return "\(recorded.count) outputs recorded, \(replayed.count) replayed" }
    func show(_ id: Int32) -> String { "\(id) \(String(decoding: m.tokenizer.piece(id, special: true), as: UTF8.self).debugDescription)" }
    for (i, (rec, rep)) in zip(recorded, replayed).enumerated() {
        let ids = rec.ids ?? []
        for k in 0..<max(ids.count, rep.count) {
            let a = k < ids.count ? show(ids[k]) : "(end)", b = k < rep.count ? show(rep[k]) : "(end)"
            if a != b { return "output \(i + 1), token \(k + 1): recorded \(a), replayed \(b)" }
        }
        if i < logprobs.count, let lp = rec.logprobs {
            for (k, (x, y)) in zip(lp, logprobs[i]).enumerated() where abs(x - y) > replayTolerance {
                return "output \(i + 1), token \(k + 1): log-probability recorded \(x), replayed \(y)"
            }
        }
    }
    return nil
}
