// The key/value cache of one sequence: per layer, keys and values of every evaluated position, stored in f16 (as
// llama.cpp stores them by default; half the memory and half the bytes attention reads per token) or in f32 (the
// exact path). A `KVCache` behaves as a value: `fork()` gives an independent cache holding what has been evaluated
// so far, `rewind` drops the tail; writing to one never changes another.
//
// Pages. The positions are held in pages of `KVCache.pagePositions` positions (all layers of those positions in one
// allocation), referenced from the cache's page table. A fork shares its parent's pages instead of copying them, so
// n forks of a long prompt hold about one prompt's KV; a page is copied only when a cache is about to write into it
// while another cache still references it (copy on write, decided in `reserve`, before any thread writes). So a
// fork copies at most the partly filled last page of the prefix, once it appends.
//
// Layout within a page. Keys are kept in blocks of 8 positions, transposed within a block, so that attention gets
// 8 scores from vertical multiply-adds without horizontal sums: element (pos, head, d) of a layer is at
// `((off / 8) * kvHeads + head) * headDim * 8 + d * 8 + off % 8`, where `off = pos % pagePositions`. Values are
// position-major rows: `(off * kvHeads + head) * valueDim + d`. A page's size is a multiple of 8 (and of the
// attention kernel's key block), so an 8-position key block never straddles two pages.

/// The keys and values of `KVCache.pagePositions` consecutive positions, for every layer. Shared between caches by
/// reference; written only by a cache that holds the sole reference.
final class KVPage {
    let base: UnsafeMutableRawPointer
    let byteCount: Int

    init(byteCount: Int) {
        self.byteCount = byteCount
        base = .allocate(byteCount: byteCount, alignment: 64)
    }

    /// A new page holding the same bytes.
    func copy() -> KVPage {
        let p = KVPage(byteCount: byteCount)
        p.base.copyMemory(from: base, byteCount: byteCount)
        return p
    }

    deinit { base.deallocate() }
}

/// Keys and values for each layer of one sequence, f16 or f32, in shared copy-on-write pages.
public final class KVCache: @unchecked Sendable {
    /// Positions per page (a multiple of 8 and of the attention kernel's key block).
    public static let pagePositions = 32
    public let layerCount: Int
    public let kvHeads: Int
    public let headDim: Int
    public let valueDim: Int
    /// Elements are f16 (true) or f32 (false).
    public let half: Bool
    /// Positions evaluated so far (the next token goes at `count`).
    public private(set) var count = 0
    /// The most positions this cache will hold (the model's context length, or less if asked).
    public let maxPositions: Int
    /// The page table: page `i` holds positions `i * pagePositions ..< (i + 1) * pagePositions`.
    private(set) var pages: [KVPage] = []
    /// The interventions every position of this cache is computed under (Intervention.swift); set on an empty
    /// cache, inherited by forks. The prefix cache reuses a cache only for calls with the same interventions.
    public internal(set) var interventions: Interventions? = nil
    /// Positions whose tokens a generation drew (kept as increasing, disjoint ranges): what an intervention on
    /// prompt or generated positions looks at.
    private(set) var generated: [Range<Int>] = []

    public var kvDim: Int { kvHeads * headDim }
    public var valueKVDim: Int { kvHeads * valueDim }
    var elementBytes: Int { half ? 2 : 4 }
    /// Bytes of one layer's keys, and of one layer's values, in a page.
    let pageKeyBytes: Int, pageValueBytes: Int

    init(layerCount: Int, kvHeads: Int, headDim: Int, valueDim: Int, maxPositions: Int, half: Bool) {
        precondition(headDim % 8 == 0 && valueDim % 8 == 0, "head sizes must be multiples of 8")
        self.layerCount = layerCount
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.valueDim = valueDim
        self.half = half
        self.maxPositions = maxPositions
        let eb = half ? 2 : 4
        pageKeyBytes = KVCache.pagePositions * kvHeads * headDim * eb
        pageValueBytes = KVCache.pagePositions * kvHeads * valueDim * eb
    }

    /// Bytes of one page (all layers).
    var pageBytes: Int { layerCount * (pageKeyBytes + pageValueBytes) }

    /// Positions the pages held can take before a new page is needed.
    public var capacity: Int { pages.count * KVCache.pagePositions }

    /// Layer `l`'s keys in page `i` (transposed 8-position blocks, see the file's header).
    @inline(__always) func keyPage(_ l: Int, _ i: Int) -> UnsafeMutableRawPointer {
        pages[i].base + l * pageKeyBytes
    }

    /// Layer `l`'s values in page `i` (position-major rows).
    @inline(__always) func valuePage(_ l: Int, _ i: Int) -> UnsafeMutableRawPointer {
        pages[i].base + layerCount * pageKeyBytes + l * pageValueBytes
    }

    /// Makes room for `n` more positions, up to `maxPositions`: adds pages, and gives this cache its own copy of
    /// any page it will write that another cache shares. Called before the positions are written.
    func reserve(_ n: Int) {
        let need = count + n
        if need > maxPositions { fatalError("KV cache overflow: \(need) positions, at most \(maxPositions)") }
        guard n > 0 else { return }
        let P = KVCache.pagePositions
        let first = count / P, last = (need - 1) / P
        for i in first...last {
            if i < pages.count {
                if !isKnownUniquelyReferenced(&pages[i]) { pages[i] = pages[i].copy() }
            } else {
                pages.append(KVPage(byteCount: pageBytes))
            }
        }
    }

    /// Writes `n` positions from `pos` on, for one layer: `k` holds `n` rows of `kvDim`, `v` `n` rows of
    /// `valueKVDim` (f32, converted to the cache's element type). `reserve` made the pages this cache's own.
    func store(layer l: Int, at pos: Int, count n: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        let hd = headDim, nkv = kvHeads, P = KVCache.pagePositions
        var t = 0
        while t < n {
            let p = pos + t, page = p / P, off0 = p % P
            let m = min(n - t, P - off0)     // positions of this run within the page
            let K = keyPage(l, page), V = valuePage(l, page)
            for u in 0..<m {
                let off = off0 + u
                let base = (off / 8) * nkv * hd * 8 + off % 8
                let row = k + (t + u) * kvDim
                if half {
                    let dst = K.assumingMemoryBound(to: Float16.self)
                    for h in 0..<nkv { for d in 0..<hd { dst[base + (h * hd + d) * 8] = Float16(row[h * hd + d]) } }
                } else {
                    let dst = K.assumingMemoryBound(to: Float.self)
                    for h in 0..<nkv { for d in 0..<hd { dst[base + (h * hd + d) * 8] = row[h * hd + d] } }
                }
            }
            let count = m * valueKVDim, off = off0 * valueKVDim, src = v + t * valueKVDim
            if half {
                VecOps.f32ToF16(src, V + 2 * off, count)
            } else {
                (V.assumingMemoryBound(to: Float.self) + off).update(from: src, count: count)
            }
            t += m
        }
    }

    /// Key element (pos, head, d) of a layer, as f32 (for the reference attention and tests).
    @inline(__always) func key(_ l: Int, _ pos: Int, _ head: Int, _ d: Int) -> Float {
        let off = pos % KVCache.pagePositions
        let i = ((off / 8) * kvHeads + head) * headDim * 8 + d * 8 + off % 8
        let K = keyPage(l, pos / KVCache.pagePositions)
        return half ? Float(K.load(fromByteOffset: 2 * i, as: Float16.self)) : K.load(fromByteOffset: 4 * i, as: Float.self)
    }

    /// Value element (pos, head, d) of a layer, as f32.
    @inline(__always) func value(_ l: Int, _ pos: Int, _ head: Int, _ d: Int) -> Float {
        let i = ((pos % KVCache.pagePositions) * kvHeads + head) * valueDim + d
        let V = valuePage(l, pos / KVCache.pagePositions)
        return half ? Float(V.load(fromByteOffset: 2 * i, as: Float16.self)) : V.load(fromByteOffset: 4 * i, as: Float.self)
    }

    /// Sets the interventions of an empty cache.
    public func intervene(_ x: Interventions?) {
        precondition(count == 0 || x == interventions, "intervene: the cache already holds \(count) positions computed otherwise")
        interventions = x
    }

    /// Marks position `pos` as holding a generated token.
    func markGenerated(_ pos: Int) {
        if let last = generated.last, last.upperBound == pos {
            generated[generated.count - 1] = last.lowerBound..<(pos + 1)
        } else {
            generated.append(pos..<(pos + 1))
        }
    }

    /// Whether position `pos` holds a generated token.
    @inline(__always) func isGenerated(_ pos: Int) -> Bool {
        for r in generated.reversed() where r.lowerBound <= pos { return pos < r.upperBound }
        return false
    }

    /// The first position holding a generated token (nil: none).
    var firstGenerated: Int? { generated.first?.lowerBound }

    /// Marks `n` more positions as filled (after the forward pass wrote them).
    func advance(_ n: Int) { count += n }

    /// Drops every position from `n` on. The pages stay for reuse (their tail is rewritten, copied first if
    /// shared).
    public func rewind(to n: Int) {
        if n < 0 || n > count { fatalError("rewind(to: \(n)) outside 0...\(count)") }
        count = n
    }

    /// An independent cache holding the same evaluated positions (sharing their pages).
    public func fork() -> KVCache {
        let c = fork(keeping: count)
        c.generated = generated   // marks of tokens not evaluated yet stay with them
        return c
    }

    /// An independent cache holding the first `n` evaluated positions (at most `count`). It shares the pages of
    /// those positions with this cache; whichever of them writes into a shared page first copies it. `room` is
    /// accepted for callers that know how many positions will follow; pages are added as they are needed.
    public func fork(keeping n: Int, room: Int = 0) -> KVCache {
        let n = min(max(n, 0), count)
        let c = KVCache(layerCount: layerCount, kvHeads: kvHeads, headDim: headDim, valueDim: valueDim,
                        maxPositions: maxPositions, half: half)
        c.pages = Array(pages.prefix((n + KVCache.pagePositions - 1) / KVCache.pagePositions))
        c.count = n
        c.interventions = interventions
        c.generated = generated
        c.trimGenerated(to: n)
        return c
    }

    /// Forgets generated marks at positions from `n` on.
    func trimGenerated(to n: Int) {
        generated = generated.compactMap { r in r.lowerBound >= n ? nil : r.lowerBound..<min(r.upperBound, n) }
    }

    /// Bytes of the pages this cache references, shared ones included.
    public var bytes: Int { pages.count * pageBytes }

    /// Bytes of the distinct pages the given caches reference together: what they hold in memory, each shared page
    /// counted once.
    public static func distinctBytes(_ caches: [KVCache]) -> Int {
        var seen = Set<ObjectIdentifier>(), total = 0
        for c in caches {
            for p in c.pages where seen.insert(ObjectIdentifier(p)).inserted { total += p.byteCount }
        }
        return total
    }

    /// Whether this cache and `other` reference the same page for position `pos` (for tests).
    func sharesPage(with other: KVCache, at pos: Int) -> Bool {
        let i = pos / KVCache.pagePositions
        return i < pages.count && i < other.pages.count && pages[i] === other.pages[i]
    }
}
