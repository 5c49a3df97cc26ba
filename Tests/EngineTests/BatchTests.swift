// Several sequences decoding together (`Transformer.forwardStep`, `LanguageModel.sample`) and the prefix cache:
// each must give exactly what the one-sequence, cold paths give.
@testable import Engine
import XCTest

final class BatchTests: XCTestCase {
    nonisolated(unsafe) static var models: [String: LanguageModel] = [:]

    func model(_ file: String, threads: Int = 2) throws -> LanguageModel {
        let key = "\(file)#\(threads)"
        if let m = Self.models[key] { return m }
        let m = try LanguageModel(path: try TestModels.path(file), threads: threads)
        Self.models[key] = m
        return m
    }

    /// `k` caches holding prompts of different lengths; `forwardStep` over copies of them must equal one-token
    /// forwards on other copies, bit for bit, for two steps in a row.
    func checkStep(_ file: String, k: Int) throws {
        let m = try model(file)
        let tr = m.transformer
        let texts = ["Once upon a time", "The capital of France is", "1, 2, 3, 4,", "def f(x):\n    return",
                     "A", "Hello, my name is Bob and I", "x"]
        var caches: [KVCache] = []
        var next: [Int32] = []
        for i in 0..<k {
            let ids = m.tokenize(texts[i % texts.count] + String(repeating: " again", count: i / texts.count))
            let c = tr.makeCache()
            _ = tr.forward(ids, cache: c, logits: .none)
            caches.append(c)
            next.append(ids.last!)
        }
        let single = caches.map { $0.fork() }, batched = caches.map { $0.fork() }
        let V = m.config.vocabularySize
        for step in 0..<2 {
            let rows = tr.forwardStep(next, caches: batched)
            XCTAssertEqual(rows.count, k * V)
            for i in 0..<k {
                let one = tr.forward([next[i]], cache: single[i], logits: .last)
                let same = one.elementsEqual(rows[(i * V)..<((i + 1) * V)]) { $0.bitPattern == $1.bitPattern }
                XCTAssertTrue(same, "\(file) k=\(k) step \(step): sequence \(i) differs from its own step")
                XCTAssertEqual(batched[i].count, single[i].count)
            }
            next = (0..<k).map { i in
                rows.withUnsafeBufferPointer { LogProbs.argmax(UnsafeBufferPointer(rebasing: $0[(i * V)..<((i + 1) * V)])) }
            }
        }
    }

    func testStepSmolLM2() throws {
        for k in [1, 2, 5, 8] { try checkStep(TestModels.smolLM2, k: k) }
    }

    func testStepQwen2() throws {
        for k in [3, 6] { try checkStep(TestModels.qwen25Coder, k: k) }
    }

    func testStepGemma3() throws {
        try checkStep(TestModels.gemma3, k: 5)
    }

    func options(seed: UInt64, maxTokens: Int = 16, stop: [String] = []) -> GenerationOptions {
        var o = GenerationOptions()
        o.maxTokens = maxTokens
        o.sampling.temperature = 1
        o.sampling.seed = seed
        o.stop = stop
        return o
    }

    /// Sequence i of `sample` is what `generate` gives with seed + i, at any thread count; and again the same.
    func testSampleEqualsGenerate() throws {
        let m = try model(TestModels.smolLM2)
        let prompt = m.tokenize("Once upon a time")
        let opts = options(seed: 7, maxTokens: 20, stop: ["."])
        m.prefixCacheEntries = 0
        defer { m.prefixCacheEntries = 4 }
        let rs = try m.sample(prompt: prompt, n: 6, options: opts)
        XCTAssertEqual(rs.count, 6)
        for (i, r) in rs.enumerated() {
            var o = opts
            o.sampling.seed = 7 + UInt64(i)
            let g = try m.generate(prompt, options: o)
            XCTAssertEqual(r.ids, g.ids, "sample \(i)")
            XCTAssertEqual(r.text, g.text, "sample \(i)")
            XCTAssertEqual(r.finish, g.finish, "sample \(i)")
            XCTAssertEqual(r.tokens.map(\.logprob), g.tokens.map(\.logprob), "sample \(i)")
        }
        XCTAssertGreaterThan(Set(rs.map(\.ids)).count, 1, "distinct seeds give distinct samples")
        XCTAssertTrue(rs.contains { $0.finish == .stop } || rs.contains { $0.finish == .length })
        // Reproducible, and the same with one thread and with three.
        for threads in [1, 3] {
            let mt = try model(TestModels.smolLM2, threads: threads)
            let again = try mt.sample(prompt: prompt, n: 6, options: opts)
            XCTAssertEqual(again.map(\.ids), rs.map(\.ids), "\(threads) threads")
        }
    }

    /// `generateBatch`: requests with different prompts and options, generate-like and sample-like, decoded
    /// together, give what the separate calls give, bit for bit; an empty prompt or n = 0 is refused by name.
    func testGenerateBatchEqualsSeparateCalls() throws {
        let m = try model(TestModels.smolLM2)
        m.prefixCacheEntries = 0
        defer { m.prefixCacheEntries = 4 }
        var greedy = GenerationOptions()
        greedy.maxTokens = 24
        greedy.sampling.temperature = 0
        let requests: [LanguageModel.BatchRequest] = [
            .init(prompt: m.tokenize("The capital of France is"), options: greedy),
            .init(prompt: m.tokenize("Once upon a time"), n: 3, options: options(seed: 11, maxTokens: 18)),
            .init(prompt: m.tokenize("1, 2, 3, 4,"), options: options(seed: 5, maxTokens: 30, stop: [" 9"])),
            .init(prompt: m.tokenize("A"), options: options(seed: 2, maxTokens: 3)),
        ]
        let batched = try m.generateBatch(requests)
        XCTAssertEqual(batched.map(\.count), [1, 3, 1, 1])
        for (r, q) in requests.enumerated() {
            let alone = q.n == nil ? [try m.generate(q.prompt, options: q.options)]
                                   : try m.sample(prompt: q.prompt, n: q.n!, options: q.options)
            XCTAssertEqual(alone.count, batched[r].count)
            for (g, b) in zip(alone, batched[r]) {
                XCTAssertEqual(b.ids, g.ids, "request \(r)")
                XCTAssertEqual(b.text, g.text, "request \(r)")
                XCTAssertEqual(b.finish, g.finish, "request \(r)")
                XCTAssertEqual(b.promptTokens, g.promptTokens, "request \(r)")
                XCTAssertEqual(b.tokens.map(\.logprob.bitPattern), g.tokens.map(\.logprob.bitPattern), "request \(r)")
            }
        }
        XCTAssertEqual(batched[2][0].finish, .stop, "the stop string ends request 3 on its own")
        XCTAssertEqual(batched[3][0].ids.count, 3)
        XCTAssertThrowsError(try m.generateBatch([requests[0], .init(prompt: [], options: greedy)])) { e in
            XCTAssertTrue("\(e)".contains("request 2: generation needs a prompt"), "\(e)")
        }
        XCTAssertThrowsError(try m.generateBatch([.init(prompt: [1], n: 0)])) { e in
            XCTAssertTrue("\(e)".contains("sample needs n ≥ 1"), "\(e)")
        }
        XCTAssertThrowsError(try m.generateBatch(requests, byteLimit: 1000)) { e in
            XCTAssertTrue("\(e)".contains("4 requests need more than"), "\(e)")
        }
        XCTAssertEqual(try m.generateBatch([]).count, 0)
    }

    func testSampleCallbacks() throws {
        let m = try model(TestModels.smolLM2)
        let prompt = m.tokenize("The weather today")
        var seen: [Int: Int] = [:]
        let rs = try m.sample(prompt: prompt, n: 4, options: options(seed: 1, maxTokens: 6)) { i, _ in
            seen[i, default: 0] += 1
            return i == 2 ? .stop : .proceed
        }
        XCTAssertEqual(rs[2].finish, .cancelled)
        XCTAssertEqual(rs[2].ids.count, 1)
        XCTAssertEqual(seen[2], 1)
        for i in [0, 1, 3] { XCTAssertEqual(seen[i], rs[i].ids.count) }
        let all = try m.sample(prompt: prompt, n: 3, options: options(seed: 1, maxTokens: 6)) { _, _ in .stopAll }
        XCTAssertEqual(all.map(\.finish), [.cancelled, .cancelled, .cancelled])
        XCTAssertEqual(all.map(\.ids.count), [1, 0, 0])
    }

    /// A second call sharing a prefix reuses its evaluation and gives exactly what a cold one gives.
    func testPrefixCacheGenerate() throws {
        let warm = try model(TestModels.smolLM2)
        let cold = try LanguageModel(path: try TestModels.path(TestModels.smolLM2), threads: 2)
        cold.prefixCacheEntries = 0
        warm.prefixCacheEntries = 4
        let head = warm.tokenize(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 12))
        let a = head + warm.tokenize("Why?", addSpecial: false)
        let b = head + warm.tokenize("How so, then?", addSpecial: false)
        var o = GenerationOptions()
        o.maxTokens = 8
        o.sampling.temperature = 0
        let ga = try warm.generate(a, options: o)
        let gb = try warm.generate(b, options: o)
        let common = zip(a + ga.ids, b).prefix { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(common, head.count)
        XCTAssertEqual(gb.cachedTokens, common)
        let cb = try cold.generate(b, options: o)
        XCTAssertEqual(cb.cachedTokens, 0)
        XCTAssertEqual(gb.ids, cb.ids)
        XCTAssertEqual(gb.tokens.map(\.logprob), cb.tokens.map(\.logprob))
        // The same prompt again: all but its last token are reused (its logits are evaluated again), or all of it
        // when the earlier generation stopped right there with those logits at hand.
        let gb2 = try warm.generate(b, options: o)
        XCTAssertEqual(gb2.cachedTokens, gb.ids.isEmpty ? b.count : b.count - 1)
        XCTAssertEqual(gb2.ids, cb.ids)
        // The logits of a state built on the cache equal a cold evaluation's.
        let (st, cached) = try warm.cachedState(for: head + warm.tokenize(" Maybe", addSpecial: false))
        XCTAssertGreaterThanOrEqual(cached, head.count)
        let coldState = cold.makeState()
        try coldState.append(st.tokens)
        XCTAssertEqual(try st.logits().map(\.bitPattern), try coldState.logits().map(\.bitPattern))
        // sample: the prompt evaluated by an earlier sample is reused whole.
        let s1 = try warm.sample(prompt: a, n: 2, options: options(seed: 3, maxTokens: 4))
        let s2 = try warm.sample(prompt: a, n: 2, options: options(seed: 3, maxTokens: 4))
        XCTAssertEqual(s2[0].cachedTokens, a.count)
        XCTAssertEqual(s1.map(\.ids), s2.map(\.ids))
    }

    func testPrefixCacheScore() throws {
        let warm = try LanguageModel(path: try TestModels.path(TestModels.qwen25Coder), threads: 2)
        let cold = try LanguageModel(path: try TestModels.path(TestModels.qwen25Coder), threads: 2)
        cold.prefixCacheEntries = 0
        let prefix = warm.tokenize("def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return")
        let c1 = warm.tokenize(" a + b", addSpecial: false), c2 = warm.tokenize(" b + a", addSpecial: false)
        let s1 = try warm.score(prefix: prefix, continuation: c1)
        XCTAssertEqual(s1.cached, 0)
        let s2 = try warm.score(prefix: prefix, continuation: c2)
        XCTAssertEqual(s2.cached, prefix.count - 1)
        let k2 = try cold.score(prefix: prefix, continuation: c2)
        XCTAssertEqual(s2.logprobs.map(\.bitPattern), k2.logprobs.map(\.bitPattern))
        // A longer prefix reuses the earlier prefix and continuation.
        let s3 = try warm.score(prefix: prefix + c2, continuation: c1)
        XCTAssertEqual(s3.cached, prefix.count + c2.count - 1)
        let k3 = try cold.score(prefix: prefix + c2, continuation: c1)
        XCTAssertEqual(s3.logprobs.map(\.bitPattern), k3.logprobs.map(\.bitPattern))
    }
}
