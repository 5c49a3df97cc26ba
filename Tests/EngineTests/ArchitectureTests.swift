// The architectures no registry here carries real weights of (Llama 3 RoPE scaling, YaRN, linear scaling, Qwen3,
// Phi-3, Phi-4-mini's LongRoPE and partial rotary, Gemma 2, OLMo 2/3, Granite, SmolLM3), on random-weight files that
// Tests/tools/make_arch_models.py writes from a seed (setup.sh --llama-cpp puts them in $REFRAIN_HOME/arch-models)
// in F32 and each quant type llama-quantize makes of them, against llama.cpp's figures for the same bytes
// (Fixtures/arch/, Tests/tools/make_arch_references.py): log-probabilities within llama.cpp's own spread (the rule
// of ReferenceTests), top-1 agreement where llama.cpp's margin is clear, greedy continuations identical up to the
// first near-tie.
import Foundation
import XCTest
@testable import Engine

final class ArchitectureTests: XCTestCase {
    /// Greedy steps and top-1 positions closer than this (in logits) are near-ties, and closer than twice the
    /// largest move llama.cpp's own two readings of the file show (random weights quantized to 4 bits move a
    /// log-probability by up to half a nat): a margin is clear when llama.cpp's own spread cannot flip it.
    let minimumMargin = 0.5

    /// `$REFRAIN_HOME/arch-models`.
    static var directory: String {
        ((TestModels.directory as NSString).deletingLastPathComponent as NSString).appendingPathComponent("arch-models")
    }

    /// The fixture's files and the sha256 each was made from.
    func manifest() throws -> [String: String] {
        let data = try Data(contentsOf: try TestModels.fixture("arch/manifest.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: String]
    }

    /// The path of a generated model, checked against the sha256 its figures were made from.
    func modelPath(_ file: String, sha: String) throws -> String {
        let p = (Self.directory as NSString).appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: p) else {
            let message = "test model \(file) not found in \(Self.directory) (run ./setup.sh --llama-cpp, which makes them)"
            if ProcessInfo.processInfo.environment["REFRAIN_SKIP_MODEL_TESTS"] == "1" { throw XCTSkip(message) }
            throw TestModels.TestModelMissing(message: message)
        }
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        proc.arguments = [p]
        let pipe = Pipe()
        proc.standardOutput = pipe
        try proc.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        proc.waitUntilExit()
        let got = String(out.prefix(64))
        guard got == sha else {
            throw TestModels.TestModelMissing(message: "\(p) has sha256 \(got), but the figures in Fixtures/arch were made from \(sha): make the models and the figures again (Tests/tools/make_arch_models.py, make_arch_references.py)")
        }
        return p
    }

    func lines(_ file: String) throws -> [[String: Any]] {
        let url = try TestModels.fixture("arch/" + file.replacingOccurrences(of: ".gguf", with: ".jsonl"))
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    /// Every quant type of the models whose names start with `prefix`: logits, top-1 and greedy.
    func check(_ prefix: String, architecture: Architecture) throws {
        let files = try manifest().filter { $0.key.hasPrefix(prefix + ".") }.sorted { $0.key < $1.key }
        XCTAssertFalse(files.isEmpty, "no figures for \(prefix) in Fixtures/arch/manifest.json")
        for (file, sha) in files {
            let m = try LanguageModel(path: try modelPath(file, sha: sha), threads: 2)
            XCTAssertEqual(m.config.architecture, architecture, file)
            // llama-quantize substitutes a type it cannot use without a word: every matrix must be of the file's
            // named type (NAME.TYPE.gguf, made with --pure), or the figures would test another type.
            let typeName = String(file.dropLast(".gguf".count).split(separator: ".").last!)
            let matrices = m.file.tensors.filter { $0.dims.count >= 2 }
            XCTAssertFalse(matrices.isEmpty, file)
            for t in matrices {
                // llama.cpp never quantizes a router (ffn_gate_inp); MXFP4_MOE puts the experts in MXFP4, the rest
                // in Q8_0.
                let want = t.name.hasSuffix("ffn_gate_inp.weight") ? "F32"
                    : typeName == "MXFP4_MOE" ? (t.name.contains("_exps.") ? "MXFP4" : "Q8_0") : typeName
                if t.type.description != want { XCTFail("\(file): tensor \(t.name) is \(t.type), not \(want)") }
            }
            let V = m.config.vocabularySize
            var d: [Double] = [], a: [Double] = []
            var top1 = 0, top1Checked = 0, greedyTokens = 0, greedySame = 0
            let figures = try lines(file)
            var ownSpread = 0.0
            for line in figures {
                for ref in line["positions"] as! [[String: Any]] {
                    if let lp = ref["next_logprob"] as? Double, let alt = ref["next_logprob_alt"] as? Double {
                        ownSpread = max(ownSpread, abs(alt - lp))
                    }
                }
            }
            let margin = max(minimumMargin, 2 * ownSpread)
            for line in figures {
                let ids = (line["ids"] as! [Int]).map(Int32.init)
                let positions = line["positions"] as! [[String: Any]]
                let cache = m.transformer.makeCache(maxPositions: ids.count)
                let rows = m.transformer.forward(ids, cache: cache, logits: .all)
                rows.withUnsafeBufferPointer { b in
                    for (p, ref) in positions.enumerated() {
                        let row = UnsafeBufferPointer(rebasing: b[(p * V)..<((p + 1) * V)])
                        if let lp = ref["next_logprob"] as? Double, let alt = ref["next_logprob_alt"] as? Double {
                            d.append(abs(LogProbs.logProb(row, ids[p + 1]) - lp))
                            a.append(abs(alt - lp))
                        }
                        let top = ref["top"] as! [[Double]]
                        if top[0][1] - top[1][1] > margin {
                            top1Checked += 1
                            let mine = Int(LogProbs.argmax(row))
                            if mine == Int(top[0][0]) { top1 += 1 } else {
                                XCTFail("\(file): top-1 differs at position \(p): engine \(mine), llama.cpp \(Int(top[0][0])) (margin \(top[0][1] - top[1][1]))")
                            }
                        }
                    }
                }
                // Greedy, compared up to the first near-tie.
                let want = (line["greedy"] as! [Int]).map(Int32.init)
                let margins = line["margins"] as! [Double]
                let n = min(margins.firstIndex { $0 < margin } ?? want.count, want.count)
                var o = GenerationOptions()
                o.sampling = .greedy
                o.maxTokens = n
                let g = try m.generate(ids, options: o)
                let produced = g.ids + (g.endToken.map { [$0] } ?? [])
                greedyTokens += n
                if Array(produced.prefix(n)) == Array(want.prefix(n)) { greedySame += 1 } else {
                    XCTFail("\(file): greedy differs before the first near-tie (step \(n)):\n engine    \(Array(produced.prefix(n)))\n llama.cpp \(Array(want.prefix(n)))")
                }
            }
            let sd = spread(d), sa = spread(a)
            let limits = (1.5 * sa.median + 0.005, 1.5 * sa.p90 + 0.01, max(1.5, 2 * sa.max))
            print(String(format: "%@: %d positions; |engine - llama.cpp| median %.4f p90 %.4f max %.4f (limits %.4f %.4f %.4f); llama.cpp's own spread median %.4f p90 %.4f max %.4f; top-1 %d/%d and greedy %d prompts identical (%d tokens) at margin %.2f",
                         file, d.count, sd.median, sd.p90, sd.max, limits.0, limits.1, limits.2, sa.median, sa.p90, sa.max,
                         top1, top1Checked, greedySame, greedyTokens, margin))
            XCTAssertLessThanOrEqual(sd.median, limits.0, "\(file): median distance")
            XCTAssertLessThanOrEqual(sd.p90, limits.1, "\(file): 90th percentile distance")
            // A mixture of experts in a quantized file: a token whose router puts two experts within the
            // quantization noise of each other goes to different experts in two correct engines, a jump of several
            // nats that later positions inherit through attention (seen here: experts 2 and 3 of one token 0.0006
            // apart in probability, 3.8 nats at a later position; llama.cpp's own two readings of the MXFP4 file
            // differ by 3.4 nats when the router is made sharper). The median and 90th percentile hold it to
            // llama.cpp; the maximum is held only where weights are not quantized.
            let routingNoise = m.config.expertCount > 0 && !["F32", "F16", "BF16"].contains(typeName)
            if !routingNoise { XCTAssertLessThanOrEqual(sd.max, limits.2, "\(file): max distance") }
        }
    }

    func testLlama3RopeFreqs() throws { try check("llama3-tied", architecture: .llama) }
    func testLlamaLinearScaling() throws { try check("llama-linear", architecture: .llama) }
    func testLlamaYaRN() throws { try check("llama-yarn", architecture: .llama) }
    /// A llama file with a sliding window in its metadata (Mistral-style): full attention, as llama.cpp runs it.
    func testMistralStyleWindowIgnored() throws { try check("mistral-swa", architecture: .llama) }
    func testQwen3Tied() throws { try check("qwen3-tied", architecture: .qwen3) }
    func testQwen3Untied() throws { try check("qwen3-untied", architecture: .qwen3) }
    /// Qwen3-MoE: routing, renormalised expert weights; MXFP4 expert tensors in the MXFP4_MOE file.
    func testQwen3MoE() throws { try check("qwen3moe", architecture: .qwen3moe) }
    func testPhi3Mini() throws { try check("phi-mini", architecture: .phi3) }
    func testPhi4MiniLongRoPELong() throws { try check("phi4-mini-long", architecture: .phi3) }
    func testPhi4MiniLongRoPEShort() throws { try check("phi4-mini-short", architecture: .phi3) }
    func testGemma2() throws { try check("gemma2-a", architecture: .gemma2) }
    func testGemma2StrongSoftcap() throws { try check("gemma2-b", architecture: .gemma2) }
    func testOLMo2() throws { try check("olmo2", architecture: .olmo2) }
    func testOLMo3SlidingWindow() throws { try check("olmo3-swa", architecture: .olmo2) }
    func testGranite() throws { try check("granite", architecture: .granite) }
    func testSmolLM3() throws { try check("smollm3", architecture: .smollm3) }

    /// Llama.cpp's ids for every line of a tokenizer fixture, on one of the generated files.
    func checkTokenizer(_ file: String, _ fixture: String, lines expected: Int) throws {
        guard let sha = try manifest()[file] else {
            throw TestModels.TestModelMissing(message: "\(file) not in Fixtures/arch/manifest.json")
        }
        let m = try LanguageModel(path: try modelPath(file, sha: sha), threads: 1)
        let url = try TestModels.fixture("arch/" + fixture)
        var n = 0
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let text = o["text"] as! String, special = o["parse_special"] as! Bool
            let want = (o["ids"] as! [Int]).map(Int32.init)
            XCTAssertEqual(m.tokenizer.encode(text, addSpecial: false, parseSpecial: special), want,
                           "\(file): \(text.debugDescription) (parse_special \(special))")
            n += 1
        }
        XCTAssertEqual(n, expected, "\(fixture) lines")
    }

    /// Llama 3's pre-tokenizer (llama-bpe) on a real vocabulary.
    func testLlama3PreTokenizer() throws {
        try checkTokenizer("llama3-tied.F32.gguf", "tokenizer-llama-bpe.jsonl", lines: 20)
    }

    /// A model named Phi-3: its special tokens swallow the whitespace after them, except <unk>, <s>, <|endoftext|>.
    func testPhi3SpecialTokensStripWhitespace() throws {
        try checkTokenizer("phi3-names.F32.gguf", "tokenizer-phi3-names.jsonl", lines: 8)
        try check("phi3-names", architecture: .phi3)
    }
}
