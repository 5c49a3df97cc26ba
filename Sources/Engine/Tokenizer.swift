// Text ↔ token ids for GGUF vocabularies, reproducing llama.cpp's tokenizer token for token:
// byte-level BPE (`tokenizer.ggml.model == "gpt2"`) with llama.cpp's pre-tokenizers, and
// SentencePiece-style vocabularies (`"llama"`) with score-ordered bigram merging and byte fallback.

/// An error while building a ``Tokenizer`` from a file's metadata.
public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    /// What went wrong, in one line.
    public let message: String
    /// The message.
    public var description: String { "tokenizer: \(message)" }
    init(_ message: String) { self.message = message }
}

/// The kinds of vocabulary entry, numbered as `tokenizer.ggml.token_type` numbers them.
enum TokenKind: UInt8 {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

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
}

/// Converts text to token ids and back, as llama.cpp does for the same GGUF file.
///
/// Immutable after construction; safe to share between threads.
public final class Tokenizer: @unchecked Sendable {
    enum Model { case bpe, spm }

    let model: Model
    let pre: PreTokenizer?
    /// BPE: a word that is itself a vocabulary entry is taken whole, without merges (Llama 3).
    let ignoreMerges: Bool
    let addSpacePrefix: Bool
    let addEOS: Bool

    // Vocabulary: texts in one buffer, kinds, scores, and text → id (a later duplicate wins, as in llama.cpp).
    let tokenBytes: [UInt8]
    let tokenOffsets: [Int]
    let kinds: [TokenKind]
    let scores: [Float]
    let vocab: ByteStringTable
    let unk: Int32?

    // BPE: merge ranks between interned strings (vocabulary ids, then extra ids for strings outside the vocabulary).
    /// (left, right) → rank << 32 | merged string's id.
    let merges: [UInt64: UInt64]
    /// Interned id of each byte's GPT-2 character, or -1 when the string appears nowhere.
    let byteSymbol: [Int32]
    /// GPT-2 byte → character (UTF-8) and character → byte.
    let byteEncoding: [[UInt8]]
    let byteDecoding: [UInt32: UInt8]

    // SentencePiece: the `<0xXX>` token of each byte (or -1).
    let byteTokens: [Int32]

    // Special tokens: control / user-defined / unknown entries, longest first.
    let specialOrder: [Int32: Int]          // id → rank in llama.cpp's partition order
    let specialTable: ByteStringTable       // text → id
    let specialLengths: [[Int]]             // by first byte: the distinct lengths of special texts starting with it

    /// Number of entries in the vocabulary.
    public var vocabularySize: Int { kinds.count }
    /// The beginning-of-sequence token, if the vocabulary has one.
    public let bos: Int32?
    /// The end-of-sequence token, if the vocabulary has one.
    public let eos: Int32?
    /// Whether encoding adds ``bos`` by default (`tokenizer.ggml.add_bos_token`, else llama.cpp's default for the vocabulary type).
    public let addBOS: Bool
    /// Tokens that end generation: EOS, end-of-turn, and the entries llama.cpp recognises by their text
    /// (`<|im_end|>`, `<end_of_turn>`, `<|endoftext|>`, `<|eot_id|>`, …, and fill-in-the-middle pad/repo/separator tokens).
    public let endOfGeneration: Set<Int32>

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
        do {
            try self.init(vocabulary: v)
        } catch let e as TokenizerError {
            throw TokenizerError("\(gguf.path): \(e.message)")
        }
    }

    init(vocabulary v: TokenizerVocabulary) throws {
        let n = v.tokens.count
        guard n > 0 else { throw TokenizerError("empty vocabulary") }
        if let t = v.types, t.count != n { throw TokenizerError("token_type has \(t.count) entries for \(n) tokens") }
        if let s = v.scores, s.count != n { throw TokenizerError("scores has \(s.count) entries for \(n) tokens") }

        // Vocabulary type and its llama.cpp defaults.
        var addBOS: Bool, addEOS = false, addSpacePrefix = false, ignoreMerges = false
        var bos: Int?, eos: Int?, unk: Int?
        switch v.model {
        case "gpt2":
            model = .bpe
            let preName = v.pre ?? "default"
            guard let p = PreTokenizer(pre: preName) else {
                throw TokenizerError("unknown BPE pre-tokenizer '\(preName)' (tokenizer.ggml.pre)")
            }
            pre = p
            guard v.merges != nil else { throw TokenizerError("BPE vocabulary without tokenizer.ggml.merges") }
            let llama3 = ["llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"].contains(preName)
            ignoreMerges = llama3
            addBOS = llama3
            bos = 11; eos = 11; unk = nil
        case "llama":
            model = .spm
            pre = nil
            addBOS = true; addSpacePrefix = true
            bos = 1; eos = 2; unk = 0
        default:
            throw TokenizerError("unsupported tokenizer model '\(v.model)' (tokenizer.ggml.model); supported: gpt2, llama")
        }
        func valid(_ id: Int?) -> Int? { id.flatMap { $0 >= 0 && $0 < n ? $0 : nil } }
        if let b = v.bos { bos = valid(b) }
        if let e = v.eos { eos = valid(e) }
        if let u = v.unk { unk = valid(u) }
        bos = valid(bos); eos = valid(eos); unk = valid(unk)
        if let b = v.addBOS { addBOS = b }
        if let e = v.addEOS { addEOS = e }
        if let s = v.addSpacePrefix { addSpacePrefix = s }
        self.ignoreMerges = ignoreMerges
        self.addSpacePrefix = model == .spm && addSpacePrefix
        self.addBOS = addBOS && bos != nil
        self.addEOS = addEOS && eos != nil
        self.bos = bos.map(Int32.init)
        self.eos = eos.map(Int32.init)
        self.unk = unk.map(Int32.init)

        // Texts, kinds, scores, and the text → id table.
        var bytes = [UInt8](); var offsets = [Int](); offsets.reserveCapacity(n + 1)
        var totalBytes = 0
        for t in v.tokens { totalBytes += t.count }
        bytes.reserveCapacity(totalBytes)
        var table = ByteStringTable(capacity: n, byteCapacity: totalBytes)
        for (i, t) in v.tokens.enumerated() {
            offsets.append(bytes.count)
            bytes.append(contentsOf: t)
            table.set(t, Int32(i))
        }
        offsets.append(bytes.count)
        var kinds = [TokenKind](repeating: .normal, count: n)
        if let types = v.types {
            for i in 0..<n { kinds[i] = TokenKind(rawValue: UInt8(clamping: max(0, types[i]))) ?? .undefined }
        }
        scores = v.scores ?? [Float](repeating: 0, count: n)

        // End of generation, as llama.cpp detects it; those entries also become control tokens.
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
        endOfGeneration = eog
        self.kinds = kinds
        tokenBytes = bytes
        tokenOffsets = offsets
        vocab = table

        // Special tokens, in the order llama.cpp's partition tries them: longest first.
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
        specialOrder = order
        specialTable = stable
        specialLengths = lengthSets.map { $0.sorted(by: >) }

        // GPT-2 byte ↔ character mapping.
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
        byteEncoding = enc
        byteDecoding = dec

        // BPE merges: intern both sides and their concatenation; rank by position (the first occurrence wins).
        var ranks = [UInt64: UInt64]()
        var symbols = [Int32](repeating: -1, count: 256)
        if model == .bpe, let mergeList = v.merges {
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
        }
        merges = ranks
        byteSymbol = symbols

        // SentencePiece byte fallback tokens.
        var byteToks = [Int32](repeating: -1, count: 256)
        if model == .spm {
            let hex = Array("0123456789ABCDEF".utf8)
            for b in 0..<256 {
                let name: [UInt8] = [0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E]   // <0xXX>
                byteToks[b] = table.get(name) ?? table.get([UInt8(b)]) ?? -1
            }
        }
        byteTokens = byteToks
    }

    // MARK: - Encoding

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

    // MARK: BPE

    private func bpeFragment(_ bytes: [UInt8], _ start: Int, _ end: Int, _ out: inout [Int32]) {
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

    // MARK: SentencePiece

    private func spmFragment(_ raw: ArraySlice<UInt8>, prefixSpace: Bool, _ out: inout [Int32]) {
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

    // MARK: - Decoding

    /// The bytes a token stands for, as llama.cpp's `token_to_piece` renders it.
    ///
    /// Control and unknown tokens render as their text when `special` is true and as nothing otherwise;
    /// user-defined tokens always render as their text; unused entries render as nothing.
    /// Out-of-range ids render as nothing.
    public func piece(_ id: Int32, special: Bool = false) -> [UInt8] {
        guard id >= 0 && Int(id) < kinds.count else { return [] }
        let text = tokenBytes[tokenOffsets[Int(id)]..<tokenOffsets[Int(id) + 1]]
        switch kinds[Int(id)] {
        case .control, .unknown:
            return special ? Array(text) : []
        case .userDefined:
            return Array(text)
        case .normal:
            return model == .spm ? unescapeSpaces(text) : decodeGPT2(text)
        case .byte:
            if model == .spm { return byteValue(text).map { [$0] } ?? [] }
            return []
        case .unused, .undefined:
            return []
        }
    }

    /// Concatenates the tokens' pieces and decodes them as UTF-8, replacing invalid sequences with U+FFFD.
    public func decode(_ ids: [Int32], special: Bool = false) -> String {
        var bytes = [UInt8]()
        for id in ids { bytes.append(contentsOf: piece(id, special: special)) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A decoder for tokens arriving one at a time, which yields only complete UTF-8 characters.
    public func makeStreamDecoder(special: Bool = false) -> TokenStreamDecoder {
        TokenStreamDecoder(tokenizer: self, special: special)
    }

    private func unescapeSpaces(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8](); out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == 0xE2, i + 2 < text.endIndex, text[i + 1] == 0x96, text[i + 2] == 0x81 {
                out.append(0x20); i += 3
            } else {
                out.append(text[i]); i += 1
            }
        }
        return out
    }

    /// GPT-2 characters back to bytes; a character outside the mapping is kept as its UTF-8.
    private func decodeGPT2(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out = [UInt8](); out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            let b0 = text[i]
            let len = min(b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4, text.endIndex - i)
            var v = UInt32(b0)
            if len == 2 { v = (v & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F) }
            if len == 3 { v = (v & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F) }
            if let b = byteDecoding[v], len <= 2 { out.append(b) } else { out.append(contentsOf: text[i..<i + len]) }
            i += len
        }
        return out
    }

    /// The byte of a `<0xXX>` entry.
    private func byteValue(_ text: ArraySlice<UInt8>) -> UInt8? {
        guard text.count == 6 else { return text.count == 1 ? text.first : nil }
        return UInt8(String(decoding: text.dropFirst(3).prefix(2), as: UTF8.self), radix: 16)
    }
}

/// Turns tokens arriving one at a time into text, holding back the bytes of a UTF-8 character that is not yet
/// complete until the tokens that complete it arrive. Make one with ``Tokenizer/makeStreamDecoder(special:)``.
public struct TokenStreamDecoder {
    let tokenizer: Tokenizer
    let special: Bool
    var pending: [UInt8] = []

    /// Adds a token; returns the text that is now complete (possibly empty).
    public mutating func push(_ id: Int32) -> String {
        pending.append(contentsOf: tokenizer.piece(id, special: special))
        let keep = TokenStreamDecoder.incompleteTail(pending)
        if keep == pending.count { return "" }
        let ready = pending[..<(pending.count - keep)]
        let text = String(decoding: ready, as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Ends the stream: returns what is still held, invalid bytes replaced with U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many trailing bytes form the valid start of a UTF-8 character still missing bytes.
    static func incompleteTail(_ b: [UInt8]) -> Int {
        let n = b.count
        var i = n - 1
        // Find the last lead byte among the final three.
        while i >= 0 && i >= n - 3 && b[i] & 0xC0 == 0x80 { i -= 1 }
        guard i >= 0, i >= n - 3 else { return 0 }
        let lead = b[i]
        let need: Int
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0...0xEF: need = 3
        case 0xF0...0xF4: need = 4
        default: return 0
        }
        let have = n - i
        guard have < need else { return 0 }
        // The second byte's range depends on the lead (no overlongs, surrogates or values past U+10FFFF).
        if have >= 2 {
            let c = b[i + 1]
            let ok: Bool
            switch lead {
            case 0xE0: ok = (0xA0...0xBF).contains(c)
            case 0xED: ok = (0x80...0x9F).contains(c)
            case 0xF0: ok = (0x90...0xBF).contains(c)
            case 0xF4: ok = (0x80...0x8F).contains(c)
            default: ok = true
            }
            if !ok { return 0 }
        }
        return have
    }
}

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
