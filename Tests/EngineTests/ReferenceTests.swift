// The engine against llama.cpp's own figures (Fixtures/<model>/, copied from the project's reference set):
// log-probabilities within llama.cpp's numerical spread, top-1 agreement where its margin is clear, greedy
// continuations identical up to the first near-tie, and the exact f32 path within 0.01 nats of the f32 reading.
import Foundation
import XCTest
@testable import Engine

/// One of the three reference models: its file, fixture folder and tie margin.
struct ReferenceModel {
    let file: String
    let fixture: String
    let margin: Double

    static let smollm2 = ReferenceModel(file: "SmolLM2-135M-Instruct.Q4_1.gguf", fixture: "smollm2-135m-instruct-q4_1", margin: 0.5)
    static let gemma3 = ReferenceModel(file: "gemma-3-270m-q4_k_m.gguf", fixture: "gemma-3-270m-q4_k_m", margin: 1.0)
    static let qwen2 = ReferenceModel(file: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", fixture: "qwen2.5-coder-0.5b-instruct-q4_k_m", margin: 0.5)
    static let qwen2Large = ReferenceModel(file: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", fixture: "qwen2.5-coder-1.5b-instruct-q4_k_m", margin: 0.5)

    func path() throws -> String { try TestModels.path(file) }

    /// Lines of one fixture file, parsed.
    func lines(_ name: String) throws -> [[String: Any]] {
        let url = try TestModels.fixture("\(fixture)/\(name)")
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }
}

/// median, 90th percentile and max of a sample.
func spread(_ xs: [Double]) -> (median: Double, p90: Double, max: Double) {
    let s = xs.sorted()
    func q(_ p: Double) -> Double {
        let r = p * Double(s.count - 1), lo = Int(r.rounded(.down)), hi = Int(r.rounded(.up))
        return s[lo] + (s[hi] - s[lo]) * (r - Double(lo))
    }
    return (q(0.5), q(0.9), s.last!)
}

final class ReferenceTests: XCTestCase {
    nonisolated(unsafe) static var cache: [String: LanguageModel] = [:]
    func model(_ r: ReferenceModel) throws -> LanguageModel {
        if let m = Self.cache[r.file] { return m }
        let m = try LanguageModel(path: try r.path(), threads: 2)
        Self.cache[r.file] = m
        return m
    }

    /// Logits rows at every position of `ids`, and the log-probability each row gives the next prompt token.
    func evaluate(_ m: LanguageModel, _ ids: [Int32], precision: Precision) -> (rows: [Float], next: [Double]) {
        m.transformer.precision = precision
        defer { m.transformer.precision = .quantized }
        let cache = m.transformer.makeCache(maxPositions: ids.count)
        let rows = m.transformer.forward(ids, cache: cache, logits: .all)
        let V = m.config.vocabularySize
        let next = rows.withUnsafeBufferPointer { b in
            (0..<(ids.count - 1)).map { p in LogProbs.logProb(UnsafeBufferPointer(rebasing: b[(p * V)..<((p + 1) * V)]), ids[p + 1]) }
        }
        return (rows, next)
    }

    func checkLogits(_ r: ReferenceModel) throws {
        let m = try model(r)
        var d: [Double] = [], a: [Double] = [], exactD: [Double] = []
        var top1Checked = 0, top1Agree = 0
        for line in try r.lines("logits.jsonl") {
            let ids = (line["ids"] as! [Int]).map(Int32.init)
            let all = line["positions"] as! [[String: Any]]
            // The last position has no next prompt token; only its top logits are recorded.
            let pos = all.filter { $0["next_id"] is Int }
            let (rows, lps) = evaluate(m, ids, precision: .quantized)
            let V = m.config.vocabularySize
            for (p, ref) in pos.enumerated() {
                XCTAssertEqual(ref["next_id"] as? Int, Int(ids[p + 1]))
                let ref0 = ref["next_logprob"] as! Double, alt = ref["next_logprob_alt"] as! Double
                var dist = abs(lps[p] - ref0)
                if let f32 = ref["next_logprob_f32"] as? Double { dist = min(dist, abs(lps[p] - f32)) }
                d.append(dist); a.append(abs(alt - ref0))
            }
            for (p, ref) in all.enumerated() {
                let top = ref["top"] as! [[Double]]
                if top[0][1] - top[1][1] > r.margin {
                    top1Checked += 1
                    let mine = rows.withUnsafeBufferPointer { LogProbs.argmax(UnsafeBufferPointer(rebasing: $0[(p * V)..<((p + 1) * V)])) }
                    if Int(mine) == Int(top[0][0]) { top1Agree += 1 } else {
                        XCTFail("\(r.fixture): top-1 differs at position \(p) of \(String(describing: line["text"]!).debugDescription): engine \(mine), llama.cpp \(Int(top[0][0])) (margin \(top[0][1] - top[1][1]))")
                    }
                }
            }
            if pos.first?["next_logprob_f32"] != nil {
                let ex = evaluate(m, ids, precision: .exact).next
                for (p, ref) in pos.enumerated() { exactD.append(abs(ex[p] - (ref["next_logprob_f32"] as! Double))) }
            }
        }
        let sd = spread(d), sa = spread(a)
        let limits = (1.5 * sa.median + 0.005, 1.5 * sa.p90 + 0.01, max(1.5, 2 * sa.max))
        print(String(format: "%@: %d positions; |engine - llama.cpp| median %.4f p90 %.4f max %.4f (limits %.4f %.4f %.4f); llama.cpp's own spread median %.4f p90 %.4f max %.4f; top-1 %d/%d",
                     r.fixture, d.count, sd.median, sd.p90, sd.max, limits.0, limits.1, limits.2, sa.median, sa.p90, sa.max, top1Agree, top1Checked))
        XCTAssertLessThanOrEqual(sd.median, limits.0, "median distance")
        XCTAssertLessThanOrEqual(sd.p90, limits.1, "90th percentile distance")
        XCTAssertLessThanOrEqual(sd.max, limits.2, "max distance")
        if !exactD.isEmpty {
            let se = spread(exactD)
            print(String(format: "%@: exact f32 path vs f32 reading: median %.5f p90 %.5f max %.5f over %d positions",
                         r.fixture, se.median, se.p90, se.max, exactD.count))
            XCTAssertLessThanOrEqual(se.max, 0.01, "exact path within 0.01 nats of next_logprob_f32")
        }
    }

    func checkGreedy(_ r: ReferenceModel) throws {
        let m = try model(r)
        var identical = 0, checkedTokens = 0
        for line in try r.lines("greedy.jsonl") {
            let ids = (line["ids"] as! [Int]).map(Int32.init)
            let want = (line["greedy_ids"] as! [Int]).map(Int32.init)
            let margins = line["margins"] as! [Double]
            // Compare up to the first near-tie: after it two correct engines may part.
            let tie = margins.firstIndex { $0 < r.margin } ?? want.count
            let n = min(tie, want.count)
            var o = GenerationOptions()
            o.sampling = .greedy
            o.maxTokens = n
            let g = try m.generate(ids, options: o)
            let produced = g.ids + (g.endToken.map { [$0] } ?? [])
            let got = produced + [Int32](repeating: -1, count: max(0, n - produced.count))
            checkedTokens += n
            if Array(got.prefix(n)) == Array(want.prefix(n)) { identical += 1 } else {
                XCTFail("\(r.fixture): greedy differs before the first near-tie (step \(tie)) for \(String(describing: line["text"]!).debugDescription):\n engine   \(Array(produced.prefix(n)))\n llama.cpp \(Array(want.prefix(n)))")
            }
        }
        print("\(r.fixture): greedy identical up to the first near-tie in \(identical) prompts (\(checkedTokens) tokens compared)")
    }

    func testSmolLM2Logits() throws { try checkLogits(.smollm2) }
    func testSmolLM2Greedy() throws { try checkGreedy(.smollm2) }
    func testQwen2Logits() throws { try checkLogits(.qwen2) }
    func testQwen2Greedy() throws { try checkGreedy(.qwen2) }
    func testQwen2LargeLogits() throws { try checkLogits(.qwen2Large) }
    func testQwen2LargeGreedy() throws { try checkGreedy(.qwen2Large) }
    func testGemma3Logits() throws { try checkLogits(.gemma3) }
    func testGemma3Greedy() throws { try checkGreedy(.gemma3) }
}
