// The run store: an SQLite database (WAL mode) holding every run (one refrain process), every model call it made,
// the calls' outputs, and a full-text index over prompts and outputs. Each call is written in one transaction, so a
// process killed at any point loses at most the call in flight; several processes may write at once (writers wait
// for each other's lock up to the busy timeout).
import Foundation

/// A run store database.
final class RunStore {
    /// The schema this code writes; an older store is upgraded, a newer one refused.
    static let schemaVersion = 1

    let db: SQLiteDatabase
    var path: String { db.path }

    /// The store's path: `REFRAIN_STORE` when it names a file, else `$REFRAIN_HOME/runs.sqlite`; nil when
    /// `REFRAIN_STORE=0` turns the store off.
    static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let s = environment["REFRAIN_STORE"], !s.isEmpty {
            return ["0", "off", "no", "false"].contains(s.lowercased()) ? nil : s
        }
        return RefrainHome.path(environment) + "/runs.sqlite"
    }

    /// Opens (creating) the store at `path`, its folder included.
    init(path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON")
        try migrate()
        try db.execute(RunStore.sandboxSchema)
    }

    /// The runs made under `--sandbox`, with their folder ("" for `--sandbox` without one). Added to version 1
    /// without a version change (older refrains ignore the table, and their runs count as not sandboxed): what a
    /// sandboxed script may label, read and keep results under is decided by it (LmStore.swift).
    static let sandboxSchema = """
    CREATE TABLE IF NOT EXISTS sandboxed_runs (
        run INTEGER PRIMARY KEY REFERENCES runs(id),
        folder TEXT NOT NULL
    );
    """

    private func migrate() throws {
        let version = Int(try db.query("PRAGMA user_version").first?.first?.int ?? 0)
        if version > RunStore.schemaVersion {
            throw SQLiteError(description: "\(path): store schema version \(version) is newer than this refrain's (\(RunStore.schemaVersion))")
        }
        if version == RunStore.schemaVersion { return }
        try db.transaction {
            // Another process may have created it while this one waited for the lock.
            if Int(try db.query("PRAGMA user_version").first?.first?.int ?? 0) == RunStore.schemaVersion { return }
            try db.execute(RunStore.schema)
            try db.execute("PRAGMA user_version = \(RunStore.schemaVersion)")
        }
    }

    /// Version 1. JSON columns: runs.args (list of strings), calls.prompt_ids, outputs.ids, outputs.logprobs (lists),
    /// calls.options, calls.result, calls.labels (objects), calls.injected (list of strings), outputs.top.
    static let schema = """
    CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY,
        started REAL NOT NULL,          -- Unix time, seconds
        script TEXT,                    -- the script file, "-e", "stdin" or "repl"
        args TEXT NOT NULL DEFAULT '[]',
        engine TEXT NOT NULL,           -- refrain --version
        host TEXT NOT NULL,             -- host name
        pid INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS calls (
        id INTEGER PRIMARY KEY,
        run INTEGER NOT NULL REFERENCES runs(id),
        kind TEXT NOT NULL,             -- generate, sample, score, choose, state.generate, ...
        backend TEXT NOT NULL,          -- "local" or the server's URL
        model TEXT NOT NULL,
        model_sha256 TEXT,
        prompt TEXT NOT NULL,
        prompt_ids TEXT,
        options TEXT NOT NULL,
        result TEXT,
        started REAL NOT NULL,
        seconds REAL NOT NULL,
        error TEXT,
        experiment TEXT,
        item TEXT,
        strategy TEXT,
        injected TEXT NOT NULL DEFAULT '[]',
        labels TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX IF NOT EXISTS calls_run ON calls(run);
    CREATE INDEX IF NOT EXISTS calls_experiment ON calls(experiment, item, strategy);
    CREATE TABLE IF NOT EXISTS outputs (
        call INTEGER NOT NULL REFERENCES calls(id),
        n INTEGER NOT NULL,             -- 1-based
        text TEXT NOT NULL,
        ids TEXT,
        finish TEXT,
        logprobs TEXT,
        top TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cached_tokens INTEGER,
        PRIMARY KEY (call, n)
    );
    CREATE TABLE IF NOT EXISTS model_files (
        path TEXT NOT NULL, size INTEGER NOT NULL, mtime REAL NOT NULL, sha256 TEXT NOT NULL,
        PRIMARY KEY (path, size, mtime)
    );
    CREATE TABLE IF NOT EXISTS results (   -- one finished (item, strategy) of an experiment, as the runner wrote it
        experiment TEXT NOT NULL,
        item TEXT NOT NULL,
        strategy TEXT NOT NULL,
        run INTEGER REFERENCES runs(id),
        data TEXT NOT NULL,             -- the result line (JSON)
        written REAL NOT NULL,
        PRIMARY KEY (experiment, item, strategy)
    );
    CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(prompt, output);
    """

    // MARK: - Writing

    /// What a run row says about the process.
    struct RunInfo {
        var script: String?
        var args: [String] = []
        var engine: String
        /// The sandbox folder of a sandboxed run ("" for `--sandbox` without one); nil: not sandboxed.
        var sandbox: String? = nil
    }

    /// Adds a run row; returns its id.
    func addRun(_ info: RunInfo) throws -> Int64 {
        try db.transaction {
            try db.query("INSERT INTO runs(started, script, args, engine, host, pid) VALUES (?, ?, ?, ?, ?, ?)",
                         [.real(Date().timeIntervalSince1970), info.script.map { .text($0) } ?? .null,
                          .text(CallRecord.json(info.args)), .text(info.engine),
                          .text(ProcessInfo.processInfo.hostName), .integer(Int64(getpid()))])
            let id = db.lastInsertID
            if let folder = info.sandbox {
                try db.query("INSERT INTO sandboxed_runs(run, folder) VALUES (?, ?)", [.integer(id), .text(folder)])
            }
            return id
        }
    }

    /// Writes one call, its outputs and its search entry in one transaction; returns the call's id.
    func addCall(_ r: CallRecord, labels: CallLabels, run: Int64) throws -> Int64 {
        func opt(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
        func ids(_ v: [Int32]?) -> SQLValue { v.map { .text(CallRecord.json($0.map(Int.init))) } ?? .null }
        return try db.transaction {
            try db.query("""
                INSERT INTO calls(run, kind, backend, model, model_sha256, prompt, prompt_ids, options, result, started,
                                  seconds, error, experiment, item, strategy, injected, labels)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.integer(run), .text(r.kind), .text(r.backend), .text(r.model), opt(r.modelSHA256), .text(r.prompt),
                      ids(r.promptIDs), .text(r.options), opt(r.result), .real(r.started.timeIntervalSince1970),
                      .real(r.seconds), opt(r.error), opt(labels.experiment), opt(labels.item), opt(labels.strategy),
                      .text(CallRecord.json(labels.injected)), .text(CallRecord.json(labels.extra))])
            let id = db.lastInsertID
            for (i, o) in r.outputs.enumerated() {
                try db.query("""
                    INSERT INTO outputs(call, n, text, ids, finish, logprobs, top, prompt_tokens, completion_tokens,
                                        cached_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.integer(id), .integer(Int64(i + 1)), .text(o.text), ids(o.ids), opt(o.finish),
                          o.logprobs.map { .text(CallRecord.json($0)) } ?? .null, opt(o.top),
                          o.usage.map { .integer(Int64($0.prompt)) } ?? .null,
                          o.usage.map { .integer(Int64($0.completion)) } ?? .null,
                          o.usage.map { .integer(Int64($0.cached)) } ?? .null])
            }
            try db.query("INSERT INTO search(rowid, prompt, output) VALUES (?, ?, ?)",
                         [.integer(id), .text(r.prompt), .text(r.outputs.map(\.text).joined(separator: "\n"))])
            return id
        }
    }

    /// Keeps one experiment result (replacing an earlier one for the same item and strategy).
    func putResult(experiment: String, item: String, strategy: String, data: String, run: Int64?) throws {
        _ = try db.transaction {
            try db.query("INSERT OR REPLACE INTO results(experiment, item, strategy, run, data, written) VALUES (?, ?, ?, ?, ?, ?)",
                         [.text(experiment), .text(item), .text(strategy), run.map { .integer($0) } ?? .null, .text(data),
                          .real(Date().timeIntervalSince1970)])
        }
    }

    /// An experiment's results in the order they were written: item, strategy, data (the line), run, the number
    /// of calls the store holds under the result's labels (a result with none was not made by its calls), and the
    /// sandbox folder of the run that wrote it ("" for `--sandbox` without one; nil: not sandboxed).
    func results(experiment: String) throws -> [(item: String, strategy: String, data: String, run: Int64?, calls: Int, sandbox: String?)] {
        try db.query("""
            SELECT r.item, r.strategy, r.data, r.run,
                   (SELECT COUNT(*) FROM calls c WHERE c.experiment = r.experiment AND c.item = r.item AND c.strategy = r.strategy),
                   s.folder
            FROM results r LEFT JOIN sandboxed_runs s ON s.run = r.run WHERE r.experiment = ? ORDER BY r.written, r.rowid
            """, [.text(experiment)]).map { ($0[0].string ?? "", $0[1].string ?? "", $0[2].string ?? "", $0[3].int, Int($0[4].int ?? 0), $0[5].string) }
    }

    /// The SQL condition "run ? belongs to the sandbox": the run itself, or (with a folder) any run sandboxed to
    /// the same folder. Values: run, folder, folder.
    static let ownRun = "(%@ = ? OR (? != '' AND %@ IN (SELECT run FROM sandboxed_runs WHERE folder = ?)))"

    static func own(_ column: String) -> String {
        ownRun.replacingOccurrences(of: "%@", with: column)
    }

    /// How many calls and results of `experiment` come from runs that are not this sandbox's (`run`, `folder`):
    /// a sandboxed script may use only an experiment that none has.
    func foreignUse(experiment: String, run: Int64, folder: String) throws -> Int {
        let v: [SQLValue] = [.text(experiment), .integer(run), .text(folder), .text(folder)]
        let calls = try db.query("SELECT COUNT(*) FROM calls WHERE experiment = ? AND NOT \(RunStore.own("run"))", v).first?.first?.int ?? 0
        let results = try db.query("SELECT COUNT(*) FROM results WHERE experiment = ? AND (run IS NULL OR NOT \(RunStore.own("run")))", v).first?.first?.int ?? 0
        return Int(calls + results)
    }

    /// How many calls run `run` made under the labels experiment, item, strategy.
    func callCount(run: Int64, experiment: String, item: String, strategy: String) throws -> Int {
        Int(try db.query("SELECT COUNT(*) FROM calls WHERE run = ? AND experiment = ? AND item = ? AND strategy = ?",
                         [.integer(run), .text(experiment), .text(item), .text(strategy)]).first?.first?.int ?? 0)
    }

    /// The SHA-256 of the model file at `path`, from the store's cache when the file's size and modification
    /// time match, else computed (once: it reads the whole file) and cached.
    func modelSHA256(path: String) -> String? {
        guard let a = try? FileManager.default.attributesOfItem(atPath: path),
              let size = (a[.size] as? NSNumber)?.int64Value,
              let mtime = (a[.modificationDate] as? Date)?.timeIntervalSince1970 else { return nil }
        let key: [SQLValue] = [.text(path), .integer(size), .real(mtime)]
        if let s = try? db.query("SELECT sha256 FROM model_files WHERE path = ? AND size = ? AND mtime = ?", key).first?.first?.string {
            return s
        }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return nil }
        let sha = SHA256.hex(data)
        _ = try? db.query("INSERT OR REPLACE INTO model_files(path, size, mtime, sha256) VALUES (?, ?, ?, ?)", key + [.text(sha)])
        return sha
    }
}

/// A host's recorder: the store (opened at the first call, so that a script that calls no model leaves no trace),
/// this process's run (its row made then too), and the model digests.
final class StoreSession: CallRecorder {
    let path: String
    let info: RunStore.RunInfo
    private var opened: RunStore?
    /// Whether calls are recorded now (`lm.store.enabled(false)` pauses).
    var enabled = true
    /// The id of the last call this session recorded.
    private(set) var lastCall: Int64?
    private var runID: Int64?
    private var digests: [String: String] = [:]
    private var warned = false

    init(path: String, info: RunStore.RunInfo) {
        self.path = path
        self.info = info
    }

    /// The store, opened (and created) on first use.
    func store() throws -> RunStore {
        if let opened { return opened }
        let s = try RunStore(path: path)
        opened = s
        return s
    }

    /// This process's run id, making its row when there is none yet.
    func run() throws -> Int64 {
        if let runID { return runID }
        let id = try store().addRun(info)
        runID = id
        return id
    }

    func record(_ record: CallRecord, labels: CallLabels) -> Int64? {
        guard enabled else { return nil }
        var r = record
        // Opening a store that another process is creating or switching to WAL at that moment can fail at once
        // (SQLite does not always wait on its busy handler there); so a failed write is tried twice more after a
        // short pause, before the warning. Once warned, a broken store costs no pauses.
        var failure: Error?
        for attempt in 0..<(warned ? 1 : 3) {
            if attempt > 0 { usleep(UInt32(100_000 * attempt)) }
            do {
                let store = try store()
                if r.backend == "local" && r.modelSHA256 == nil {
                    if let d = digests[r.model] { r.modelSHA256 = d } else if let d = store.modelSHA256(path: r.model) {
                        digests[r.model] = d
                        r.modelSHA256 = d
                    }
                }
                let id = try store.addCall(r, labels: labels, run: try run())
                lastCall = id
                return id
            } catch {
                failure = error
            }
        }
        // A store that cannot be written must not stop the work: say so once.
        if !warned, let failure {
            warned = true
            FileHandle.standardError.write(Data("refrain: warning: the run store did not record a call: \(failure)\n".utf8))
        }
        return nil
    }
}
