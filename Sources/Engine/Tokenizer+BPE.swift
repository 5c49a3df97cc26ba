// Byte-level BPE (`tokenizer.ggml.model == "gpt2"`): a fragment is cut into words by the pre-tokenizer, and each
// word's bytes, as GPT-2 characters, are merged pair by pair, lowest merge rank first.

extension Tokenizer {
    /// Appends the ids of `bytes[start..<end]`, text without special tokens: cut into words, each word merged.
    func bpeFragment(_ bytes: [UInt8], _ start: Int, _ end: Int, _ out: inout [Int32]) {
        guard let pre else { return }
        // Scalars and their byte offsets.
        var scalars = [UInt32](); scalars.reserveCapacity(end - start)
        var starts = [Int](); starts.reserveCapacity(end - start + 1)
        var i = start
        while i < end {
            let b0 = bytes[i]
            let len = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4
            var v = UInt32(b0)
            switch len {
            case 2: v = (v & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F)
            case 3: v = (v & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F)
            case 4: v = (v & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
                        | UInt32(bytes[i + 3] & 0x3F)
            default: break
            }
            scalars.append(v); starts.append(i)
            i += len
        }
        starts.append(end)
        var ws = BPEWorkspace()
        var wordStart = 0
        for wordEnd in pre.split(scalars) {
            bpeWord(bytes, starts[wordStart], starts[wordEnd], &ws, &out)
            wordStart = wordEnd
        }
    }

    struct BPEWorkspace {
        var ids = [Int32](), prev = [Int32](), next = [Int32](), len = [Int32]()
        var heap = MinHeap()
        var mapped = [UInt8]()
    }

    @inline(__always)
    private func pairKey(_ l: Int32, _ r: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
    }

    private func bpeWord(_ bytes: [UInt8], _ start: Int, _ end: Int, _ ws: inout BPEWorkspace, _ out: inout [Int32]) {
        let count = end - start
        if count == 0 { return }
        if ignoreMerges || count == 1 {
            ws.mapped.removeAll(keepingCapacity: true)
            for k in start..<end { ws.mapped.append(contentsOf: byteEncoding[Int(bytes[k])]) }
            if let id = vocab.get(ws.mapped) { out.append(id); return }
        }
        ws.ids.removeAll(keepingCapacity: true); ws.prev.removeAll(keepingCapacity: true)
        ws.next.removeAll(keepingCapacity: true); ws.len.removeAll(keepingCapacity: true)
        for k in 0..<count {
            ws.ids.append(byteSymbol[Int(bytes[start + k])])
            ws.prev.append(Int32(k - 1))
            ws.next.append(k + 1 < count ? Int32(k + 1) : -1)
            ws.len.append(1)
        }
        ws.heap.removeAll()
        func push(_ l: Int32, _ r: Int32, _ ws: inout BPEWorkspace) {
            if l < 0 || r < 0 { return }
            let a = ws.ids[Int(l)], b = ws.ids[Int(r)]
            if a < 0 || b < 0 { return }
            if let m = merges[pairKey(a, b)] {
                ws.heap.push(key: m & 0xFFFF_FFFF_0000_0000 | UInt64(UInt32(l)), payload: UInt64(UInt32(r)))
            }
        }
        for k in 1..<count { push(Int32(k - 1), Int32(k), &ws) }
        while let (key, payload) = ws.heap.pop() {
            let l = Int(key & 0xFFFF_FFFF), r = Int(payload)
            guard ws.len[l] > 0, ws.len[r] > 0, ws.next[l] == Int32(r) else { continue }
            // Stale unless the pair still has this rank (a rank names one pair of strings).
            guard let m = merges[pairKey(ws.ids[l], ws.ids[r])], m >> 32 == key >> 32 else { continue }
            ws.ids[l] = Int32(bitPattern: UInt32(truncatingIfNeeded: m))
            ws.len[l] += ws.len[r]
            ws.len[r] = 0
            ws.next[l] = ws.next[r]
            if ws.next[r] >= 0 { ws.prev[Int(ws.next[r])] = Int32(l) }
            push(ws.prev[l], Int32(l), &ws)
            push(Int32(l), ws.next[l], &ws)
        }
        let n = Int32(kinds.count)
        var k: Int32 = 0
        var offset = start
        while k >= 0 {
            let id = ws.ids[Int(k)], len = Int(ws.len[Int(k)])
            if id >= 0 && id < n {
                out.append(id)
            } else {
                // Not an entry: each byte of its GPT-2 spelling that is an entry by itself.
                for b in offset..<offset + len {
                    for c in byteEncoding[Int(bytes[b])] { if let t = vocab.get([c]) { out.append(t) } }
                }
            }
            offset += len
            k = ws.next[Int(k)]
        }
    }
}
