// A hash map from byte strings to Int32 values, keyed by slices so that lookups allocate nothing.

/// Open-addressing hash table from byte strings to `Int32`. Inserting an existing key replaces its value.
struct ByteStringTable: Sendable {
    private var bytes: [UInt8] = []
    private var spans: [UInt64] = []      // per entry: offset of its key in `bytes` << 32 | length
    private var values: [Int32] = []
    private var slots: [UInt64]           // (hash tag << 32 | entry index + 1), or 0 for empty
    private var mask: Int

    /// Number of distinct keys.
    var count: Int { values.count }

    init(capacity: Int = 16, byteCapacity: Int = 0) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = [UInt64](repeating: 0, count: n)
        mask = n - 1
        bytes.reserveCapacity(byteCapacity)
        spans.reserveCapacity(capacity)
        values.reserveCapacity(capacity)
    }

    @inline(__always)
    private static func hash(_ key: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        h ^= h >> 29
        h = h &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 32
        return Int(truncatingIfNeeded: h)
    }

    /// The value stored for `key`, if any.
    @inline(__always)
    func get(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        let h = ByteStringTable.hash(key)
        let tag = UInt64(UInt32(truncatingIfNeeded: h >> 32))
        var i = h & mask
        return bytes.withUnsafeBufferPointer { store -> Int32? in
            while true {
                let slot = slots[i]
                if slot == 0 { return nil }
                if slot >> 32 == tag {
                    let e = Int(slot & 0xFFFF_FFFF) - 1
                    if let v = matches(e, key, store) { return v }
                }
                i = (i + 1) & mask
            }
        }
    }

    /// The entry's value if its key equals `key`.
    @inline(__always)
    private func matches(_ e: Int, _ key: UnsafeBufferPointer<UInt8>, _ store: UnsafeBufferPointer<UInt8>) -> Int32? {
        let span = spans[e]
        guard Int(span & 0xFFFF_FFFF) == key.count else { return nil }
        let s = Int(span >> 32)
        var j = 0
        while j < key.count { if store[s + j] != key[j] { return nil }; j += 1 }
        return values[e]
    }

    /// The value stored for `key`, if any.
    func get(_ key: [UInt8]) -> Int32? { key.withUnsafeBufferPointer { get($0) } }

    /// Stores `value` for `key`, replacing any value it had.
    mutating func set(_ key: UnsafeBufferPointer<UInt8>, _ value: Int32) {
        if (values.count + 1) * 2 > slots.count { grow() }
        let h = ByteStringTable.hash(key)
        let tag = UInt64(UInt32(truncatingIfNeeded: h >> 32))
        var i = h & mask
        while true {
            let slot = slots[i]
            if slot == 0 { break }
            if slot >> 32 == tag {
                let e = Int(slot & 0xFFFF_FFFF) - 1
                if bytes.withUnsafeBufferPointer({ matches(e, key, $0) }) != nil { values[e] = value; return }
            }
            i = (i + 1) & mask
        }
        slots[i] = tag << 32 | UInt64(values.count + 1)
        spans.append(UInt64(bytes.count) << 32 | UInt64(key.count))
        values.append(value)
        bytes.append(contentsOf: key)
    }

    /// Stores `value` for `key`, replacing any value it had.
    mutating func set(_ key: [UInt8], _ value: Int32) { key.withUnsafeBufferPointer { set($0, value) } }

    private mutating func grow() {
        let n = slots.count * 2
        slots = [UInt64](repeating: 0, count: n)
        mask = n - 1
        bytes.withUnsafeBufferPointer { store in
            for e in 0..<values.count {
                let s = Int(spans[e] >> 32), len = Int(spans[e] & 0xFFFF_FFFF)
                let h = ByteStringTable.hash(UnsafeBufferPointer(rebasing: store[s..<s + len]))
                var i = h & mask
                while slots[i] != 0 { i = (i + 1) & mask }
                slots[i] = UInt64(UInt32(truncatingIfNeeded: h >> 32)) << 32 | UInt64(e + 1)
            }
        }
    }
}
