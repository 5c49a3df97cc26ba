// Character classes for the BPE pre-tokenizers: the few distinctions their split patterns make
// (\p{L}, \p{N}, \p{P}, \s), taken from the Unicode general category and White_Space property.

/// Per-scalar class bits used by the pre-tokenizer matchers.
///
/// `letter` is general category L*, `number` is N*, `punctuation` is P*, `whitespace` is the
/// Unicode White_Space property (the same set llama.cpp's tables call whitespace). Everything else
/// (marks, symbols, separators that are not white space, controls, unassigned) has none of these bits.
enum UnicodeClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    static let punctuation: UInt8 = 8

    /// Precomputed classes for the first two planes, where nearly all text lives.
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0, count: tableSize)
        for v in 0..<tableSize { t[v] = compute(UInt32(v)) }
        return t
    }()
    private static let tableSize = 0x20000

    /// The class bits of a scalar value.
    @inline(__always)
    static func of(_ v: UInt32) -> UInt8 {
        if v < UInt32(tableSize) { return table[Int(v)] }
        return compute(v)
    }

    private static func compute(_ v: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(v) else { return 0 }   // surrogate code points: no class
        let p = s.properties
        var f: UInt8 = p.isWhitespace ? whitespace : 0
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            f |= letter
        case .decimalNumber, .letterNumber, .otherNumber:
            f |= number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            f |= punctuation
        default:
            break
        }
        return f
    }
}
