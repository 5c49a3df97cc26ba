// The priority queue of the tokenizers' pair merges (BPE and SentencePiece): a binary min-heap of 64-bit keys.

/// A binary min-heap of (key, payload) pairs ordered by key.
struct MinHeap {
    private var keys = [UInt64]()
    private var payloads = [UInt64]()

    mutating func removeAll() { keys.removeAll(keepingCapacity: true); payloads.removeAll(keepingCapacity: true) }

    mutating func push(key: UInt64, payload: UInt64) {
        keys.append(key); payloads.append(payload)
        var i = keys.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if keys[p] <= keys[i] { break }
            keys.swapAt(p, i); payloads.swapAt(p, i)
            i = p
        }
    }

    mutating func pop() -> (UInt64, UInt64)? {
        guard let top = keys.first else { return nil }
        let topPayload = payloads[0]
        let lastKey = keys.removeLast(), lastPayload = payloads.removeLast()
        if !keys.isEmpty {
            keys[0] = lastKey; payloads[0] = lastPayload
            var i = 0
            let n = keys.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && keys[l] < keys[m] { m = l }
                if r < n && keys[r] < keys[m] { m = r }
                if m == i { break }
                keys.swapAt(m, i); payloads.swapAt(m, i)
                i = m
            }
        }
        return (top, topPayload)
    }
}
