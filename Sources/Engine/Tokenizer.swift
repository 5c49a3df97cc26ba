// Text ↔ token ids for GGUF vocabularies, reproducing llama.cpp's tokenizer token for token:
// byte-level BPE (`tokenizer.ggml.model == "gpt2"`) with llama.cpp's pre-tokenizers, and
// SentencePiece-style vocabularies (`"llama"`) with score-ordered bigram merging and byte fallback.
//
// This file holds the `Tokenizer` type, its tables and the initializer that builds them; the rest, one concern
// a file: Tokenizer+Vocabulary.swift (reading `tokenizer.ggml.*` and building each table), Tokenizer+Encoding.swift
// (text → ids: special tokens, then BPE in Tokenizer+BPE.swift or SentencePiece in Tokenizer+SentencePiece.swift),
// Tokenizer+Decoding.swift (ids → text, whole or streamed), MinHeap.swift (the merge queue both merges use).

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
    let rightStripped: Set<Int32>           // special tokens that swallow the whitespace after them (Phi-3)

    /// Number of entries in the vocabulary.
    public var vocabularySize: Int { kinds.count }
    /// The vocabulary's byte trie for constrained generation, built on first use (GrammarMatcher.swift).
    let trieCache = TokenTrieCache()
    /// The beginning-of-sequence token, if the vocabulary has one.
    public let bos: Int32?
    /// The end-of-sequence token, if the vocabulary has one.
    public let eos: Int32?
    /// Whether encoding adds ``bos`` by default (`tokenizer.ggml.add_bos_token`, else llama.cpp's default for the vocabulary type).
    public let addBOS: Bool
    /// Tokens that end generation: EOS, end-of-turn, and the entries llama.cpp recognises by their text
    /// (`<|im_end|>`, `<end_of_turn>`, `<|endoftext|>`, `<|eot_id|>`, …, and fill-in-the-middle pad/repo/separator tokens).
    public let endOfGeneration: Set<Int32>

    /// Builds the tokenizer `v` describes; throws ``TokenizerError`` for a vocabulary type or pre-tokenizer this
    /// engine does not implement, or for inconsistent vocabulary arrays.
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
        let (bytes, offsets, table) = Tokenizer.entryTexts(v)
        var kinds = [TokenKind](repeating: .normal, count: n)
        if let types = v.types {
            for i in 0..<n { kinds[i] = TokenKind(rawValue: UInt8(clamping: max(0, types[i]))) ?? .undefined }
        }
        scores = v.scores ?? [Float](repeating: 0, count: n)

        // End of generation, as llama.cpp detects it; those entries also become control tokens.
        endOfGeneration = Tokenizer.endOfGenerationTokens(v, eos: eos, table: table, kinds: &kinds, valid: valid)
        self.kinds = kinds
        tokenBytes = bytes
        tokenOffsets = offsets
        vocab = table

        // Special tokens, in the order llama.cpp's partition tries them: longest first.
        let special = Tokenizer.specialTokens(kinds: kinds, offsets: offsets, bytes: bytes)
        specialOrder = special.order
        specialTable = special.table
        specialLengths = special.lengths
        rightStripped = Tokenizer.rightStrippedTokens(v, kinds: kinds, table: table)

        // GPT-2 byte ↔ character mapping.
        let gpt2 = Tokenizer.gpt2ByteMapping()
        byteEncoding = gpt2.encoding
        byteDecoding = gpt2.decoding

        // BPE merges: intern both sides and their concatenation; rank by position (the first occurrence wins).
        if model == .bpe, let mergeList = v.merges {
            let m = Tokenizer.mergeRanks(mergeList, vocabulary: table, count: n, byteEncoding: gpt2.encoding)
            merges = m.ranks
            byteSymbol = m.symbols
        } else {
            merges = [:]
            byteSymbol = [Int32](repeating: -1, count: 256)
        }

        // SentencePiece byte fallback tokens.
        byteTokens = model == .spm ? Tokenizer.byteFallbackTokens(table) : [Int32](repeating: -1, count: 256)
    }
}
