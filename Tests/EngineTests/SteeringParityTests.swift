// Control vectors against llama.cpp, on the three models. The vectors (Fixtures/steering/) were made by llama.cpp's
// own llama-cvector-generator (Tests/tools/steering/make_control_vectors.sh: happy vs sad prompts, method mean).
// refrain reads each file and adds its directions to the residual stream; llama.cpp reads the same file (its gguf-py)
// and applies it through its C API (llama_set_adapter_cvec, via llama-cpp-python: Tests/tools/steering_parity.py).
// The next-token log-probabilities of the same texts must agree by the reference tests' rule
// (../shared/reference/README.md, copied in ReferenceTests): refrain's distance from llama.cpp's reading is held to
// llama.cpp's own spread between two attention settings. The vector must move the log-probabilities well beyond
// that spread, or the comparison would show nothing. And a file refrain writes is one llama.cpp reads as the same
// vector: llama-completion's greedy text with refrain's copy of a vector equals its text with the original.
// Without llama.cpp's tools these tests fail, naming the setup step, unless REFRAIN_SKIP_LLAMACPP_TESTS=1.
@testable import Engine
import XCTest

final class SteeringParityTests: XCTestCase, LlamaCppTools {
    static let texts = [
        "Tell me about your day. I woke up early, made some coffee and went for a walk in the park.",
        "Write a short note to a friend who has just moved to a new city.",
        "The meeting ran late again, and by the time I got home the dinner was cold and the children were asleep.",
        "Question: Tom has 3 apples and buys 4 more. How many apples does he have? Answer: He has 7 apples.",
        "def mean(xs):\n    return sum(xs) / len(xs)\n\nprint(mean([1, 2, 3]))",
        "Dear team, thank you all for the hard work this quarter. We shipped the release on time.",
    ]

    /// (model file, fixture, a scale that moves the model clearly without wrecking it).
    static let models: [(file: String, vector: String, scale: Float)] = [
        (TestModels.smolLM2, "steering/happy-sad-SmolLM2-135M-Instruct.Q4_1.cvec", 4),
        (TestModels.gemma3, "steering/happy-sad-gemma-3-270m-q4_k_m.cvec", 100),
        (TestModels.qwen25Coder, "steering/happy-sad-qwen2.5-coder-0.5b-instruct-q4_k_m.cvec", 1),
    ]

    /// log p(ids[i+1] | ids[...i]) for each position under `x`.
    func nextLogprobs(_ m: LanguageModel, _ ids: [Int32], _ x: [Intervention]) throws -> [Double] {
        var r = InspectionRequest(logits: true)
        r.interventions = x
        let rows = try m.inspect(ids, r).logits!
        let V = m.config.vocabularySize
        return (0..<(ids.count - 1)).map { p in LogProbs.logProb(Array(rows[(p * V)..<((p + 1) * V)]), ids[p + 1]) }
    }

    func testLogprobsUnderAControlVectorMatchLlamaCpp() throws {
        let python = try tool(home + "/venv-llamacpp/bin/python")
        let script = testTool("steering_parity.py")
        for (file, fixture, scale) in SteeringParityTests.models {
            let path = try TestModels.path(file)
            let m = try LanguageModel(path: path, threads: 2)
            let vectorPath = try TestModels.fixture(fixture).path
            let v = try ControlVector(path: vectorPath)
            XCTAssertEqual(v.dimension, m.config.embeddingLength)
            XCTAssertEqual(Set(v.directions.keys), Set(1..<m.config.layerCount), "\(file): the generator writes layers 1 to n - 1")
            let L = m.config.layerCount
            // Two settings: the whole vector (llama.cpp's default range 1...n_layer), and twice it on a middle range.
            for (s, range) in [(scale, 1...L), (2 * scale, (L / 4)...(L / 2))] {
                let ids = SteeringParityTests.texts.map { m.tokenize($0) }
                let request = FileManager.default.temporaryDirectory.appendingPathComponent("steering-\(getpid()).json")
                defer { try? FileManager.default.removeItem(at: request) }
                let req = JSONValue.object([
                    ("model", .string(path)),
                    ("vectors", .array([.array([.string(vectorPath), .number(Double(s))])])),
                    ("layer_start", .integer(Int64(range.lowerBound))), ("layer_end", .integer(Int64(range.upperBound))),
                    ("texts", .array(ids.map { .array($0.map { .integer(Int64($0)) }) })),
                ])
                try req.dump().write(to: request, atomically: true, encoding: .utf8)
                let out = try JSONValue.parse(try run(python, [script, request.path]))
                guard case .array(let results)? = out["texts"] else { return XCTFail("steering_parity.py gave no texts") }
                var d: [Double] = [], a: [Double] = [], moved: [Double] = []
                for (k, res) in results.enumerated() {
                    func numbers(_ key: String) -> [Double] {
                        guard case .array(let xs)? = res[key] else { return [] }
                        return xs.compactMap { if case .number(let x) = $0 { return x }; if case .integer(let i) = $0 { return Double(i) }; return nil }
                    }
                    let ref = numbers("next_logprob"), alt = numbers("next_logprob_alt"), plain = numbers("next_logprob_plain")
                    let mine = try nextLogprobs(m, ids[k], v.interventions(scale: s, layers: range))
                    XCTAssertEqual(ref.count, mine.count)
                    for i in 0..<min(ref.count, mine.count) {
                        d.append(abs(mine[i] - ref[i])); a.append(abs(alt[i] - ref[i])); moved.append(abs(plain[i] - ref[i]))
                    }
                }
                let sd = spread(d), sa = spread(a), sm = spread(moved)
                let limits = (1.5 * sa.median + 0.005, 1.5 * sa.p90 + 0.01, max(1.5, 2 * sa.max))
                print(String(format: "%@ scale %.1f layers %d-%d: %d positions; |refrain - llama.cpp| median %.4f p90 %.4f max %.4f (limits %.4f %.4f %.4f); the vector moves llama.cpp's log-probabilities by median %.3f p90 %.3f",
                             file, s, range.lowerBound, range.upperBound, d.count, sd.median, sd.p90, sd.max,
                             limits.0, limits.1, limits.2, sm.median, sm.p90))
                XCTAssertLessThanOrEqual(sd.median, limits.0, "\(file): median distance")
                XCTAssertLessThanOrEqual(sd.p90, limits.1, "\(file): 90th percentile")
                XCTAssertLessThanOrEqual(sd.max, limits.2, "\(file): largest distance")
                XCTAssertGreaterThan(sm.median, 5 * sd.median, "\(file): the vector moves the log-probabilities far more than the engines differ")
            }
        }
    }

    func testAFileRefrainWritesIsTheSameVectorToLlamaCpp() throws {
        let completion = try tool(home + "/llama.cpp/bin/llama-completion")
        let path = try TestModels.path(TestModels.smolLM2)
        let original = try TestModels.fixture(SteeringParityTests.models[0].vector).path
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("refrain-copy-\(getpid()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try ControlVector(path: original).write(to: copy)
        func greedy(_ extra: [String]) throws -> String {
            try run(completion, ["-m", path, "-p", "Tell me about your day.", "-n", "24", "--temp", "0", "-t", "2",
                                 "-no-cnv", "--no-warmup"] + extra)
        }
        let theirs = try greedy(["--control-vector-scaled", original + ":-6"])
        let ours = try greedy(["--control-vector-scaled", copy + ":-6"])
        let none = try greedy([])
        XCTAssertEqual(ours, theirs)
        XCTAssertNotEqual(ours, none, "the vector changes llama.cpp's text")
        // A layer range too, with llama.cpp's two-value flag.
        XCTAssertEqual(try greedy(["--control-vector-scaled", copy + ":-8", "--control-vector-layer-range", "5", "20"]),
                       try greedy(["--control-vector-scaled", original + ":-8", "--control-vector-layer-range", "5", "20"]))
    }
}
