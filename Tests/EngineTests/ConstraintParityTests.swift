import Foundation
import XCTest
@testable import Engine

/// Constrained decoding against llama.cpp (Fixtures/constrained/cases.json): eleven GBNF grammars (llama.cpp's
/// grammars/ folder and three of ours) and twelve JSON schemas on the three models. Each schema's grammar is first
/// compared with llama.cpp's own converter (its C++ code, built by `./setup.sh --llama-cpp` as
/// llama-json-schema-to-grammar); then greedy outputs under each grammar, refrain's and llama.cpp's (llama-cpp-python's
/// generate with the grammar sampler, from the same prompt tokens), must be identical up to the first near-tie:
/// where they part, llama.cpp's own log-probabilities of its token and of refrain's token must lie within the
/// reference tests' margin (0.5 nats; 1.0 for Gemma 3, whose Q4_K_M file spreads more). Without llama.cpp's tools the
/// test fails, naming the setup step, unless REFRAIN_SKIP_LLAMACPP_TESTS=1.
final class ConstraintParityTests: XCTestCase, LlamaCppTools {
    struct Case { let name: String; let grammar: String; let prompt: String; let maxTokens: Int }

    /// The cases: grammars as they are, schemas through refrain's converter after checking it against llama.cpp's.
    func cases(converter: String) throws -> [Case] {
        let fixture = try JSONValue.parse(try String(contentsOf: try TestModels.fixture("constrained/cases.json"), encoding: .utf8))
        guard case .array(let grammars)? = fixture["grammars"], case .array(let schemas)? = fixture["schemas"] else {
            throw TestModels.TestModelMissing(message: "cases.json has no grammars or schemas")
        }
        func int(_ v: JSONValue?) -> Int { if case .integer(let i)? = v { return Int(i) }; return 32 }
        var out: [Case] = []
        for g in grammars {
            let text: String
            if let file = g["file"]?.string {
                text = try String(contentsOf: try TestModels.fixture(file), encoding: .utf8)
            } else {
                text = g["grammar"]!.string!
            }
            out.append(Case(name: "grammar " + g["name"]!.string!, grammar: text, prompt: g["prompt"]!.string!, maxTokens: int(g["max_tokens"])))
        }
        for s in schemas {
            let schema = s["schema"]!.dump()
            let mine = try ConstraintGrammar.jsonSchema(schema)
            let theirs = try run(converter, [], input: schema)
            XCTAssertEqual(mine, theirs, "schema \(s["name"]!.string!): refrain's grammar differs from llama.cpp's converter's")
            out.append(Case(name: "schema " + s["name"]!.string!, grammar: mine, prompt: s["prompt"]!.string!, maxTokens: int(s["max_tokens"])))
        }
        return out
    }

    func testGreedyOutputsEqualLlamaCppsUpToANearTie() throws {
        let python = try tool(home + "/venv-llamacpp/bin/python")
        let converter = try tool(home + "/llama.cpp/bin/llama-json-schema-to-grammar")
        let script = testTool("constrained_parity.py")
        let all = try cases(converter: converter)
        XCTAssertGreaterThanOrEqual(all.filter { $0.name.hasPrefix("grammar") }.count, 10)
        XCTAssertGreaterThanOrEqual(all.filter { $0.name.hasPrefix("schema") }.count, 10)
        var identical = 0, tied = 0, compared = 0
        for (file, tolerance) in [(TestModels.smolLM2, 0.5), (TestModels.gemma3, 1.0), (TestModels.qwen25Coder, 0.5)] {
            let path = try TestModels.path(file)
            let m = try LanguageModel(path: path, threads: 2)
            var requests: [JSONValue] = []
            for c in all {
                var o = GenerationOptions()
                o.grammar = c.grammar
                o.maxTokens = c.maxTokens
                o.sampling.temperature = 0
                let prompt = m.tokenizer.encode(c.prompt)
                let g = try m.generate(prompt, options: o)
                let ids = g.ids + (g.endToken.map { [$0] } ?? [])
                requests.append(.object([("name", .string(c.name)), ("grammar", .string(c.grammar)),
                                         ("prompt_ids", .array(prompt.map { .integer(Int64($0)) })),
                                         ("max_tokens", .integer(Int64(c.maxTokens))),
                                         ("refrain_ids", .array(ids.map { .integer(Int64($0)) })),
                                         ("refrain_ended", .bool(g.finish == .eos || g.finish == .stop)),
                                         ("refrain_text", .string(g.text))]))
            }
            let request = FileManager.default.temporaryDirectory.appendingPathComponent("parity-\(getpid()).json")
            defer { try? FileManager.default.removeItem(at: request) }
            try JSONValue.object([("model", .string(path)), ("cases", .array(requests))]).dump().write(to: request, atomically: true, encoding: .utf8)
            guard case .array(let results) = try JSONValue.parse(try run(python, [script, request.path])) else {
                XCTFail("constrained_parity.py gave no list"); continue
            }
            XCTAssertEqual(results.count, requests.count)
            for (req, res) in zip(requests, results) {
                compared += 1
                let name = req["name"]!.string!
                guard case .integer(let k)? = res["diverge"] else {
                    identical += 1
                    print("constrained parity: \(file) \(name): identical, \(req["refrain_text"]!.string!.debugDescription)")
                    continue
                }
                let mine = req["refrain_text"]!.string!, theirs = res["llama_text"]?.string ?? ""
                guard case .number(let margin)? = res["margin"] else {
                    XCTFail("\(file) \(name): the outputs part at token \(k) where one of them ended: refrain \(mine.debugDescription), llama.cpp \(theirs.debugDescription)")
                    continue
                }
                if abs(margin) < tolerance {
                    tied += 1
                    print("constrained parity: \(file) \(name): part at token \(k), llama.cpp's margin \(String(format: "%.3f", margin)) nats: refrain \(mine.debugDescription), llama.cpp \(theirs.debugDescription)")
                } else {
                    XCTFail("\(file) \(name): token \(k) differs and llama.cpp's margin there is \(margin) nats, not a near-tie: refrain \(mine.debugDescription), llama.cpp \(theirs.debugDescription)")
                }
            }
        }
        print("constrained parity: \(compared) grammar×model cases, \(identical) identical, \(tied) parting at a near-tie")
        XCTAssertEqual(compared, all.count * 3)
    }
}
