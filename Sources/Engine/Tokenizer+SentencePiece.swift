// SentencePiece-style vocabularies (`tokenizer.ggml.model == "llama"`): spaces escaped as U+2581, characters
// merged pair by pair, highest-scoring entry first, and bytes left outside the vocabulary sent to byte fallback.

extension Tokenizer {
    /// Appends the ids of `raw`, text without special tokens (after a U+2581 when `prefixSpace`).
    func spmFragment(_ raw: ArraySlice<UInt8>, prefixSpace: Bool, _ out: inout [Int32]) {
        // Escape spaces as U+2581.
        var text = [UInt8](); text.reserveCapacity(raw.count + 3)
        if prefixSpace { text.append(contentsOf: [0xE2, 0x96, 0x81]) }
        for b in raw { if b == 0x20 { text.append(contentsOf: [0xE2, 0x96, 0x81]) } else { text.append(b) } }
        if text.isEmpty { return }
        // One symbol per UTF-8 character.
        var starts = [Int32](), lens = [Int32](), prev = [Int32](), next = [Int32]()
        var i = 0
        while i < text.count {
            let b0 = text[i]
            let len = min(b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4, text.count - i)
            starts.append(Int32(i)); lens.append(Int32(len))
            prev.append(Int32(starts.count - 2))
            i += len
            next.append(i == text.count ? -1 : Int32(starts.count))
        }
        var heap = MinHeap()
        text.withUnsafeBufferPointer { p in
            func tryPair(_ l: Int32, _ r: Int32) {
                if l < 0 || r < 0 { return }
                let s = Int(starts[Int(l)]), size = Int(lens[Int(l)] + lens[Int(r)])
                guard let id = vocab.get(UnsafeBufferPointer(rebasing: p[s..<s + size])) else { return }
                // Highest score first, then leftmost: order by the score's bits, inverted.
                let bits = scores[Int(id)].bitPattern
                let ordered = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000   // ascending with the float
                heap.push(key: UInt64(~ordered) << 32 | UInt64(UInt32(l)),
                          payload: UInt64(UInt32(r)) << 32 | UInt64(UInt32(size)))
            }
            for k in 1..<starts.count { tryPair(Int32(k - 1), Int32(k)) }
            while let (key, payload) = heap.pop() {
                let l = Int(key & 0xFFFF_FFFF), r = Int(payload >> 32), size = Int32(payload & 0xFFFF_FFFF)
                guard lens[l] > 0, lens[r] > 0, lens[l] + lens[r] == size else { continue }
                lens[l] += lens[r]
                lens[r] = 0
                next[l] = next[r]
                if next[r] >= 0 { prev[Int(next[r])] = Int32(l) }
                tryPair(prev[l], Int32(l))
                tryPair(Int32(l), next[l])
            }
            var k: Int32 = 0
            while k >= 0 {
                let s = Int(starts[Int(k)]), len = Int(lens[Int(k)])
                if let id = vocab.get(UnsafeBufferPointer(rebasing: p[s..<s + len])) {
                    out.append(id)
                } else {
                    for b in s..<s + len {
                        let t = byteTokens[Int(p[b])]
                        if t >= 0 { out.append(t) } else if let unk { out.append(unk) }
                    }
                }
                k = next[Int(k)]
            }
        }
    }
}
