// Forked states share their prefix (`KVCache`'s copy-on-write pages): a fork gives the same bits as a state that
// evaluated everything itself, holds no copy of the prefix, and writing to it (appending, rewinding into the shared
// prefix) never changes its parent or a sibling.
@testable import Engine
import XCTest

final class ForkTests: XCTestCase {
    nonisolated(unsafe) static var shared: LanguageModel?

    func model() throws -> LanguageModel {
        if let m = Self.shared { return m }
        let m = try LanguageModel(path: try TestModels.path(TestModels.smolLM2), threads: 2)
        m.prefixCacheEntries = 0
        Self.shared = m
        return m
    }

    func same(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && a.elementsEqual(b) { $0.bitPattern == $1.bitPattern }
    }

    /// Every key and value element of the first `n` positions of a few layers, as f32 bit patterns.
    func snapshot(_ c: KVCache, _ n: Int) -> [UInt32] {
        var out: [UInt32] = []
        for l in [0, c.layerCount / 2, c.layerCount - 1] {
            for p in 0..<n {
                for h in 0..<c.kvHeads {
                    for d in 0..<c.headDim { out.append(c.key(l, p, h, d).bitPattern) }
                    for d in 0..<c.valueDim { out.append(c.value(l, p, h, d).bitPattern) }
                }
            }
        }
        return out
    }

    /// Logits after `chunks` appended one after another to a fresh state, evaluating after each.
    func fresh(_ m: LanguageModel, _ chunks: [[Int32]]) throws -> [Float] {
        let s = m.makeState()
        var out: [Float] = []
        for c in chunks { try s.append(c); out = try s.logits() }
        return out
    }

    /// A fork's logits equal those of a state that evaluated the same tokens itself, bit for bit, whether the fork
    /// appends at a page boundary or inside the shared partly filled page; the parent, extended afterwards, too.
    /// A model whose last user lets go of it is freed, with its threads, even after calls that filled its prefix
    /// cache (the cache once kept states that kept the model: a REPL loading models one after another leaked them).
    func testModelIsReleasedAfterCachedCalls() throws {
        weak var released: LanguageModel?
        do {
            let m = try LanguageModel(path: try TestModels.path(TestModels.smolLM2), threads: 2)
            released = m
            var o = GenerationOptions()
            o.sampling = .greedy
            o.maxTokens = 4
            _ = try m.generate(m.tokenize("The capital of France is"), options: o)
            let again = try m.generate(m.tokenize("The capital of France is"), options: o)
            XCTAssertGreaterThan(again.cachedTokens, 0, "the second call was not served from the prefix cache")
        }
        XCTAssertNil(released, "the model outlived its last reference")
    }

    func testForkEqualsFreshState() throws {
        let m = try model()
        let prompt = m.tokenize(String(repeating: "A river runs through the old town, past the mill. ", count: 5))
        XCTAssertNotEqual(prompt.count % KVCache.pagePositions, 0, "the prompt should end inside a page")
        let c1 = m.tokenize(" And then", addSpecial: false), c2 = m.tokenize(" Later that year, the", addSpecial: false)
        let parent = m.makeState()
        try parent.append(prompt)
        let p0 = try parent.logits()
        let f1 = parent.fork(), f2 = parent.fork()
        XCTAssertTrue(same(try f1.logits(), p0))
        try f1.append(c1)
        try f2.append(c2)
        XCTAssertTrue(same(try f1.logits(), try fresh(m, [prompt, c1])), "fork 1 differs from a fresh state")
        XCTAssertTrue(same(try f2.logits(), try fresh(m, [prompt, c2])), "fork 2 differs from a fresh state")
        try parent.append(c2 + c1)
        XCTAssertTrue(same(try parent.logits(), try fresh(m, [prompt, c2 + c1])), "the parent changed")
        // A fork of a fork, decoding several tokens one at a time (crossing into a new page).
        let g = f1.fork()
        var chunks = [prompt, c1]
        for t in m.tokenize(" the miller's daughter walked along the bank and sang to the fish", addSpecial: false) {
            try g.append([t]); chunks.append([t])
        }
        XCTAssertTrue(same(try g.logits(), try fresh(m, chunks)), "a fork of a fork differs from a fresh state")
    }

    /// Appending to a fork, or rewinding it into the shared prefix and writing there, leaves the parent's and a
    /// sibling's cached keys and values as they were, and the parent still generates what it generated before.
    func testMutatingForkLeavesOthers() throws {
        let m = try model()
        let prompt = m.tokenize(String(repeating: "Seven swans swim south for the winter. ", count: 6))
        let parent = m.makeState()
        try parent.append(prompt)
        _ = try parent.logits()
        let n = parent.cache.count
        let before = snapshot(parent.cache, n)
        let a = parent.fork(), b = parent.fork()
        XCTAssertTrue(a.cache.sharesPage(with: parent.cache, at: 0))
        XCTAssertTrue(b.cache.sharesPage(with: a.cache, at: n - 1), "the partly filled page is shared until written")
        try a.append(m.tokenize(" Yes", addSpecial: false))
        _ = try a.logits()
        XCTAssertFalse(a.cache.sharesPage(with: parent.cache, at: n - 1), "a write copies the shared page")
        XCTAssertTrue(a.cache.sharesPage(with: parent.cache, at: 0), "full pages stay shared")
        let bBefore = snapshot(b.cache, n)
        // Rewind into the first page and write different tokens there.
        try a.rewind(to: 5)
        try a.append(m.tokenize(" No, not at all", addSpecial: false))
        _ = try a.logits()
        XCTAssertFalse(a.cache.sharesPage(with: parent.cache, at: 0))
        XCTAssertEqual(snapshot(parent.cache, n), before, "writing to a fork changed its parent")
        XCTAssertEqual(snapshot(b.cache, n), bBefore, "writing to a fork changed a sibling")
        XCTAssertEqual(bBefore, before)
        // The parent rewinds into the shared prefix and writes: the sibling keeps its keys.
        try parent.rewind(to: 3)
        try parent.append(m.tokenize(" Four", addSpecial: false))
        _ = try parent.logits()
        XCTAssertEqual(snapshot(b.cache, n), before, "writing to the parent changed a fork")
        var o = GenerationOptions()
        o.maxTokens = 6
        o.sampling.temperature = 0
        let gb = try b.generate(o)
        let ref = m.makeState()
        try ref.append(prompt)
        XCTAssertEqual(gb.ids, try ref.generate(o).ids)
    }

    /// Forks do not copy the prefix: eight forks of a 300-token prompt, each decoding a few tokens, hold about one
    /// prompt's KV plus their own tails (at most two pages each: the copied partly filled page and one more).
    func testForksShareMemory() throws {
        let m = try model()
        let prompt = m.tokenize(String(repeating: "Numbers: one two three four five six seven eight nine ten. ", count: 40))
        XCTAssertGreaterThan(prompt.count, 300)
        let base = m.makeState()
        try base.append(Array(prompt.prefix(300)))
        _ = try base.logits()
        let one = KVCache.distinctBytes([base.cache])
        let page = base.cache.pageBytes
        XCTAssertEqual(one, (base.cache.count + KVCache.pagePositions - 1) / KVCache.pagePositions * page)
        let forks = (0..<8).map { _ in base.fork() }
        XCTAssertEqual(KVCache.distinctBytes([base.cache] + forks.map { $0.cache }), one, "forking copied pages")
        let tail = m.tokenize(" eleven twelve thirteen fourteen", addSpecial: false)
        for (i, f) in forks.enumerated() {
            for t in tail.prefix(1 + i % 3) { try f.append([t]); _ = try f.logits() }
        }
        let all = KVCache.distinctBytes([base.cache] + forks.map { $0.cache })
        XCTAssertLessThanOrEqual(all, one + 8 * 2 * page)
        XCTAssertLessThan(all, 2 * one, "eight forks should hold far less than two prompts' KV")
        XCTAssertGreaterThan(all, one, "each fork copied the partly filled page it wrote to")
        XCTAssertGreaterThan(forks[0].cache.bytes, one - page, "each fork still sees the whole prefix")
    }

    /// The cache alone, without a model: stores through forks at every offset of a page, against a flat copy.
    func testCacheCopyOnWrite() {
        let P = KVCache.pagePositions
        for half in [true, false] {
            let c = KVCache(layerCount: 2, kvHeads: 2, headDim: 8, valueDim: 16, maxPositions: 4 * P, half: half)
            var flatK: [[Float]] = [[], []], flatV: [[Float]] = [[], []]
            func write(_ cache: KVCache, _ n: Int, _ salt: Float, _ fk: inout [[Float]], _ fv: inout [[Float]]) {
                cache.reserve(n)
                for l in 0..<2 {
                    let k = (0..<(n * 16)).map { Float($0 % 97) * 0.25 + salt + Float(l) }
                    let v = (0..<(n * 32)).map { Float($0 % 89) * 0.5 - salt - Float(l) }
                    cache.store(layer: l, at: cache.count, count: n, k: k, v: v)
                    fk[l] = Array(fk[l].prefix(cache.count * 16)) + k
                    fv[l] = Array(fv[l].prefix(cache.count * 32)) + v
                }
                cache.advance(n)
            }
            func r(_ x: Float) -> Float { half ? Float(Float16(x)) : x }
            func check(_ cache: KVCache, _ fk: [[Float]], _ fv: [[Float]], _ what: String) {
                for l in 0..<2 {
                    for p in 0..<cache.count {
                        for h in 0..<2 {
                            for d in 0..<8 where cache.key(l, p, h, d) != r(fk[l][p * 16 + h * 8 + d]) {
                                XCTFail("\(what): key (\(l), \(p), \(h), \(d))"); return
                            }
                            for d in 0..<16 where cache.value(l, p, h, d) != r(fv[l][p * 32 + h * 16 + d]) {
                                XCTFail("\(what): value (\(l), \(p), \(h), \(d))"); return
                            }
                        }
                    }
                }
            }
            write(c, P + 5, 0, &flatK, &flatV)
            for cut in [0, 1, P - 1, P, P + 3, P + 5] {
                let f = c.fork(keeping: cut)
                var fk = flatK.map { Array($0.prefix(cut * 16)) }, fv = flatV.map { Array($0.prefix(cut * 32)) }
                write(f, P + 2, Float(cut) + 100, &fk, &fv)
                check(f, fk, fv, "fork at \(cut)")
                check(c, flatK, flatV, "parent after fork at \(cut) wrote")
            }
            c.rewind(to: 2)
            flatK = flatK.map { Array($0.prefix(2 * 16)) }; flatV = flatV.map { Array($0.prefix(2 * 32)) }
            let sib = c.fork(), sibK = flatK, sibV = flatV
            write(c, 3 * P, 7, &flatK, &flatV)
            check(c, flatK, flatV, "parent after rewinding")
            XCTAssertEqual(sib.count, 2)
            check(sib, sibK, sibV, "a sibling after its parent rewound and wrote")
        }
    }
}
