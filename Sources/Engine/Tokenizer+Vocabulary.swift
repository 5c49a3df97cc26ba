// Building a tokenizer from a GGUF file: the `tokenizer.ggml.*` keys read into a `TokenizerVocabulary`, and the
// steps of `Tokenizer.init(vocabulary:)` that build its tables (texts, end of generation, special tokens, the
// GPT-2 byte mapping, BPE merge ranks, SentencePiece byte fallback), each as llama.cpp builds it.

/// Everything a tokenizer is built from, as read from a GGUF file's `tokenizer.ggml.*` keys.
struct TokenizerVocabulary {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece-style).
    var model: String
    /// `tokenizer.ggml.pre` (BPE only).
    var pre: String? = nil
    /// The entries' texts, as the vocabulary spells them.
    var tokens: [[UInt8]]
    /// `tokenizer.ggml.token_type`; nil: all normal.
    var types: [Int]? = nil
    /// `tokenizer.ggml.scores` (SentencePiece).
    var scores: [Float]? = nil
    /// `tokenizer.ggml.merges` (BPE), "left right" per line, most preferred first.
    var merges: [[UInt8]]? = nil
    var bos: Int? = nil, eos: Int? = nil, unk: Int? = nil, eot: Int? = nil, eom: Int? = nil
    var fimPad: Int? = nil, fimRep: Int? = nil, fimSep: Int? = nil
    var addBOS: Bool? = nil, addEOS: Bool? = nil, addSpacePrefix: Bool? = nil
    /// `general.name`, lowercased: llama.cpp gives some models' special tokens attributes by it (Phi-3's strip the
    /// whitespace after them).
    var modelName: String? = nil
}

extension Tokenizer {
    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*`).
    ///
    /// Throws ``TokenizerError`` for a vocabulary type or BPE pre-tokenizer this engine does not implement, naming it,
    /// or for missing or inconsistent vocabulary arrays.
    public convenience init(gguf: GGUFFile) throws {
        guard let model = gguf.string("tokenizer.ggml.model") else {
            throw TokenizerError("\(gguf.path): no tokenizer.ggml.model")
        }
        guard let tokens = gguf.array("tokenizer.ggml.tokens")?.byteStrings() else {
            throw TokenizerError("\(gguf.path): no tokenizer.ggml.tokens string array")
        }
        var v = TokenizerVocabulary(model: model, tokens: tokens)
        v.pre = gguf.string("tokenizer.ggml.pre")
        v.types = gguf.array("tokenizer.ggml.token_type")?.ints()
        v.scores = gguf.array("tokenizer.ggml.scores")?.floats()
        v.merges = gguf.array("tokenizer.ggml.merges")?.byteStrings()
        v.bos = gguf.int("tokenizer.ggml.bos_token_id")
        v.eos = gguf.int("tokenizer.ggml.eos_token_id")
        v.unk = gguf.int("tokenizer.ggml.unknown_token_id")
        v.eot = gguf.int("tokenizer.ggml.eot_token_id")
        v.eom = gguf.int("tokenizer.ggml.eom_token_id")
        v.fimPad = gguf.int("tokenizer.ggml.fim_pad_token_id")
        v.fimRep = gguf.int("tokenizer.ggml.fim_rep_token_id")
        v.fimSep = gguf.int("tokenizer.ggml.fim_sep_token_id")
        v.addBOS = gguf.bool("tokenizer.ggml.add_bos_token")
        v.addEOS = gguf.bool("tokenizer.ggml.add_eos_token")
        v.addSpacePrefix = gguf.bool("tokenizer.ggml.add_space_prefix")
        v.modelName = gguf.string("general.name")?.lowercased()
        do {
            try self.init(vocabulary: v)
        } catch let e as TokenizerError {
            throw TokenizerError("\(gguf.path): \(e.message)")
        }
    }

    /// The entries' texts in one buffer (an empty entry named as llama.cpp names it) with their offsets, and the
    /// text → id table (a later duplicate wins, as in llama.cpp).
    static func entryTexts(_ v: TokenizerVocabulary) -> (bytes: [UInt8], offsets: [Int], table: ByteStringTable) {
        let n = v.tokens.count
        var bytes = [UInt8](); var offsets = [Int](); offsets.reserveCapacity(n + 1)
        var totalBytes = 0
        for t in v.tokens { totalBytes += max(t.count, 16) }
        bytes.reserveCapacity(totalBytes)
        var table = ByteStringTable(capacity: n, byteCapacity: totalBytes)
        for (i, entry) in v.tokens.enumerated() {
            // llama.cpp names an empty entry "[EMPTY_<id>]".
            let t = entry.isEmpty ? Array("[EMPTY_\(i)]".utf8) : entry
            offsets.append(bytes.count)
            bytes.append(contentsOf: t)
            table.set(t, Int32(i))
        }
        offsets.append(bytes.count)
        return (bytes, offsets, table)
    }

    /// The special tokens that swallow the whitespace after them when the text is split at special tokens: llama.cpp
    /// gives every control, user-defined and unknown entry of a model whose `general.name` says "phi-3" or "phi3"
    /// that attribute (and `</s>`; not `<unk>`, `<s>`, `<|endoftext|>`); no other model has it.
    static func rightStrippedTokens(_ v: TokenizerVocabulary, kinds: [TokenKind], table: ByteStringTable) -> Set<Int32> {
        guard let name = v.modelName, name.contains("phi-3") || name.contains("phi3") else { return [] }
        var out = Set<Int32>()
        for (i, k) in kinds.enumerated() where k == .control || k == .userDefined || k == .unknown { out.insert(Int32(i)) }
        if let id = table.get(Array("</s>".utf8)) { out.insert(id) }
        for t in ["<unk>", "<s>", "<|endoftext|>"] { if let id = table.get(Array(t.utf8)) { out.remove(id) } }
        return out
    }

    /// The tokens that end generation, as llama.cpp detects them (the file's EOS, EOT, EOM and fill-in-the-middle
    /// ids, and entries recognised by their text); those found by their text become control tokens in `kinds`.
    static func endOfGenerationTokens(_ v: TokenizerVocabulary, eos: Int?, table: ByteStringTable,
                                      kinds: inout [TokenKind], valid: (Int?) -> Int?) -> Set<Int32> {
        var eog = Set<Int32>()
        var eot = valid(v.eot), eom = valid(v.eom)
        var fimPad = valid(v.fimPad), fimRep = valid(v.fimRep), fimSep = valid(v.fimSep)
        func lookup(_ s: String) -> Int? { table.get(Array(s.utf8)).map(Int.init) }
        func detect(_ texts: [String]) -> Int? {
            for t in texts { if let id = lookup(t) { kinds[id] = .control; return id } }
            return nil
        }
        if eot == nil {
            eot = detect(["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
                          "<｜end▁of▁sentence｜>", "<end_of_utterance>"])
        }
        if eom == nil { eom = detect(["<|eom_id|>"]) }
        for texts in [["<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>"],
                      ["<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>"],
                      ["<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>"]] {
            _ = detect(texts)
        }
        if fimPad == nil { fimPad = detect(["<|fim_pad|>", "<fim-pad>", "<PAD>"]) }
        if fimRep == nil { fimRep = detect(["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]) }
        if fimSep == nil { fimSep = detect(["<|file_sep|>"]) }
        for id in [fimPad, fimRep, fimSep] { if let id { eog.insert(Int32(id)) } }
        for t in ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
                  "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>"] {
            if let id = lookup(t) { eog.insert(Int32(id)); kinds[id] = .control }
        }
        for id in [eos, eot, eom] { if let id { eog.insert(Int32(id)) } }
        return eog
    }

    /// The control, user-defined and unknown entries, longest first: each one's rank, a text → id table of them,
    /// and by first byte the distinct lengths of their texts (longest first).
    static func specialTokens(kinds: [TokenKind], offsets: [Int], bytes: [UInt8])
        -> (order: [Int32: Int], table: ByteStringTable, lengths: [[Int]]) {
        let n = kinds.count
        var specials = [Int32]()
        for i in 0..<n where kinds[i] == .control || kinds[i] == .userDefined || kinds[i] == .unknown {
            if offsets[i + 1] > offsets[i] { specials.append(Int32(i)) }
        }
        specials.sort { a, b in
            let la = offsets[Int(a) + 1] - offsets[Int(a)], lb = offsets[Int(b) + 1] - offsets[Int(b)]
            return la != lb ? la > lb : a < b
        }
        var order = [Int32: Int](minimumCapacity: specials.count)
        var stable = ByteStringTable(capacity: specials.count)
        var lengthSets = [Set<Int>](repeating: [], count: 256)
        for (rank, id) in specials.enumerated() {
            order[id] = rank
            let s = offsets[Int(id)], e = offsets[Int(id) + 1]
            let text = Array(bytes[s..<e])
            if stable.get(text) == nil { stable.set(text, id) }
            lengthSets[Int(text[0])].insert(text.count)
        }
        return (order, stable, lengthSets.map { $0.sorted(by: >) })
    }

    /// GPT-2's byte ↔ character mapping: each byte's character as UTF-8, and each character's code point → byte.
    static func gpt2ByteMapping() -> (encoding: [[UInt8]], decoding: [UInt32: UInt8]) {
        var enc = [[UInt8]](repeating: [], count: 256)
        var dec = [UInt32: UInt8]()
        var extraCode: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            let cp: UInt32
            if printable { cp = UInt32(b) } else { cp = extraCode; extraCode += 1 }
            enc[b] = Array(String(Character(Unicode.Scalar(cp)!)).utf8)
            dec[cp] = UInt8(b)
        }
        return (enc, dec)
    }

    /// BPE merge ranks: (left, right) → rank << 32 | merged string's id, between strings interned as vocabulary ids
    /// (then extra ids from `n` on); and each byte's GPT-2 character's interned id (-1: it appears nowhere).
    static func mergeRanks(_ mergeList: [[UInt8]], vocabulary table: ByteStringTable, count n: Int,
                           byteEncoding enc: [[UInt8]]) -> (ranks: [UInt64: UInt64], symbols: [Int32]) {
        var ranks = [UInt64: UInt64]()
        var symbols = [Int32](repeating: -1, count: 256)
        ranks.reserveCapacity(mergeList.count)
        var extra = ByteStringTable(capacity: 1024)
        var nextExtra = Int32(n)
        func intern(_ s: UnsafeBufferPointer<UInt8>) -> Int32 {
            if let id = table.get(s) { return id }
            if let id = extra.get(s) { return id }
            extra.set(s, nextExtra); nextExtra += 1
            return nextExtra - 1
        }
        var joined = [UInt8](); joined.reserveCapacity(64)
        for (rank, line) in mergeList.enumerated() {
            guard line.count > 1, let space = line[1...].firstIndex(of: 0x20) else { continue }
            let (l, r, j) = line.withUnsafeBufferPointer { p -> (Int32, Int32, Int32) in
                let l = intern(UnsafeBufferPointer(rebasing: p[0..<space]))
                let r = intern(UnsafeBufferPointer(rebasing: p[(space + 1)...]))
                joined.removeAll(keepingCapacity: true)
                joined.append(contentsOf: p[0..<space]); joined.append(contentsOf: p[(space + 1)...])
                let j = joined.withUnsafeBufferPointer { intern($0) }
                return (l, r, j)
            }
            let key = UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
            if ranks[key] == nil { ranks[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: j)) }
        }
        for b in 0..<256 {
            symbols[b] = table.get(enc[b]) ?? extra.get(enc[b]) ?? -1
        }
        return (ranks, symbols)
    }

    /// SentencePiece byte fallback: the `<0xXX>` entry of each byte (else the byte as a one-byte entry, else -1).
    static func byteFallbackTokens(_ table: ByteStringTable) -> [Int32] {
        var byteToks = [Int32](repeating: -1, count: 256)
        let hex = Array("0123456789ABCDEF".utf8)
        for b in 0..<256 {
            let name: [UInt8] = [0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E]   // <0xXX>
            byteToks[b] = table.get(name) ?? table.get([UInt8(b)]) ?? -1
        }
        return byteToks
    }
}
