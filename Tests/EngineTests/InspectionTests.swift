// Attention probabilities, hidden states and the logit lens (`LanguageModel.inspect`): rows are distributions that
// respect the causal mask and Gemma 3's sliding window, probabilities times the cached values give the layer's
// attention output, and the logit lens at the last layer gives the model's logits.
@testable import Engine
import XCTest

final class InspectionTests: XCTestCase {
    func ids(_ m: LanguageModel, _ n: Int) -> [Int32] {
        let text = "Tom has 3 apples and buys 4 more. How many apples does Tom have now? He has 7 apples. "
        return Array(m.tokenize(String(repeating: text, count: n / 10 + 2)).prefix(n))
    }

    /// Every row sums to 1, is zero after its own position and, on local layers, before the window.
    func checkRows(_ m: LanguageModel, _ r: Inspection, layer: Int, window: Int) {
        let T = r.count
        guard let a = r.attention[layer] else { return XCTFail("no attention for layer \(layer)") }
        XCTAssertEqual(a.count, r.heads.count * T * T)
        var worstSum = 0.0
        for h in r.heads.indices {
            for i in 0..<T {
                let row = a[((h * T + i) * T)..<((h * T + i + 1) * T)]
                let first = window > 0 ? max(0, i - window + 1) : 0
                var sum = 0.0
                for (j, p) in row.enumerated() {
                    sum += Double(p)
                    if j > i || j < first { XCTAssertEqual(p, 0, "layer \(layer) head \(h) row \(i) key \(j) is masked"); if p != 0 { return } }
                    else { XCTAssertTrue(p >= 0 && p <= 1) }
                }
                worstSum = max(worstSum, abs(sum - 1))
            }
        }
        XCTAssertLessThan(worstSum, 1e-5, "layer \(layer): rows sum to 1")
    }

    func testSmolLM2AttentionRowsAndValues() throws {
        let m = try LanguageModel(path: try TestModels.path(TestModels.smolLM2), threads: 2)
        let tokens = ids(m, 300)
        var req = InspectionRequest(attentionLayers: [0, 14, 29], hiddenLayers: [29], logits: true)
        req.attentionOutputs = true
        let r = try m.inspect(tokens, req)
        for l in [0, 14, 29] { checkRows(m, r, layer: l, window: 0) }
        // P · V (the cached values) reproduces the attention output the forward pass computed.
        let c = m.config, T = tokens.count, group = c.headCount / c.kvHeadCount, od = c.headCount * c.valueDim
        let cache = try XCTUnwrap(r.cache)
        for l in [0, 14, 29] {
            let a = r.attention[l]!, out = r.attentionOutputs[l]!
            XCTAssertEqual(out.count, T * od)
            var worst: Float = 0, largest: Float = 0
            for h in 0..<c.headCount {
                for i in stride(from: 0, to: T, by: 7) {
                    for d in 0..<c.valueDim {
                        var v: Float = 0
                        for j in 0...i { v += a[(h * T + i) * T + j] * cache.value(l, j, h / group, d) }
                        worst = max(worst, abs(v - out[i * od + h * c.valueDim + d]))
                        largest = max(largest, abs(v))
                    }
                }
            }
            XCTAssertLessThan(worst, 1e-4 * max(1, largest), "layer \(l): P·V differs from the attention output by \(worst)")
        }
        // The logit lens at the last layer is the model's own logits.
        let lens = m.logitLens(r.hidden[29]!, rows: T)
        let logits = try XCTUnwrap(r.logits)
        XCTAssertEqual(lens.count, logits.count)
        XCTAssertTrue(lens.elementsEqual(logits) { $0.bitPattern == $1.bitPattern }, "logit lens at the last layer")
        // An earlier layer's lens is a different, still finite, distribution.
        let early = try m.inspect(Array(tokens.prefix(20)), InspectionRequest(hiddenLayers: [5]))
        let e = m.logitLens(early.hidden[5]!, rows: 20)
        XCTAssertTrue(e.allSatisfy { $0.isFinite })
        XCTAssertFalse(e.elementsEqual(logits.prefix(e.count)))
    }

    /// Gemma 3: five of every six layers attend within a 512-position window.
    func testGemma3SlidingWindow() throws {
        let m = try LanguageModel(path: try TestModels.path(TestModels.gemma3), threads: 2)
        let tokens = ids(m, 560)
        let c = m.config
        let local = (0..<c.layerCount).first { c.isSlidingWindowLayer($0) }!
        let global = (0..<c.layerCount).first { !c.isSlidingWindowLayer($0) }!
        let r = try m.inspect(tokens, InspectionRequest(attentionLayers: [local, global], heads: [0, 3]))
        XCTAssertEqual(r.heads, [0, 3])
        checkRows(m, r, layer: local, window: c.slidingWindow)
        checkRows(m, r, layer: global, window: 0)
        // The last row of the global layer does reach before the window.
        let T = tokens.count, a = r.attention[global]!
        XCTAssertGreaterThan(a[((T - 1) * T)..<((T - 1) * T + T - c.slidingWindow)].reduce(0, +), 0)
    }

    func testRequestsThatCannotRunAreErrors() throws {
        let m = try LanguageModel(path: try TestModels.path(TestModels.smolLM2), threads: 2)
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message { _ = try m.inspect([], InspectionRequest()) }, "inspect needs at least one token")
        XCTAssertEqual(message { _ = try m.inspect([1, 2], InspectionRequest(attentionLayers: [30])) },
                       "layer 30 is out of range (the model has layers 0 to 29)")
        XCTAssertEqual(message { _ = try m.inspect([1, 2], InspectionRequest(attentionLayers: [0], heads: [9])) },
                       "head 9 is out of range (the model has heads 0 to 8)")
        let big = message { _ = try m.inspect(Array(repeating: 1, count: 8000), InspectionRequest(attentionLayers: Array(0..<30))) }
        XCTAssertTrue(big.hasPrefix("inspecting 8000 tokens needs 64.4 GiB (attention: 30 layers × 9 heads × 8000² positions = 64.4 GiB), over the 4.0 GiB limit"), big)
        XCTAssertTrue(message { _ = try m.inspect(Array(repeating: 1, count: 9000), InspectionRequest()) }.contains("exceed the context length 8192"))
    }
}
