// Requests too big to serve: each is refused with a clear error before any work (checked by timing the refusal),
// or truncated as documented (docs/reliability.md).
@testable import Engine
import XCTest

final class LimitsTests: XCTestCase {
    nonisolated(unsafe) static var shared: LanguageModel?

    func model() throws -> LanguageModel {
        if let m = Self.shared { return m }
        let m = try LanguageModel(path: try TestModels.path(TestModels.smolLM2), threads: 2)
        Self.shared = m
        return m
    }

    /// The error `body` throws, failing the test when it throws none or takes longer than `seconds`.
    func refusal<T>(within seconds: Double = 1, _ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> String {
        let start = Date()
        do {
            _ = try body()
            XCTFail("no error", file: file, line: line)
            return ""
        } catch {
            XCTAssertLessThan(Date().timeIntervalSince(start), seconds, "refused before any work", file: file, line: line)
            return "\(error)"
        }
    }

    func testPromptsLongerThanTheContext() throws {
        let m = try model()
        let ctx = m.config.contextLength
        let long = [Int32](repeating: 198, count: ctx + 1)
        let expected = "context full: the prompt's \(ctx + 1) tokens exceed the model's context of \(ctx)"
        XCTAssertEqual(refusal { try m.generate(long) }, expected)
        XCTAssertEqual(refusal { try m.sample(prompt: long, n: 2) }, expected)
        XCTAssertEqual(refusal { try m.score(prefix: long, continuation: [198]) }, "\(ctx + 2) tokens exceed the context length \(ctx)")
        XCTAssertEqual(refusal { try m.inspect(long, InspectionRequest(hiddenLayers: [0])) }, "\(ctx + 1) tokens exceed the context length \(ctx)")
    }

    /// max_tokens past the context is a documented truncation: the generation stops when the context is full,
    /// with finish "length" (a state with room for 12 positions stands in for the 8,192 of the model).
    func testMaxTokensBeyondTheContextStopsWhenItIsFull() throws {
        let m = try model()
        let prompt = m.tokenize("Once upon a time")
        let st = ModelState(model: m, cache: m.transformer.makeCache(maxPositions: 12), tokens: prompt)
        var o = GenerationOptions()
        o.maxTokens = Int.max
        o.ignoreEOS = true
        o.sampling.temperature = 0
        let g = try st.generate(o)
        XCTAssertEqual(g.finish, .length)
        XCTAssertEqual(prompt.count + g.ids.count, 12, "prompt \(prompt.count) + \(g.ids.count) generated")
        XCTAssertThrowsError(try st.append([198])) { XCTAssertTrue("\($0)".hasPrefix("context full"), "\($0)") }
    }

    func testHugeSampleCountsAreRefused() throws {
        let m = try model()
        let prompt = m.tokenize("Once upon a time")
        var o = GenerationOptions()
        o.maxTokens = 100
        let huge = refusal { try m.sample(prompt: prompt, n: 1_000_000_000, options: o) }
        XCTAssertTrue(huge.hasPrefix("1000000000 sequences of up to \(prompt.count + 100) positions need "), huge)
        XCTAssertTrue(huge.contains("half this machine's memory): ask for at most "), huge)
        XCTAssertFalse(refusal { try m.sample(prompt: prompt, n: Int.max, options: o) }.isEmpty, "no overflow")
        // The estimate: n × (positions × KV bytes per position + two logits rows).
        let per = (prompt.count + 100) * m.kvBytesPerPosition + 2 * m.config.vocabularySize * 4
        let few = refusal { try m.sample(prompt: prompt, n: 4, options: o, byteLimit: 3 * per) }
        XCTAssertTrue(few.hasSuffix("ask for at most 3 at a time"), few)
        o.maxTokens = 2
        XCTAssertEqual(try m.sample(prompt: prompt, n: 3, options: o, byteLimit: 3 * per).count, 3)
    }

    func testLogprobsAndMaxTokensOutOfRange() throws {
        let m = try model()
        var o = GenerationOptions()
        o.topLogprobs = GenerationOptions.maxTopLogprobs + 1
        let expected = "logprobs: at most 1000 alternatives per token, got 1001"
        XCTAssertEqual(refusal { try m.generate([1, 2, 3], options: o) }, expected)
        XCTAssertEqual(refusal { try m.sample(prompt: [1, 2, 3], n: 2, options: o) }, expected)
        o.topLogprobs = 1000
        o.maxTokens = 1
        XCTAssertEqual(try m.generate([1, 2, 3], options: o).tokens[0].top.count, 1000)
        o.maxTokens = -1
        XCTAssertEqual(refusal { try m.generate([1, 2, 3], options: o) }, "max_tokens must be ≥ 0, got -1")
    }

    func testAttentionBeyondTheInspectionLimit() throws {
        let m = try model()
        let c = m.config
        let T = 3000
        let all = InspectionRequest(attentionLayers: Array(0..<c.layerCount))
        let e = refusal { try m.inspect([Int32](repeating: 198, count: T), all) }
        XCTAssertTrue(e.hasPrefix("inspecting 3000 tokens needs 9.1 GiB (attention: 30 layers × 9 heads × 3000² positions"), e)
        XCTAssertTrue(e.hasSuffix("over the 4.0 GiB limit: ask for fewer layers or heads, or a shorter text"), e)
    }
}
