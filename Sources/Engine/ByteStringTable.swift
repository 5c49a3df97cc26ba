// A hash map from byte strings to Int32 values, keyed by slices so that lookups allocate nothing.

/// Open-addressing hash table from byte strings to `Int32`. Inserting an existing key replaces its value.
struct ByteStringTable: Sendable {
    private var bytes: [UInt8] = []
    private var starts: [Int32] = []      // per entry: offset of its key in `bytes`
    private var lengths: [Int32] = []
    private var values: [Int32] = []
    private var slots: [Int32]            // entry index, or -1 for empty
    private var mask: Int

    /// Number of distinct keys.
    var count: Int { values.count }

    init(capacity: Int = 16, byteCapacity: Int = 0) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = [Int32](repeating: -1, count: n)
        mask = n - 1
        bytes.reserveCapacity(byteCapacity)
        starts.reserveCapacity(capacity)
        lengths.reserveCapacity(capacity)
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
        var i = ByteStringTable.hash(key) & mask
        return bytes.withUnsafeBufferPointer { store -> Int32? in
            while true {
                let e = Int(slots[i])
                if e < 0 { return nil }
                if Int(lengths[e]) == key.count {
                    let s = Int(starts[e])
                    var same = true
                    var j = 0
                    while j < key.count { if store[s + j] != key[j] { same = false; break }; j += 1 }
                    if same { return values[e] }
                }
                i = (i + 1) & mask
            }
        }
    }

    /// The value stored for `key`, if any.
    func get(_ key: [UInt8]) -> Int32? { key.withUnsafeBufferPointer { get($0) } }

    /// Stores `value` for `key`, replacing any value it had.
    mutating func set(_ key: UnsafeBufferPointer<UInt8>, _ value: Int32) {
        if (values.count + 1) * 2 > slots.count { grow() }
        var i = ByteStringTable.hash(key) & mask
        while true {
            let e = Int(slots[i])
            if e < 0 { break }
            if Int(lengths[e]) == key.count && bytes[Int(starts[e])..<Int(starts[e]) + key.count].elementsEqual(key) {
                values[e] = value
                return
            }
            i = (i + 1) & mask
        }
        slots[i] = Int32(values.count)
        starts.append(Int32(bytes.count))
        lengths.append(Int32(key.count))
        values.append(value)
        bytes.append(contentsOf: key)
    }

    /// Stores `value` for `key`, replacing any value it had.
    mutating func set(_ key: [UInt8], _ value: Int32) { key.withUnsafeBufferPointer { set($0, value) } }

    private mutating func grow() {
        let n = slots.count * 2
        slots = [Int32](repeating: -1, count: n)
        mask = n - 1
        bytes.withUnsafeBufferPointer { store in
            for e in 0..<values.count {
                let key = UnsafeBufferPointer(rebasing: store[Int(starts[e])..<Int(starts[e] + lengths[e])])
                var i = ByteStringTable.hash(key) & mask
                while slots[i] >= 0 { i = (i + 1) & mask }
                slots[i] = Int32(e)
            }
        }
    }
}
