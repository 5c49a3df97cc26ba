// The pre-tokenizers of byte-level BPE vocabularies: the text is cut into words before BPE merges
// run inside each word. llama.cpp names a list of split patterns per `tokenizer.ggml.pre` value and
// applies them one after another, each pattern cutting every piece left by the previous one into
// its matches and the stretches between them. The patterns are implemented here as hand-written
// matchers over Unicode scalars with leftmost-first alternation, as a backtracking regex engine would
// run them.

/// A BPE pre-tokenizer: an ordered list of split stages.
struct PreTokenizer: Sendable {
    /// One split stage.
    enum Stage: Sendable {
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (GPT-2).
        case gpt2
        /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
        /// (Llama 3 with `maxDigits` 3; Qwen 2 with 1).
        case llama3(maxDigits: Int)
        /// `\p{N}`: every number character on its own.
        case eachNumber
        /// `\p{N}+`: runs of number characters.
        case numberRuns
        /// ``[\p{P}\$\+<=>\^`\|]``: every punctuation character (and those ASCII symbols) on its own.
        case eachPunctuation
        /// `[0-9][0-9][0-9]`: groups of three ASCII digits.
        case asciiDigitTriples
    }

    /// The stages, applied in order.
    let stages: [Stage]
    /// The `tokenizer.ggml.pre` value this was made for.
    let name: String

    /// The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value, or nil for one it does not know here.
    init?(pre: String) {
        name = pre
        switch pre {
        case "default", "":
            stages = [.eachPunctuation, .gpt2, .numberRuns, .asciiDigitTriples]
        case "gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "mpt", "olmo", "jais":
            stages = [.gpt2]
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral":
            stages = [.llama3(maxDigits: 3)]
        case "qwen2", "deepseek-r1-qwen":
            stages = [.llama3(maxDigits: 1)]
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            stages = [.eachNumber, .gpt2]
        default:
            return nil
        }
    }

    /// Valid-position bit in the per-scalar flags (positions past a piece's end read as 0).
    static let present: UInt8 = 0x80

    /// Splits `scalars` into words; returns each word's end offset (in scalars), ascending, the last being `scalars.count`.
    func split(_ scalars: [UInt32]) -> [Int] {
        let n = scalars.count
        if n == 0 { return [] }
        var flags = [UInt8](repeating: 0, count: n)
        for i in 0..<n { flags[i] = UnicodeClass.of(scalars[i]) | PreTokenizer.present }
        var ends = [n]
        var next: [Int] = []
        next.reserveCapacity(n / 2 + 4)
        scalars.withUnsafeBufferPointer { cps in
            flags.withUnsafeBufferPointer { fl in
                for stage in stages {
                    next.removeAll(keepingCapacity: true)
                    var start = 0
                    for end in ends {
                        PreTokenizer.apply(stage, cps, fl, start, end, &next)
                        start = end
                    }
                    swap(&ends, &next)
                }
            }
        }
        return ends
    }

    private static func apply(_ stage: Stage, _ cps: UnsafeBufferPointer<UInt32>, _ fl: UnsafeBufferPointer<UInt8>,
                              _ start: Int, _ end: Int, _ out: inout [Int]) {
        // Reads a position's flags, 0 outside [start, end).
        @inline(__always) func at(_ i: Int) -> UInt8 { i < end ? fl[i] : 0 }
        @inline(__always) func isLetter(_ f: UInt8) -> Bool { f & UnicodeClass.letter != 0 }
        @inline(__always) func isNumber(_ f: UInt8) -> Bool { f & UnicodeClass.number != 0 }
        @inline(__always) func isSpace(_ f: UInt8) -> Bool { f & UnicodeClass.whitespace != 0 }
        @inline(__always) func isOther(_ f: UInt8) -> Bool {
            f & present != 0 && f & (UnicodeClass.letter | UnicodeClass.number | UnicodeClass.whitespace) == 0
        }
        @inline(__always) func lower(_ c: UInt32) -> UInt32 { (c >= 65 && c <= 90) ? c + 32 : c }
        let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20, cr: UInt32 = 0x0D, lf: UInt32 = 0x0A

        // Contractions 's 't 'm 'd 're 've 'll at pos; returns their length or 0.
        func contraction(_ pos: Int, caseless: Bool) -> Int {
            guard cps[pos] == apostrophe, pos + 1 < end else { return 0 }
            let a = caseless ? lower(cps[pos + 1]) : cps[pos + 1]
            if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 2 }   // s t m d
            guard pos + 2 < end else { return 0 }
            let b = caseless ? lower(cps[pos + 2]) : cps[pos + 2]
            if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 }  // re ve ll
            return 0
        }

        switch stage {
        case .gpt2:
            var pos = start
            while pos < end {
                let c = cps[pos]
                let f = fl[pos]
                var len = contraction(pos, caseless: false)
                if len == 0 {
                    let f2 = c == space ? at(pos + 1) : f
                    let skip = c == space ? 1 : 0
                    if isLetter(f2) {
                        var p = pos + skip
                        while isLetter(at(p)) { p += 1 }
                        len = p - pos
                    } else if isNumber(f2) {
                        var p = pos + skip
                        while isNumber(at(p)) { p += 1 }
                        len = p - pos
                    } else if isOther(f2) {
                        var p = pos + skip
                        while isOther(at(p)) { p += 1 }
                        len = p - pos
                    } else {
                        var w = 0
                        while isSpace(at(pos + w)) { w += 1 }
                        if w > 1 && pos + w < end { len = w - 1 }      // \s+(?!\S)
                        else if w > 0 { len = w }                      // a lone space before \S, or a run at the end
                        else { len = 1 }
                    }
                }
                pos += len
                out.append(pos)
            }

        case .llama3(let maxDigits):
            var pos = start
            while pos < end {
                let c = cps[pos]
                let f = fl[pos]
                var len = contraction(pos, caseless: true)
                if len == 0 {
                    if !(c == cr || c == lf || isNumber(f)) && (isLetter(f) || isLetter(at(pos + 1))) {
                        // [^\r\n\p{L}\p{N}]?\p{L}+
                        var p = pos + 1
                        while isLetter(at(p)) { p += 1 }
                        len = p - pos
                    } else if isNumber(f) {
                        // \p{N}{1,maxDigits}
                        var p = pos + 1
                        while p - pos < maxDigits && isNumber(at(p)) { p += 1 }
                        len = p - pos
                    } else if isOther(c == space ? at(pos + 1) : f) {
                        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
                        var p = pos + (c == space ? 1 : 0)
                        while isOther(at(p)) { p += 1 }
                        while p < end && (cps[p] == cr || cps[p] == lf) { p += 1 }
                        len = p - pos
                    } else {
                        var w = 0
                        var lastBreak = 0   // offset just past the last \r or \n in the white-space run
                        while isSpace(at(pos + w)) {
                            let cc = cps[pos + w]
                            if cc == cr || cc == lf { lastBreak = w + 1 }
                            w += 1
                        }
                        if lastBreak > 0 { len = lastBreak }                 // \s*[\r\n]+
                        else if w > 1 && pos + w < end { len = w - 1 }       // \s+(?!\S)
                        else if w > 0 { len = w }                            // \s+
                        else { len = 1 }
                    }
                }
                pos += len
                out.append(pos)
            }

        case .eachNumber, .numberRuns, .eachPunctuation, .asciiDigitTriples:
            // Pattern stages: matches become pieces, and so does each stretch between them.
            var pos = start
            var gapStart = start
            while pos < end {
                var len = 0
                switch stage {
                case .eachNumber:
                    len = isNumber(fl[pos]) ? 1 : 0
                case .numberRuns:
                    while isNumber(at(pos + len)) { len += 1 }
                case .eachPunctuation:
                    let c = cps[pos]
                    if fl[pos] & UnicodeClass.punctuation != 0 { len = 1 }
                    else if c == 0x24 || c == 0x2B || c == 0x3C || c == 0x3D || c == 0x3E || c == 0x5E
                                || c == 0x60 || c == 0x7C { len = 1 }       // $ + < = > ^ ` |
                default:
                    if pos + 2 < end, (0x30...0x39).contains(cps[pos]), (0x30...0x39).contains(cps[pos + 1]),
                       (0x30...0x39).contains(cps[pos + 2]) { len = 3 }
                }
                if len == 0 { pos += 1; continue }
                if pos > gapStart { out.append(pos) }
                pos += len
                out.append(pos)
                gapStart = pos
            }
            if gapStart < end { out.append(end) }
        }
    }
}
