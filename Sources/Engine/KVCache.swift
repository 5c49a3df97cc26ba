// The key/value cache of one sequence: per layer, keys and values of every evaluated position, stored in f16 (as
// llama.cpp stores them by default; half the memory and half the bytes attention reads per token) or in f32 (the
// exact path). A `KVCache` is a value-like object: `fork()` copies what has been evaluated so far, `rewind` drops
// the tail.
//
// Layout. Keys are kept in blocks of 8 positions, transposed within a block, so that attention gets 8 scores from
// vertical multiply-adds without horizontal sums: element (pos, head, d) is at
// `((pos / 8) * kvHeads + head) * headDim * 8 + d * 8 + pos % 8`. Values are position-major rows:
// `(pos * kvHeads + head) * valueDim + d`. Both grow by appending, so growing and forking copy a prefix.

/// Keys and values for each layer of one sequence, f16 or f32.
public final class KVCache: @unchecked Sendable {
    public let layerCount: Int
    public let kvHeads: Int
    public let headDim: Int
    public let valueDim: Int
    /// Elements are f16 (true) or f32 (false).
    public let half: Bool
    /// Positions evaluated so far (the next token goes at `count`).
    public private(set) var count = 0
    /// Positions the buffers can hold before they grow (a multiple of 8).
    public private(set) var capacity: Int
    /// The most positions this cache will hold (the model's context length, or less if asked).
    public let maxPositions: Int
    var keys: [UnsafeMutableRawPointer]
    var values: [UnsafeMutableRawPointer]

    public var kvDim: Int { kvHeads * headDim }
    public var valueKVDim: Int { kvHeads * valueDim }
    var elementBytes: Int { half ? 2 : 4 }

    init(layerCount: Int, kvHeads: Int, headDim: Int, valueDim: Int, maxPositions: Int, half: Bool,
         initialCapacity: Int = 256) {
        precondition(headDim % 8 == 0 && valueDim % 8 == 0, "head sizes must be multiples of 8")
        self.layerCount = layerCount
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.valueDim = valueDim
        self.half = half
        self.maxPositions = maxPositions
        let cap = KVCache.roundUp(max(1, min(initialCapacity, maxPositions)))
        capacity = cap
        let kBytes = cap * kvHeads * headDim * (half ? 2 : 4), vBytes = cap * kvHeads * valueDim * (half ? 2 : 4)
        keys = (0..<layerCount).map { _ in .allocate(byteCount: kBytes, alignment: 64) }
        values = (0..<layerCount).map { _ in .allocate(byteCount: vBytes, alignment: 64) }
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
    }

    static func roundUp(_ n: Int) -> Int { (n + 7) / 8 * 8 }

    /// Bytes of keys (whole blocks) and of values holding the first `n` positions.
    private func keyBytes(_ n: Int) -> Int { KVCache.roundUp(n) * kvDim * elementBytes }
    private func valueBytes(_ n: Int) -> Int { n * valueKVDim * elementBytes }

    /// Makes room for `n` more positions (doubling), up to `maxPositions`.
    func reserve(_ n: Int) {
        let need = count + n
        if need > maxPositions { fatalError("KV cache overflow: \(need) positions, at most \(maxPositions)") }
        guard need > capacity else { return }
        var cap = capacity
        while cap < need { cap *= 2 }
        cap = KVCache.roundUp(min(cap, maxPositions))
        for l in 0..<layerCount {
            let k = UnsafeMutableRawPointer.allocate(byteCount: cap * kvDim * elementBytes, alignment: 64)
            k.copyMemory(from: keys[l], byteCount: keyBytes(count))
            keys[l].deallocate(); keys[l] = k
            let v = UnsafeMutableRawPointer.allocate(byteCount: cap * valueKVDim * elementBytes, alignment: 64)
            v.copyMemory(from: values[l], byteCount: valueBytes(count))
            values[l].deallocate(); values[l] = v
        }
        capacity = cap
    }

    /// Writes `n` positions from `pos` on, for one layer: `k` holds `n` rows of `kvDim`, `v` `n` rows of
    /// `valueKVDim` (f32, converted to the cache's element type).
    func store(layer l: Int, at pos: Int, count n: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        let hd = headDim, nkv = kvHeads
        let K = keys[l], V = values[l]
        for t in 0..<n {
            let p = pos + t
            let base = (p / 8) * nkv * hd * 8 + p % 8
            let row = k + t * kvDim
            if half {
                let dst = K.assumingMemoryBound(to: Float16.self)
                for h in 0..<nkv { for d in 0..<hd { dst[base + (h * hd + d) * 8] = Float16(row[h * hd + d]) } }
            } else {
                let dst = K.assumingMemoryBound(to: Float.self)
                for h in 0..<nkv { for d in 0..<hd { dst[base + (h * hd + d) * 8] = row[h * hd + d] } }
            }
        }
        let m = n * valueKVDim, off = pos * valueKVDim
        if half {
            VecOps.f32ToF16(v, V + 2 * off, m)
        } else {
            (V.assumingMemoryBound(to: Float.self) + off).update(from: v, count: m)
        }
    }

    /// Key element (pos, head, d) of a layer, as f32 (for the reference attention and tests).
    @inline(__always) func key(_ l: Int, _ pos: Int, _ head: Int, _ d: Int) -> Float {
        let i = ((pos / 8) * kvHeads + head) * headDim * 8 + d * 8 + pos % 8
        return half ? Float(keys[l].load(fromByteOffset: 2 * i, as: Float16.self))
                    : keys[l].load(fromByteOffset: 4 * i, as: Float.self)
    }

    /// Value element (pos, head, d) of a layer, as f32.
    @inline(__always) func value(_ l: Int, _ pos: Int, _ head: Int, _ d: Int) -> Float {
        let i = (pos * kvHeads + head) * valueDim + d
        return half ? Float(values[l].load(fromByteOffset: 2 * i, as: Float16.self))
                    : values[l].load(fromByteOffset: 4 * i, as: Float.self)
    }

    /// Marks `n` more positions as filled (after the forward pass wrote them).
    func advance(_ n: Int) { count += n }

    /// Drops every position from `n` on.
    public func rewind(to n: Int) {
        if n < 0 || n > count { fatalError("rewind(to: \(n)) outside 0...\(count)") }
        count = n
    }

    /// An independent copy holding the same evaluated positions.
    public func fork() -> KVCache { fork(keeping: count) }

    /// An independent copy holding the first `n` evaluated positions (at most `count`), with room for `room` more
    /// before its buffers grow.
    public func fork(keeping n: Int, room: Int = 0) -> KVCache {
        let n = min(max(n, 0), count)
        let c = KVCache(layerCount: layerCount, kvHeads: kvHeads, headDim: headDim, valueDim: valueDim,
                        maxPositions: maxPositions, half: half, initialCapacity: max(n + max(room, 0), 1))
        for l in 0..<layerCount {
            c.keys[l].copyMemory(from: keys[l], byteCount: keyBytes(n))
            c.values[l].copyMemory(from: values[l], byteCount: valueBytes(n))
        }
        c.count = n
        return c
    }

    /// Bytes held by the buffers.
    public var bytes: Int { layerCount * capacity * (kvDim + valueKVDim) * elementBytes }
}
