// Reading the run store back: runs, calls with their outputs and labels (by id, run, experiment, item, strategy,
// kind, or a full-text search), for `lm.store.calls`, `refrain log` and `refrain replay`.
import Foundation

/// A call as the store holds it.
struct StoredCall {
    let id: Int64
    let run: Int64
    var record: CallRecord
    var labels: CallLabels
}

/// A run as the store holds it, with its number of calls.
struct StoredRun {
    let id: Int64
    let started: Date
    let script: String?
    let args: [String]
    let engine: String
    let host: String
    let pid: Int64
    let calls: Int
    let experiments: [String]
}

/// Which calls to read (every field that is set must match).
struct CallFilter {
    var id: Int64?
    var run: Int64?
    var experiment: String?
    var item: String?
    var strategy: String?
    var kind: String?
    /// An FTS5 query over prompts and outputs.
    var search: String?
    /// At most this many, the newest first when set, else every match oldest first.
    var limit: Int?
    /// Only the calls of this sandbox: of run `run`, or of any run sandboxed to `folder` (when not "").
    var sandbox: (run: Int64, folder: String)?
}

extension RunStore {
    /// Decodes JSON text (nil for NULL or bad JSON).
    static func decode(_ v: SQLValue) -> Any? {
        guard let s = v.string, let d = s.data(using: .utf8) else { return nil }
        return try? JSONSerialization.jsonObject(with: d, options: [.fragmentsAllowed])
    }

    static func int32s(_ v: SQLValue) -> [Int32]? { (decode(v) as? [NSNumber])?.map { $0.int32Value } }

    /// The calls `filter` selects, with their outputs.
    func calls(_ filter: CallFilter) throws -> [StoredCall] {
        var conditions: [String] = [], values: [SQLValue] = []
        func match(_ column: String, _ v: SQLValue?) {
            guard let v else { return }
            conditions.append("c.\(column) = ?"); values.append(v)
        }
        match("id", filter.id.map { .integer($0) })
        match("run", filter.run.map { .integer($0) })
        match("experiment", filter.experiment.map { .text($0) })
        match("item", filter.item.map { .text($0) })
        match("strategy", filter.strategy.map { .text($0) })
        match("kind", filter.kind.map { .text($0) })
        if let q = filter.search {
            conditions.append("c.id IN (SELECT rowid FROM search WHERE search MATCH ?)"); values.append(.text(q))
        }
        if let sb = filter.sandbox {
            conditions.append(RunStore.own("c.run")); values += [.integer(sb.run), .text(sb.folder), .text(sb.folder)]
        }
        var sql = """
            SELECT c.id, c.run, c.kind, c.backend, c.model, c.model_sha256, c.prompt, c.prompt_ids, c.options, c.result,
                   c.started, c.seconds, c.error, c.experiment, c.item, c.strategy, c.injected, c.labels FROM calls c
            """
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        if let n = filter.limit {
            sql += " ORDER BY c.id DESC LIMIT \(max(n, 0))"
        } else {
            sql += " ORDER BY c.id"
        }
        var out: [StoredCall] = []
        for row in try db.query(sql, values) {
            let id = row[0].int!
            var r = CallRecord(kind: row[2].string ?? "", backend: row[3].string ?? "", model: row[4].string ?? "",
                               modelSHA256: row[5].string, prompt: row[6].string ?? "", promptIDs: RunStore.int32s(row[7]),
                               options: row[8].string ?? "{}", result: row[9].string,
                               started: Date(timeIntervalSince1970: row[10].double ?? 0), seconds: row[11].double ?? 0,
                               error: row[12].string)
            r.outputs = try outputs(call: id)
            let labels = CallLabels(experiment: row[13].string, item: row[14].string, strategy: row[15].string,
                                    injected: RunStore.decode(row[16]) as? [String] ?? [],
                                    extra: RunStore.decode(row[17]) as? [String: String] ?? [:])
            out.append(StoredCall(id: id, run: row[1].int!, record: r, labels: labels))
        }
        if filter.limit != nil { out.reverse() }
        return out
    }

    private func outputs(call: Int64) throws -> [CallOutput] {
        try db.query("""
            SELECT text, ids, finish, logprobs, top, prompt_tokens, completion_tokens, cached_tokens
            FROM outputs WHERE call = ? ORDER BY n
            """, [.integer(call)]).map { row in
            var usage: CallUsage? = nil
            if let p = row[5].int, let c = row[6].int { usage = CallUsage(prompt: Int(p), completion: Int(c), cached: Int(row[7].int ?? 0)) }
            return CallOutput(text: row[0].string ?? "", ids: RunStore.int32s(row[1]), finish: row[2].string,
                              logprobs: (RunStore.decode(row[3]) as? [NSNumber])?.map(\.doubleValue), top: row[4].string,
                              usage: usage)
        }
    }

    /// Runs, newest last: all, or those with a call in `experiment`, at most `limit` (the newest).
    func runs(experiment: String? = nil, limit: Int? = nil, id: Int64? = nil) throws -> [StoredRun] {
        var sql = """
            SELECT r.id, r.started, r.script, r.args, r.engine, r.host, r.pid,
                   (SELECT count(*) FROM calls c WHERE c.run = r.id),
                   (SELECT group_concat(DISTINCT c.experiment) FROM calls c WHERE c.run = r.id)
            FROM runs r
            """
        var values: [SQLValue] = []
        if let id { sql += " WHERE r.id = ?"; values.append(.integer(id)) } else if let e = experiment {
            sql += " WHERE r.id IN (SELECT run FROM calls WHERE experiment = ?)"; values.append(.text(e))
        }
        sql += " ORDER BY r.id DESC"
        if let limit { sql += " LIMIT \(max(limit, 0))" }
        return try db.query(sql, values).reversed().map { row in
            StoredRun(id: row[0].int!, started: Date(timeIntervalSince1970: row[1].double ?? 0), script: row[2].string,
                      args: RunStore.decode(row[3]) as? [String] ?? [], engine: row[4].string ?? "", host: row[5].string ?? "",
                      pid: row[6].int ?? 0, calls: Int(row[7].int ?? 0),
                      experiments: row[8].string.map { $0.split(separator: ",").map(String.init) } ?? [])
        }
    }
}

extension StoredCall {
    /// The call as one JSON object (what `refrain log export --format jsonl` writes a line of, and
    /// `lm.store.calls` returns as tables): JSON columns decoded, times as Unix seconds.
    var jsonObject: [String: Any] {
        func parsed(_ s: String?) -> Any { s.flatMap { RunStore.decode(.text($0)) } ?? NSNull() }
        let r = record
        var o: [String: Any] = ["id": id, "run": run, "kind": r.kind, "backend": r.backend, "model": r.model,
                                "prompt": r.prompt, "options": parsed(r.options), "started": r.started.timeIntervalSince1970,
                                "seconds": r.seconds, "injected": labels.injected, "labels": labels.extra]
        o["model_sha256"] = r.modelSHA256 ?? NSNull()
        o["prompt_ids"] = r.promptIDs.map { $0.map(Int.init) } ?? NSNull()
        o["result"] = parsed(r.result)
        o["error"] = r.error ?? NSNull()
        o["experiment"] = labels.experiment ?? NSNull()
        o["item"] = labels.item ?? NSNull()
        o["strategy"] = labels.strategy ?? NSNull()
        o["outputs"] = r.outputs.map { out -> [String: Any] in
            var x: [String: Any] = ["text": out.text]
            x["ids"] = out.ids.map { $0.map(Int.init) } ?? NSNull()
            x["finish"] = out.finish ?? NSNull()
            x["logprobs"] = out.logprobs ?? NSNull()
            x["top"] = parsed(out.top)
            x["usage"] = out.usage.map { ["prompt": $0.prompt, "completion": $0.completion, "cached": $0.cached] } ?? NSNull()
            return x
        }
        return o
    }
}
