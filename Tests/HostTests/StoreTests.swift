// The run store: a call's record round-trips every field, the local calls are recorded with their labels and found
// by full-text search, two processes write one store at once, a run exported as JSONL reads back equal, and
// `refrain replay` reproduces a greedy and a seeded sampled call (and says where a changed record differs).
// Every test uses its own store file in a temporary folder, never the user's.
import Foundation
import XCTest
@testable import Host

final class StoreTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("refrain-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    var storePath: String { dir.appendingPathComponent("runs.sqlite").path }

    /// refrain with this test's store.
    func refrain(_ args: [String], env: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        try TestEnvironment.run(args, env: ["REFRAIN_STORE": storePath].merging(env) { $1 }, timeout: 240)
    }

    /// Runs Lua code on the test model, recording into this test's store; fails the test unless it exits 0.
    @discardableResult
    func lua(_ code: String) throws -> String {
        let r = try refrain(["--model", try TestEnvironment.modelPath(), "-e", code])
        XCTAssertEqual(r.status, 0, r.err)
        return r.out
    }

    func testCallRecordRoundTripsEveryField() throws {
        let store = try RunStore(path: storePath)
        let run = try store.addRun(RunStore.RunInfo(script: "x.lua", args: ["a", "b c"], engine: "refrain test"))
        var r = CallRecord(kind: "sample", backend: "http://127.0.0.1:8080/v1", model: "m.gguf", modelSHA256: String(repeating: "ab", count: 32),
                           prompt: "Q: 2+2?\nA:", promptIDs: [1, 42, 7], options: #"{"n":2,"seed":7,"stop":["\n"]}"#,
                           result: #"{"chosen":"4"}"#, started: Date(timeIntervalSince1970: 1_790_000_000.25), seconds: 0.125)
        r.outputs = [CallOutput(text: " 4", ids: [3, 4], finish: "stop", logprobs: [-0.5, -0.25],
                                top: #"[[{"id":3,"logprob":-0.5,"piece":" "}]]"#, usage: CallUsage(prompt: 3, completion: 2, cached: 1)),
                     CallOutput(text: " four é", ids: nil, finish: "length", logprobs: nil, top: nil, usage: nil)]
        let labels = CallLabels(experiment: "exp", item: "7", strategy: "echo", injected: ["Re-read: ", "x"], extra: ["cond": "b"])
        let id = try store.addCall(r, labels: labels, run: run)
        var failed = r
        failed.outputs = []; failed.error = "generate: empty prompt"; failed.result = nil; failed.promptIDs = nil; failed.modelSHA256 = nil
        let id2 = try store.addCall(failed, labels: CallLabels(), run: run)

        let back = try XCTUnwrap(try store.calls(CallFilter(id: id)).first)
        XCTAssertEqual(back.id, id); XCTAssertEqual(back.run, run)
        XCTAssertEqual(back.labels, labels)
        XCTAssertEqual(back.record.started.timeIntervalSince1970, r.started.timeIntervalSince1970, accuracy: 1e-6)
        var same = back.record
        same.started = r.started
        XCTAssertEqual(same, r)
        var f = try XCTUnwrap(try store.calls(CallFilter(id: id2)).first).record
        f.started = failed.started
        XCTAssertEqual(f, failed)
        let runs = try store.runs()
        XCTAssertEqual(runs.map(\.id), [run]); XCTAssertEqual(runs[0].args, ["a", "b c"]); XCTAssertEqual(runs[0].calls, 2)
        XCTAssertEqual(runs[0].script, "x.lua"); XCTAssertEqual(runs[0].engine, "refrain test")
        XCTAssertEqual(try store.calls(CallFilter(experiment: "exp", strategy: "echo")).map(\.id), [id])
        XCTAssertEqual(try store.calls(CallFilter(search: "four")).map(\.id), [id], "FTS over outputs")
        XCTAssertEqual(try store.calls(CallFilter(search: "2+2")).map(\.id).sorted(), [id, id2], "FTS over prompts")
        XCTAssertEqual(Int(try store.db.query("PRAGMA user_version")[0][0].int!), RunStore.schemaVersion)
        XCTAssertEqual(try store.db.query("PRAGMA journal_mode")[0][0].string, "wal")
    }

    /// The model digest the store keys replays on: FIPS 180-4's examples, and a file against sha256sum.
    func testSHA256KnownDigests() throws {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let bytes = Data((0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 7919 >> 3) })
        let file = dir.appendingPathComponent("blob")
        try bytes.write(to: file)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [file.path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(SHA256.hex(bytes), String(text.prefix(64)))
    }

    func testLocalCallsAreRecordedWithLabelsAndFoundBySearch() throws {
        let out = try lua("""
            lm.store.label{experiment = "e1", item = 5, strategy = "plain", cond = true}
            local g = lm.generate("The capital of France is", {max_tokens = 6, temperature = 0, logprobs = 2})
            local gid = lm.store.last()
            lm.store.with({strategy = "scored", injected = {"Think twice."}}, function()
              lm.score("The capital of France is", " Lutetia")
              lm.choose("2+2=", {"4", "5"})
            end)
            local sid = lm.store.last()
            local ok, err = pcall(lm.store.with, {strategy = "x"}, function() error({code = 7}) end)
            assert(not ok and err.code == 7, "with raises f's error object as it is")
            assert(lm.store.labels().strategy == "plain", "and restores the labels")
            local st = lm.model:state("Once upon a time")
            st:generate{max_tokens = 3, temperature = 0}
            lm.store.enabled(false)
            lm.generate("not recorded", {max_tokens = 2})
            lm.store.enabled(true)
            lm.store.label{}
            lm.sample("Zebras are", 2, {max_tokens = 4, seed = 3})
            local calls = lm.store.calls{run = lm.store.run()}
            print("n", #calls)
            for _, c in ipairs(calls) do print(c.kind, c.strategy, c.item, c.experiment, #c.outputs, c.injected[1], c.labels.cond) end
            local c = lm.store.calls{id = gid}[1]
            assert(c.outputs[1].text == g.text, "text")
            assert(#c.outputs[1].ids == #g.ids and c.outputs[1].ids[1] == g.ids[1], "ids")
            assert(math.abs(c.outputs[1].logprobs[1] - g.logprobs[1]) < 1e-6, "logprobs")
            assert(#c.outputs[1].top[1] == 2, "top-k kept")
            assert(c.options.seed == 0 and c.options.temperature == 0 and c.options.max_tokens == 6, "options")
            assert(#c.model_sha256 == 64 and c.model_sha256 == lm.model.info.sha256, "model sha256")
            assert(c.prompt_ids[1] ~= nil and c.outputs[1].finish == g.finish, "prompt ids, finish")
            assert(lm.store.calls{id = sid}[1].result.chosen == "4" or lm.store.calls{id = sid}[1].result.chosen == "5")
            print("search", #lm.store.calls{search = "Lutetia"}, #lm.store.calls{search = "Zebras"})
            print(lm.store.path())
            """)
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "n\t5", out)
        XCTAssertEqual(Array(lines.dropFirst().prefix(5)), [
            "generate\tplain\t5\te1\t1\tnil\ttrue",
            "score\tscored\t5\te1\t1\tThink twice.\ttrue",
            "choose\tscored\t5\te1\t2\tThink twice.\ttrue",
            "state.generate\tplain\t5\te1\t1\tnil\ttrue",
            "sample\tnil\tnil\tnil\t2\tnil\tnil",
        ], out)
        XCTAssertTrue(out.contains("search\t1\t1"), out)
        XCTAssertTrue(out.hasSuffix(storePath + "\n"), out)

        let search = try refrain(["log", "--search", "Lutetia"])
        XCTAssertEqual(search.status, 0, search.err)
        XCTAssertTrue(search.out.contains("score") && search.out.contains("5/scored"), search.out)
        let runs = try refrain(["log"])
        XCTAssertTrue(runs.out.contains("  5  -e ") && runs.out.contains("[e1]"), runs.out)
        let show = try refrain(["log", "show", "1"])
        XCTAssertEqual(show.status, 0, show.err)
        XCTAssertTrue(show.out.hasPrefix("call 1  run 1  generate"), show.out)
        XCTAssertTrue(show.out.contains("labels: experiment=e1  item=5  strategy=plain  cond=true"), show.out)
        let none = try refrain(["log", "show", "999"])
        XCTAssertEqual(none.status, 2)
        XCTAssertTrue(none.err.hasPrefix("refrain: error: no call 999 in "), none.err)
    }

    /// `refrain generate` and `refrain score` are runs of one call each, replayed like the others.
    func testCommandLineCallsAreRecorded() throws {
        let m = try TestEnvironment.modelPath()
        let g = try refrain(["generate", "--model", m, "--max-tokens", "6", "--temperature", "0.7", "--seed", "5", "Hello there"])
        XCTAssertEqual(g.status, 0, g.err)
        let s = try refrain(["score", "--model", m, "--prefix", "The sky is", "--continuation", " blue", "--json"])
        XCTAssertEqual(s.status, 0, s.err)
        let off = try refrain(["score", "--model", m, "--prefix", "x", "--continuation", " y", "--no-store"])
        XCTAssertEqual(off.status, 0, off.err)
        let store = try RunStore(path: storePath)
        XCTAssertEqual(try store.runs().map { $0.script ?? "" }, ["generate", "score"])
        let calls = try store.calls(CallFilter())
        XCTAssertEqual(calls.map(\.record.kind), ["generate", "score"])
        XCTAssertEqual(calls[0].record.outputs[0].text + "\n", String(g.out), "the text printed is the text recorded")
        let json = try JSONSerialization.jsonObject(with: Data(s.out.utf8)) as! [String: Any]
        XCTAssertEqual(calls[1].record.outputs[0].logprobs?.count, (json["logprobs"] as! [Double]).count)
        for id in ["1", "2"] {
            let r = try refrain(["replay", id])
            XCTAssertEqual(r.status, 0, r.out + r.err)
        }
    }

    func testTheStoreIsOffWithNoStoreOrZero() throws {
        let m = try TestEnvironment.modelPath()
        let code = "lm.generate('Hi', {max_tokens = 1}); print(lm.store.path(), lm.store.run(), lm.store.enabled())"
        let off = try refrain(["--model", m, "--no-store", "-e", code])
        XCTAssertEqual(off.out, "nil\tnil\tfalse\n", off.err)
        let zero = try refrain(["--model", m, "-e", code], env: ["REFRAIN_STORE": "0"])
        XCTAssertEqual(zero.out, "nil\tnil\tfalse\n", zero.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: storePath))
        let home = try refrain(["--model", m, "-e", "print(lm.store.path())"], env: ["REFRAIN_STORE": "", "REFRAIN_HOME": dir.path])
        XCTAssertEqual(home.out, dir.path + "/runs.sqlite\n")
    }

    func testTwoProcessesWriteOneStoreAtOnce() throws {
        let m = try TestEnvironment.modelPath()
        let code = "for i = 1, 25 do lm.score('Count: ' .. i, ' ' .. (i + 1)) end print(lm.store.run())"
        // Both started before either is waited for; their output goes to files (no pipes to drain).
        var children: [(Process, URL, URL)] = []
        for k in 0..<2 {
            let p = Process()
            p.executableURL = TestEnvironment.binary
            p.arguments = ["--model", m, "-e", code]
            p.environment = ProcessInfo.processInfo.environment.merging(["REFRAIN_STORE": storePath]) { $1 }
            let out = dir.appendingPathComponent("out\(k)"), err = dir.appendingPathComponent("err\(k)")
            FileManager.default.createFile(atPath: out.path, contents: nil)
            FileManager.default.createFile(atPath: err.path, contents: nil)
            p.standardOutput = try FileHandle(forWritingTo: out)
            p.standardError = try FileHandle(forWritingTo: err)
            p.standardInput = FileHandle.nullDevice
            try p.run()
            children.append((p, out, err))
        }
        var outs: [(Int32, String, String)] = []
        for (p, out, err) in children {
            p.waitUntilExit()
            outs.append((p.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8)))
        }
        let store = try RunStore(path: storePath)
        let runs = try store.runs()
        XCTAssertEqual(runs.count, 2)
        XCTAssertEqual(runs.map(\.calls), [25, 25], "standard error: " + outs.map { $0.2 }.joined(separator: " | "))
        XCTAssertEqual(Set(outs.map { $0.1.trimmingCharacters(in: .whitespacesAndNewlines) }), Set(runs.map { String($0.id) }))
        XCTAssertEqual(try store.calls(CallFilter()).count, 50)
    }

    func testExportRoundTrip() throws {
        try lua("""
            lm.store.label{experiment = "x", item = "i1", injected = "Hmm, "}
            lm.generate("Say \\"hi\\", then stop,\\nplease", {max_tokens = 5, temperature = 0})
            lm.sample("One, two,", 2, {max_tokens = 3, seed = 11, logprobs = 1})
            lm.choose("Yes or no?", {" yes", " no"})
            """)
        let jsonl = try refrain(["log", "export", "1", "--format", "jsonl"])
        XCTAssertEqual(jsonl.status, 0, jsonl.err)
        let exported = try jsonl.out.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! NSDictionary }
        let stored = try RunStore(path: storePath).calls(CallFilter(run: 1)).map { c -> NSDictionary in
            // Through JSON text and back, as the export went, so that numbers compare as the same kind.
            try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: c.jsonObject)) as! NSDictionary
        }
        XCTAssertEqual(exported.count, 3)
        XCTAssertEqual(exported, stored)
        XCTAssertEqual(exported[0]["injected"] as? [String], ["Hmm, "])
        XCTAssertEqual((exported[1]["outputs"] as? [Any])?.count, 2)
        let file = dir.appendingPathComponent("run1.csv").path
        let csv = try refrain(["log", "export", "1", "--format", "csv", "--output", file])
        XCTAssertEqual(csv.status, 0, csv.err)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("call,run,n,kind,backend,model,"), text)
        XCTAssertTrue(text.contains("\"Say \"\"hi\"\", then stop,\nplease\""), "quoted CSV field:\n" + text)
        XCTAssertEqual(text.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count, 1 + 1 + 2 + 2, "one row per output")
        let bad = try refrain(["log", "export", "9"])
        XCTAssertEqual(bad.status, 2); XCTAssertTrue(bad.err.contains("no run 9"), bad.err)
    }

    func testReplayReproducesGreedyAndSeededSamplesAndReportsChanges() throws {
        let out = try lua("""
            lm.generate("The quick brown fox", {max_tokens = 12, temperature = 0})
            print(lm.store.last())
            lm.sample("Once upon a time", 3, {max_tokens = 10, temperature = 0.9, seed = 42})
            print(lm.store.last())
            lm.score("The capital of France is", " Paris.")
            print(lm.store.last())
            """)
        let ids = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(ids, ["1", "2", "3"])
        for id in ids {
            let r = try refrain(["replay", id])
            XCTAssertEqual(r.status, 0, r.out + r.err)
            XCTAssertTrue(r.out.hasPrefix("call \(id) (") && r.out.contains(") reproduced: "), r.out)
        }
        let store = try RunStore(path: storePath)
        // A record whose third token is changed: not reproduced, and the line says where.
        try store.db.query("UPDATE outputs SET ids = json_set(ids, '$[2]', 0) WHERE call = 1")
        let changed = try refrain(["replay", "1"])
        XCTAssertEqual(changed.status, 1, changed.err)
        XCTAssertTrue(changed.out.hasPrefix("call 1 (generate) did not reproduce: output 1, token 3: recorded 0 "), changed.out)
        XCTAssertEqual(changed.out.split(separator: "\n").count, 1)
        try store.db.query("UPDATE calls SET model_sha256 = ? WHERE id = 2", [.text(String(repeating: "0", count: 64))])
        let sha = try refrain(["replay", "2"])
        XCTAssertEqual(sha.status, 2)
        XCTAssertTrue(sha.err.hasPrefix("refrain: error: call 2: model file changed: sha256 mismatch"), sha.err)
        let unknown = try refrain(["replay", "77"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.err.hasPrefix("refrain: error: no call 77 in "), unknown.err)
        for r in [sha, unknown] { XCTAssertEqual(r.err.split(separator: "\n").count, 1, "one line: " + r.err) }
    }
}
