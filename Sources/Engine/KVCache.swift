// The key/value cache of one sequence: per layer, keys and values of every evaluated position, in f32.
// A `KVCache` is a value-like object: `fork()` copies what has been evaluated so far, `rewind` drops the tail.

/// Keys and values for each layer, position-major: `keys[layer][pos * kvDim + h * headDim + i]`.
public final class KVCache: @unchecked Sendable {
    public let layerCount: Int
    public let kvDim: Int
    public let valueKVDim: Int
    /// Positions evaluated so far (the next token goes at `count`).
    public private(set) var count = 0
    /// Positions the buffers can hold before they grow.
    public private(set) var capacity: Int
    /// The most positions this cache will hold (the model's context length, or less if asked).
    public let maxPositions: Int
    var keys: [UnsafeMutablePointer<Float>]
    var values: [UnsafeMutablePointer<Float>]

    init(layerCount: Int, kvDim: Int, valueKVDim: Int, maxPositions: Int, initialCapacity: Int = 256) {
        self.layerCount = layerCount
        self.kvDim = kvDim
        self.valueKVDim = valueKVDim
        self.maxPositions = maxPositions
        let cap = max(1, min(initialCapacity, maxPositions))
        capacity = cap
        keys = (0..<layerCount).map { _ in .allocate(capacity: cap * kvDim) }
        values = (0..<layerCount).map { _ in .allocate(capacity: cap * valueKVDim) }
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
    }

    /// Makes room for `n` more positions (doubling), up to `maxPositions`.
    func reserve(_ n: Int) {
        let need = count + n
        if need > maxPositions { fatalError("KV cache overflow: \(need) positions, at most \(maxPositions)") }
        guard need > capacity else { return }
        var cap = capacity
        while cap < need { cap *= 2 }
        cap = min(cap, maxPositions)
        for l in 0..<layerCount {
            let k = UnsafeMutablePointer<Float>.allocate(capacity: cap * kvDim)
            k.update(from: keys[l], count: count * kvDim)
            keys[l].deallocate(); keys[l] = k
            let v = UnsafeMutablePointer<Float>.allocate(capacity: cap * valueKVDim)
            v.update(from: values[l], count: count * valueKVDim)
            values[l].deallocate(); values[l] = v
        }
        capacity = cap
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
        let c = KVCache(layerCount: layerCount, kvDim: kvDim, valueKVDim: valueKVDim, maxPositions: maxPositions,
                        initialCapacity: max(n + max(room, 0), 1))
        for l in 0..<layerCount {
            c.keys[l].update(from: keys[l], count: n * kvDim)
            c.values[l].update(from: values[l], count: n * valueKVDim)
        }
        c.count = n
        return c
    }

    /// Bytes held by the buffers.
    public var bytes: Int { layerCount * capacity * (kvDim + valueKVDim) * 4 }
}
