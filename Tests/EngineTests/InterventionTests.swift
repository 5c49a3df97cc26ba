// Interventions in the forward pass (Intervention.swift): the identities (a zero vector, a zero scale, a run's own
// activations patched into itself change nothing, bit for bit), the equivalences (every head of a layer ablated is
// the layer's attention output removed; a direction ablated leaves no component along it), the keying of caches by
// interventions, the patching sweep on a known two-prompt case, and the control-vector file format.
@testable import Engine
import XCTest

final class InterventionTests: XCTestCase {
    static let text = "Tom has 3 apples and buys 4 more. How many apples does Tom have now?"

    func model(_ file: String = TestModels.smolLM2) throws -> LanguageModel {
        try LanguageModel(path: try TestModels.path(file), threads: 2)
    }

    /// A deterministic vector of the model's embedding size with entries in [-amp, amp].
    func vector(_ m: LanguageModel, seed: Int, amp: Float = 1) -> [Float] {
        (0..<m.config.embeddingLength).map { amp * sinf(Float(seed) * 7.3 + Float($0) * 0.37) }
    }

    /// Every position's logits of `ids` under `x`.
    func logits(_ m: LanguageModel, _ ids: [Int32], _ x: [Intervention] = [], hidden: [Int] = []) throws -> Inspection {
        var r = InspectionRequest(hiddenLayers: hidden, logits: true)
        r.interventions = x
        return try m.inspect(ids, r)
    }

    func testZeroVectorAndZeroScaleChangeNothing() throws {
        for file in [TestModels.smolLM2, TestModels.gemma3] {
            let m = try model(file)
            let ids = m.tokenize(InterventionTests.text)
            let plain = try logits(m, ids).logits!
            let zero = [Float](repeating: 0, count: m.config.embeddingLength)
            let cases: [[Intervention]] = [
                (0..<m.config.layerCount).map { Intervention(layer: $0, .add(zero, scale: 3)) },
                (0..<m.config.layerCount).map { Intervention(layer: $0, .add(vector(m, seed: $0), scale: 0)) },
                [Intervention(layer: 2, .heads([0, 1], .scale(1))), Intervention(layer: 1, .attentionScale(1))],
            ]
            for x in cases {
                XCTAssertNil(try m.checked(x), "\(file): an intervention that changes nothing is dropped")
                XCTAssertEqual(try logits(m, ids, x).logits!, plain, "\(file): \(x.count) null interventions")
                // Applied regardless (not dropped): x + 0·v is x.
                let cache = m.transformer.makeCache(maxPositions: ids.count)
                cache.interventions = try XCTUnwrap(Interventions.forTests(x, config: m.config))
                let rows = m.transformer.forward(ids, cache: cache, logits: .all)
                XCTAssertEqual(rows, plain, "\(file): null interventions applied in the forward pass")
            }
            // The same through generation and scoring.
            var o = GenerationOptions(); o.maxTokens = 12; o.sampling.temperature = 0
            let g0 = try m.generate(ids, options: o)
            o.interventions = cases[1]
            XCTAssertEqual(try m.generate(ids, options: o).ids, g0.ids)
            let s0 = try m.score(prefix: ids, continuation: g0.ids)
            XCTAssertEqual(try m.score(prefix: ids, continuation: g0.ids, interventions: cases[0]).logprobs, s0.logprobs)
        }
    }

    func testARunsOwnActivationsPatchedIntoItselfChangeNothing() throws {
        let m = try model()
        let ids = m.tokenize(InterventionTests.text)
        let T = ids.count, d = m.config.embeddingLength
        var req = InspectionRequest(hiddenLayers: [0, 7, 29], logits: true)
        req.headOutputLayers = [7]
        let run = try m.inspect(ids, req)
        let plain = run.logits!
        for l in [0, 7, 29] {
            let h = run.hidden[l]!
            var rows: [Int: [Float]] = [:]
            for p in 0..<T { rows[p] = Array(h[(p * d)..<((p + 1) * d)]) }
            XCTAssertEqual(try logits(m, ids, [Intervention(layer: l, .patch(rows))]).logits!, plain, "residual patch at layer \(l)")
        }
        // Head outputs: every head of layer 7 from the same run.
        let c = m.config, od = c.headCount * c.valueDim
        let out = run.attentionOutputs[7]!
        var rows: [Int: [Float]] = [:]
        for p in 0..<T { rows[p] = Array(out[(p * od)..<((p + 1) * od)]) }
        let heads = Array(0..<c.headCount)
        XCTAssertEqual(try logits(m, ids, [Intervention(layer: 7, .patchHeads(heads, rows))]).logits!, plain, "head patch")
        // A patch from another text does change the result (the test can fail).
        let other = try m.inspect(m.tokenize("Anna reads 12 pages a day. How many pages does she read in a week?"),
                                  InspectionRequest(hiddenLayers: [7]))
        let foreign = Intervention(layer: 7, .patch([T - 1: Array(other.hidden[7]![0..<d])]))
        XCTAssertNotEqual(try logits(m, ids, [foreign]).logits!, plain)
    }

    func testEveryHeadAblatedEqualsTheLayersAttentionRemoved() throws {
        for file in [TestModels.smolLM2, TestModels.gemma3] {
            let m = try model(file)
            let ids = m.tokenize(InterventionTests.text)
            let heads = Array(0..<m.config.headCount)
            let plain = try logits(m, ids).logits!
            for l in [0, m.config.layerCount / 2] {
                let ablated = try logits(m, ids, [Intervention(layer: l, .heads(heads, .zero))]).logits!
                let removed = try logits(m, ids, [Intervention(layer: l, .attentionScale(0))]).logits!
                XCTAssertEqual(ablated, removed, "\(file) layer \(l)")
                XCTAssertNotEqual(ablated, plain, "\(file) layer \(l): ablation changes the logits")
                // Scaling every head by 0 is zero ablation too.
                XCTAssertEqual(try logits(m, ids, [Intervention(layer: l, .heads(heads, .scale(0)))]).logits!, removed)
            }
        }
    }

    func testDirectionalAblationAndClamping() throws {
        let m = try model()
        let ids = m.tokenize(InterventionTests.text)
        let d = m.config.embeddingLength, T = ids.count, l = 10
        let u0 = vector(m, seed: 5)
        let norm = sqrtf(u0.reduce(0) { $0 + $1 * $1 })
        let u = u0.map { $0 / norm }
        func projections(_ x: [Intervention]) throws -> [Float] {
            let h = try logits(m, ids, x, hidden: [l]).hidden[l]!
            return (0..<T).map { p in (0..<d).reduce(Float(0)) { $0 + h[p * d + $1] * u[$1] } }
        }
        let before = try projections([])
        XCTAssertGreaterThan(before.map(abs).max()!, 0.01)
        for p in try projections([Intervention(layer: l, .ablate(u0))]) { XCTAssertLessThan(abs(p), 1e-3) }
        for p in try projections([Intervention(layer: l, .clamp(u0, value: 2.5))]) { XCTAssertEqual(p, 2.5, accuracy: 1e-3) }
        // Only the positions asked for.
        let some = try projections([Intervention(layer: l, .ablate(u0), positions: .list([0, 3]))])
        XCTAssertLessThan(abs(some[3]), 1e-3)
        XCTAssertEqual(some[5], before[5])
        // Steering by s·v moves the projection by s·(v·u) at that layer.
        let moved = try projections([Intervention(layer: l, .add(u, scale: 4))])
        for p in 0..<T { XCTAssertEqual(moved[p] - before[p], 4, accuracy: 1e-3) }
    }

    func testGeneratedPositionsAndCacheKeying() throws {
        let m = try model()
        let ids = m.tokenize(InterventionTests.text)
        var o = GenerationOptions(); o.maxTokens = 16; o.sampling.temperature = 0
        let plain = try m.generate(ids, options: o)
        let steer = (5..<20).map { Intervention(layer: $0, .add(vector(m, seed: $0, amp: 2), scale: 1), positions: .generated) }
        o.interventions = steer
        let gen = try m.generate(ids, options: o)
        // The first token comes from the prompt's positions, which a generated-only intervention leaves alone.
        XCTAssertEqual(gen.ids.first, plain.ids.first)
        XCTAssertNotEqual(gen.ids, plain.ids, "steering the generated positions changes the text")
        // The prefix cache holds the plain generation's state; a steered call does not reuse it, and vice versa:
        // the same call again gives the same tokens, from a fresh or a cached start.
        XCTAssertEqual(try m.generate(ids, options: o).ids, gen.ids)
        o.interventions = []
        XCTAssertEqual(try m.generate(ids, options: o).ids, plain.ids)
        // A steered state's prompt, extended by the steered generation and fed back as a prompt, is evaluated as a
        // prompt (its positions not reused from the generation).
        o.interventions = steer
        let again = try m.generate(ids + gen.ids, options: o)
        let fresh = m.prefixCacheEntries
        m.prefixCacheEntries = 0
        XCTAssertEqual(try m.generate(ids + gen.ids, options: o).ids, again.ids)
        m.prefixCacheEntries = fresh
        // Prompt-only steering on a state: appended text after a generation is a prompt position again.
        let st = try m.makeState(interventions: [Intervention(layer: 3, .add(vector(m, seed: 1), scale: 1), positions: .prompt)])
        try st.append(ids)
        XCTAssertThrowsError(try st.generate(o), "a state's interventions are its own, not a generation's")
        o.interventions = []
        _ = try st.generate(o)
        XCTAssertNotNil(st.interventions)
        XCTAssertTrue(st.cache.isGenerated(ids.count))
        XCTAssertFalse(st.cache.isGenerated(ids.count - 1))
        try st.rewind(to: ids.count)
        XCTAssertFalse(st.cache.isGenerated(ids.count))
    }

    func testBadInterventionsAreNamed() throws {
        let m = try model()
        let v = vector(m, seed: 1)
        func message(_ x: [Intervention]) -> String {
            do { _ = try m.checked(x); return "" } catch { return "\(error)" }
        }
        XCTAssertEqual(message([Intervention(layer: 30, .add(v, scale: 1))]), "intervention 1: layer 30 is out of range (the model has layers 0 to 29)")
        XCTAssertEqual(message([Intervention(layer: 1, .add([1, 2], scale: 1))]), "intervention 1: the vector has 2 values, the model's embedding has 576")
        XCTAssertEqual(message([Intervention(layer: 1, .add(v, scale: 1)), Intervention(layer: 1, .heads([9], .zero))]),
                       "intervention 2: head 9 is out of range (the model has heads 0 to 8)")
        XCTAssertEqual(message([Intervention(layer: 1, .ablate([Float](repeating: 0, count: 576)))]), "intervention 1: the direction is the zero vector")
        XCTAssertEqual(message([Intervention(layer: 1, .add(v, scale: .nan))]), "intervention 1: the scale is not finite")
    }

    func testPatchingSweepFindsThePositionThatMatters() throws {
        let m = try model()
        let clean = m.tokenize("The capital of France is the city of")
        let corrupted = m.tokenize("The capital of Italy is the city of")
        XCTAssertEqual(clean.count, corrupted.count)
        let differs = try XCTUnwrap((0..<clean.count).first { clean[$0] != corrupted[$0] })
        XCTAssertEqual((0..<clean.count).filter { clean[$0] != corrupted[$0] }, [differs], "one token differs")
        let paris = m.tokenize(" Paris", addSpecial: false)[0], rome = m.tokenize(" Rome", addSpecial: false)[0]
        let last = m.config.layerCount - 1
        let sweep = try m.patchingSweep(clean: clean, corrupted: corrupted, target: paris, foil: rome, layers: [0, 10, last])
        XCTAssertGreaterThan(sweep.clean, sweep.corrupted, "the clean prompt prefers Paris more than the corrupted one")
        let T = clean.count, r = sweep.restored
        // Layer 0: only the differing token's residual carries the difference; patching it restores nearly all.
        let row0 = Array(r[0..<T])
        XCTAssertEqual(row0.indices.max { row0[$0] < row0[$1] }, differs)
        XCTAssertGreaterThan(row0[differs], 0.9)
        for p in 0..<differs { XCTAssertEqual(row0[p], 0, accuracy: 1e-6, "positions before the difference are the same") }
        // The last layer: only the last position reaches the output.
        let rowLast = Array(r[(2 * T)..<(3 * T)])
        XCTAssertEqual(rowLast[T - 1], 1, accuracy: 1e-4)
        for p in 0..<(T - 1) { XCTAssertEqual(rowLast[p], 0, accuracy: 1e-6) }
        // A cell equals the patched prompt run whole (the sweep starts from the corrupted cache at the position).
        let h = try m.inspect(clean, InspectionRequest(hiddenLayers: [10])).hidden[10]!
        let d = m.config.embeddingLength, p = differs + 1
        let whole = try logits(m, corrupted, [Intervention(layer: 10, .patch([p: Array(h[(p * d)..<((p + 1) * d)])]))]).logits!
        let lastRow = Array(whole[((T - 1) * m.config.vocabularySize)...])
        let metric = Float(LogProbs.logProb(lastRow, paris) - LogProbs.logProb(lastRow, rome))
        XCTAssertEqual(sweep.values[1 * T + p], metric, accuracy: 1e-4)
    }

    func testControlVectorFileRoundTripAndErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("refrain-cvec-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let v = ControlVector(dimension: 8, directions: [1: (0..<8).map { Float($0) }, 5: (0..<8).map { -Float($0) / 3 }],
                              modelHint: "llama")
        let path = dir.appendingPathComponent("v.gguf").path
        try v.write(to: path)
        let back = try ControlVector(path: path)
        XCTAssertEqual(back, v)
        XCTAssertEqual(try GGUFFile(path: path).string("general.architecture"), "controlvector")
        XCTAssertEqual(try GGUFFile(path: path).int("controlvector.layer_count"), 2)
        let x = back.interventions(scale: 2, layers: 2...31)
        XCTAssertEqual(x, [Intervention(layer: 5, .add(v.directions[5]!, scale: 2))])
        let summed = try ControlVector.sum([(v, 1), (v, -0.5)])
        XCTAssertEqual(summed.directions[1]!, v.directions[1]!.map { $0 * 0.5 })
        XCTAssertThrowsError(try ControlVector(dimension: 8, directions: [0: [Float](repeating: 0, count: 8)]).write(to: path))
        // A model file is not a control vector.
        XCTAssertThrowsError(try ControlVector(path: try TestModels.path(TestModels.smolLM2))) { e in
            XCTAssertTrue("\(e)".contains("is not a direction"), "\(e)")
        }
    }
}
