// Text → token ids, as llama.cpp's `llama_tokenize`: the text is first split at special tokens (`partition`), then
// each stretch of plain text goes to BPE (Tokenizer+BPE.swift) or SentencePiece (Tokenizer+SentencePiece.swift).

extension Tokenizer {
    /// Tokenizes `text` as llama.cpp's `llama_tokenize` does.
    ///
    /// - Parameters:
    ///   - addSpecial: nil: add BOS/EOS as the file says (``addBOS``, `add_eos_token`); true: add BOS whenever the
    ///     vocabulary has one (and EOS as the file says); false: add neither.
    ///   - parseSpecial: true: control tokens written in the text (`<|im_start|>`, `<start_of_turn>`) become their ids;
    ///     false: they are tokenized as plain text. User-defined entries are matched either way, as in llama.cpp.
    /// - Returns: the token ids.
    public func encode(_ text: String, addSpecial: Bool? = nil, parseSpecial: Bool = false) -> [Int32] {
        var out = [Int32]()
        let wantBOS = addSpecial.map { $0 && bos != nil } ?? addBOS
        let wantEOS = (addSpecial ?? true) && addEOS
        if wantBOS, let bos { out.append(bos) }
        let bytes = Array(text.utf8)
        let fragments = partition(bytes, parseSpecial: parseSpecial)
        switch model {
        case .bpe:
            for f in fragments {
                if f.token >= 0 { out.append(f.token) } else { bpeFragment(bytes, f.start, f.end, &out) }
            }
        case .spm:
            var prevSpecial = true
            for f in fragments {
                if f.token >= 0 { out.append(f.token); prevSpecial = true; continue }
                spmFragment(bytes[f.start..<f.end], prefixSpace: addSpacePrefix && prevSpecial, &out)
                prevSpecial = false
            }
        }
        if wantEOS, let eos { out.append(eos) }
        return out
    }

    /// The entry whose vocabulary text is exactly `text` (BPE vocabularies spell bytes as GPT-2 characters, e.g. "Ġthe";
    /// SentencePiece ones spell spaces as "▁").
    public func tokenID(_ text: String) -> Int32? { vocab.get(Array(text.utf8)) }

    /// A piece of the input: raw text [start, end) or a special token (`token >= 0`).
    struct Fragment { var start: Int; var end: Int; var token: Int32 }

    /// Splits the text at special-token occurrences, trying tokens longest first, each over all remaining raw text.
    func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        let n = bytes.count
        if n == 0 { return [] }
        // Which special tokens occur at all (and may be matched).
        var found = Set<Int32>()
        bytes.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let lengths = specialLengths[Int(p[i])]
                if lengths.isEmpty { continue }
                for len in lengths where len <= n - i {
                    if let id = specialTable.get(UnsafeBufferPointer(rebasing: p[i..<i + len])) {
                        let k = kinds[Int(id)]
                        if parseSpecial || !(k == .control || k == .unknown) { found.insert(id) }
                    }
                }
            }
        }
        var frags = [Fragment(start: 0, end: n, token: -1)]
        if found.isEmpty { return frags }
        for id in found.sorted(by: { specialOrder[$0]! < specialOrder[$1]! }) {
            let ts = tokenOffsets[Int(id)], te = tokenOffsets[Int(id) + 1]
            let len = te - ts
            let strip = rightStripped.contains(id)
            var next = [Fragment]()
            next.reserveCapacity(frags.count + 2)
            for f in frags {
                if f.token >= 0 { next.append(f); continue }
                var cursor = f.start
                var i = f.start
                while i + len <= f.end {
                    var match = true
                    for k in 0..<len where bytes[i + k] != tokenBytes[ts + k] { match = false; break }
                    if match {
                        if i > cursor { next.append(Fragment(start: cursor, end: i, token: -1)) }
                        next.append(Fragment(start: i, end: i, token: id))
                        i += len
                        if strip {
                            // C's isspace: space, \t, \n, \v, \f, \r.
                            while i < f.end, bytes[i] == 32 || (9...13).contains(bytes[i]) { i += 1 }
                        }
                        cursor = i
                    } else {
                        i += 1
                    }
                }
                if cursor < f.end { next.append(Fragment(start: cursor, end: f.end, token: -1)) }
            }
            frags = next
        }
        return frags
    }
}
