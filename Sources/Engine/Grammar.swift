// GBNF grammars, read as llama.cpp reads them (its grammars/ folder and users' .gbnf files work unchanged): rules
// `name ::= alternatives`, literals "..." with \x \u \U \t \r \n escapes, character classes [a-z] and [^...], `.`,
// groups ( ), repetition * + ? {m} {m,} {m,n}, `#` comments, token references <[id]> and !<[id]>, and the start
// rule `root`. Repetitions are rewritten into rules as llama.cpp rewrites them, so that the language, and what a
// greedy generation under it picks, are the same. GrammarMatcher.swift runs them.
import Foundation

/// A set of Unicode scalars: ranges, possibly negated (`.` is the negation of nothing).
public struct CharClass: Hashable, Sendable {
    public var ranges: [ClosedRange<UInt32>]
    public var negated: Bool

    /// Whether `c` is in the set.
    @inline(__always) public func contains(_ c: UInt32) -> Bool {
        var inside = false
        for r in ranges where r.contains(c) { inside = true; break }
        return inside != negated
    }

    /// Whether some scalar in `lo...hi` is in the set (for a character whose first bytes are known).
    func intersects(_ lo: UInt32, _ hi: UInt32) -> Bool {
        if !negated { return ranges.contains { $0.lowerBound <= hi && lo <= $0.upperBound } }
        // Negated: some scalar of lo...hi lies outside every range.
        var c = lo
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        for r in sorted {
            if r.upperBound < c { continue }
            if r.lowerBound > c { return true }
            if r.upperBound >= hi { return false }
            c = r.upperBound + 1
        }
        return c <= hi
    }
}

/// One symbol of a grammar's flat layout.
public enum GrammarSymbol: Hashable, Sendable {
    /// One character of the class.
    case chars(CharClass)
    /// A reference to rule n.
    case rule(Int)
    /// One token by id (`<[id]>`), or any token but it (`!<[id]>`).
    case token(Int32, negated: Bool)
    /// The end of an alternative.
    case end
}

/// A parsed GBNF grammar: every alternative of every rule laid out in one array of symbols, each ending with
/// `.end`, as positions a matcher's stacks point into.
public struct Grammar: Sendable {
    /// The symbols of all alternatives, each alternative ended by `.end`.
    public let symbols: [GrammarSymbol]
    /// For each rule, the positions where its alternatives start.
    public let alternatives: [[Int]]
    /// The rules' names (generated rules are named `NAME_N`, as llama.cpp names them).
    public let names: [String]
    /// The start rule (`root`).
    public let root: Int

    /// The most repetitions one `{m,n}` may ask for (llama.cpp's threshold).
    public static let maxRepetitions = 2000

    /// Parses `text`. Errors name the line and column and what was expected there.
    public init(_ text: String) throws {
        var p = GrammarParser(Array(text.utf8))
        try p.parseAll()
        guard let root = p.ids["root"] else { throw GrammarError(message: "the grammar has no rule 'root'", offset: nil, text: p.src) }
        for (name, id) in p.ids where p.rules[id] == nil {
            throw GrammarError(message: "rule '\(name)' is used but not defined", offset: p.firstUse[id], text: p.src)
        }
        var symbols: [GrammarSymbol] = [], alts: [[Int]] = [], names = [String](repeating: "", count: p.rules.count)
        for (name, id) in p.ids { names[id] = name }
        for id in 0..<p.rules.count {
            var starts: [Int] = []
            for seq in p.rules[id]! {
                starts.append(symbols.count)
                symbols.append(contentsOf: seq)
                symbols.append(.end)
            }
            alts.append(starts)
        }
        // Rule references point at rule ids; a rule that can start with itself without consuming a character would
        // make the matcher loop, as in llama.cpp: refused.
        let g = Grammar(symbols: symbols, alternatives: alts, names: names, root: root)
        if let r = g.leftRecursiveRule() {
            throw GrammarError(message: "rule '\(names[r])' is left-recursive (it can begin with itself); rewrite it with repetition", offset: nil, text: p.src)
        }
        self = g
    }

    private init(symbols: [GrammarSymbol], alternatives: [[Int]], names: [String], root: Int) {
        self.symbols = symbols
        self.alternatives = alternatives
        self.names = names
        self.root = root
    }

    /// Whether rule `r` can match the empty string.
    func nullable() -> [Bool] {
        var null = [Bool](repeating: false, count: alternatives.count)
        var changed = true
        while changed {
            changed = false
            for r in alternatives.indices where !null[r] {
                for start in alternatives[r] {
                    var p = start, ok = true
                    while symbols[p] != .end {
                        if case .rule(let q) = symbols[p], null[q] { p += 1; continue }
                        ok = false; break
                    }
                    if ok { null[r] = true; changed = true; break }
                }
            }
        }
        return null
    }

    /// A rule that can reach itself at the start of one of its alternatives (through nullable prefixes).
    func leftRecursiveRule() -> Int? {
        let null = nullable()
        var firsts = [[Int]](repeating: [], count: alternatives.count)
        for r in alternatives.indices {
            for start in alternatives[r] {
                var p = start
                while case .rule(let q) = symbols[p] {
                    firsts[r].append(q)
                    if !null[q] { break }
                    p += 1
                }
            }
        }
        var state = [UInt8](repeating: 0, count: alternatives.count)   // 0 new, 1 on the path, 2 done
        func visit(_ r: Int) -> Int? {
            if state[r] == 1 { return r }
            if state[r] == 2 { return nil }
            state[r] = 1
            for q in firsts[r] { if let found = visit(q) { return found } }
            state[r] = 2
            return nil
        }
        for r in alternatives.indices { if let found = visit(r) { return found } }
        return nil
    }
}

/// A grammar that does not parse, with where.
public struct GrammarError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let line: Int?
    public let column: Int?

    init(message: String, offset: Int?, text: [UInt8]) {
        self.message = message
        if let offset {
            let before = text[..<min(offset, text.count)]
            line = before.filter { $0 == 10 }.count + 1
            let lineStart = (before.lastIndex(of: 10) ?? -1) + 1
            column = String(decoding: text[lineStart..<min(offset, text.count)], as: UTF8.self).count + 1
        } else {
            line = nil
            column = nil
        }
    }

    public var description: String {
        if let line, let column { return "line \(line), column \(column): \(message)" }
        return message
    }
}

/// The parser: llama.cpp's grammar syntax over the text's bytes.
private struct GrammarParser {
    let src: [UInt8]
    var pos = 0
    var ids: [String: Int] = [:]
    var rules: [[[GrammarSymbol]]?] = []
    var firstUse: [Int: Int] = [:]

    init(_ src: [UInt8]) { self.src = src }

    var at: UInt8 { pos < src.count ? src[pos] : 0 }
    func peek(_ k: Int) -> UInt8 { pos + k < src.count ? src[pos + k] : 0 }

    func fail(_ message: String, at offset: Int? = nil) -> GrammarError {
        GrammarError(message: message, offset: offset ?? pos, text: src)
    }

    static func isWord(_ c: UInt8) -> Bool {
        (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 45 || (c >= 48 && c <= 57)
    }

    mutating func space(newlines: Bool) {
        while pos < src.count {
            let c = src[pos]
            if c == 32 || c == 9 || (newlines && (c == 13 || c == 10)) { pos += 1; continue }
            if c == 35 {   // '#' to the end of the line
                while pos < src.count && src[pos] != 13 && src[pos] != 10 { pos += 1 }
                continue
            }
            break
        }
    }

    mutating func name() throws -> String {
        let start = pos
        while GrammarParser.isWord(at) { pos += 1 }
        guard pos > start else { throw fail("expecting a rule name") }
        return String(decoding: src[start..<pos], as: UTF8.self)
    }

    mutating func id(_ name: String, usedAt offset: Int? = nil) -> Int {
        if let i = ids[name] { return i }
        let i = rules.count
        ids[name] = i
        rules.append(nil)
        if let offset { firstUse[i] = offset }
        return i
    }

    mutating func generated(_ base: String) -> Int {
        let i = rules.count
        ids["\(base)_\(i)"] = i
        rules.append(nil)
        return i
    }

    mutating func parseAll() throws {
        space(newlines: true)
        while pos < src.count {
            let start = pos
            let n = try name()
            space(newlines: false)
            guard at == 58, peek(1) == 58, peek(2) == 61 else { throw fail("expecting ::= after the rule name '\(n)'") }
            pos += 3
            space(newlines: true)
            let r = id(n)
            if rules[r] != nil { throw fail("rule '\(n)' is defined twice", at: start) }
            rules[r] = try alternatives(n, nested: false)
            if at == 13 { pos += peek(1) == 10 ? 2 : 1 } else if at == 10 { pos += 1 } else if pos < src.count {
                throw fail("expecting a newline or the end of the grammar")
            }
            space(newlines: true)
        }
    }

    mutating func alternatives(_ rule: String, nested: Bool) throws -> [[GrammarSymbol]] {
        var alts = [try sequence(rule, nested: nested)]
        while at == 124 {   // '|'
            pos += 1
            space(newlines: true)
            alts.append(try sequence(rule, nested: nested))
        }
        return alts
    }

    mutating func hex(_ digits: Int) throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<digits {
            let c = at
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 97...102: d = UInt32(c - 87)
            case 65...70: d = UInt32(c - 55)
            default: throw fail("expecting \(digits) hex digits")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    /// One character of a literal or a class: an escape, or a UTF-8 character.
    mutating func char() throws -> UInt32 {
        let c = at
        if pos >= src.count { throw fail("unexpected end of the grammar") }
        if c == 92 {   // '\'
            pos += 1
            let e = at
            pos += 1
            switch e {
            case 120: return try hex(2)   // x
            case 117: return try hex(4)   // u
            case 85: return try hex(8)    // U
            case 116: return 9
            case 114: return 13
            case 110: return 10
            case 92, 34, 91, 93, 45: return UInt32(e)
            default: pos -= 2; throw fail("unknown escape '\\\(String(UnicodeScalar(e)))'")
            }
        }
        // UTF-8, as llama.cpp's decode_utf8 reads it (an invalid lead byte is taken as itself).
        let n = c < 0x80 ? 1 : c >> 5 == 0b110 ? 2 : c >> 4 == 0b1110 ? 3 : c >> 3 == 0b11110 ? 4 : 1
        var v = UInt32(n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07)
        pos += 1
        for _ in 1..<n {
            guard pos < src.count else { break }
            v = v << 6 | UInt32(src[pos] & 0x3f)
            pos += 1
        }
        return v
    }

    mutating func integer() throws -> Int {
        let start = pos
        while at >= 48 && at <= 57 { pos += 1 }
        guard pos > start, let v = Int(String(decoding: src[start..<pos], as: UTF8.self)) else { throw fail("expecting an integer") }
        return v
    }

    mutating func sequence(_ rule: String, nested: Bool) throws -> [GrammarSymbol] {
        var seq: [GrammarSymbol] = []
        var lastStart = seq.count
        // A*, A+, A?, A{m,n} on the item from lastStart, rewritten into rules as llama.cpp does.
        func repeatLast(_ lo: Int, _ hi: Int?) throws {
            guard lastStart < seq.count else { throw fail("expecting an item before the repetition") }
            let item = Array(seq[lastStart...])
            seq.removeSubrange(lastStart...)
            for _ in 0..<lo { seq += item }
            if let hi {
                guard hi >= lo else { throw fail("the repetition's maximum \(hi) is below its minimum \(lo)") }
                var last: Int? = nil
                for _ in 0..<(hi - lo) {
                    let r = generated(rule)
                    rules[r] = [item + (last.map { [.rule($0)] } ?? []), []]
                    last = r
                }
                if let last { seq.append(.rule(last)) }
            } else {
                let r = generated(rule)
                rules[r] = [item + [.rule(r)], []]
                seq.append(.rule(r))
            }
        }
        while pos < src.count {
            let c = at
            if c == 34 {   // '"' literal
                pos += 1
                lastStart = seq.count
                while at != 34 {
                    if pos >= src.count { throw fail("unexpected end of the grammar inside a literal") }
                    let ch = try char()
                    seq.append(.chars(CharClass(ranges: [ch...ch], negated: false)))
                }
                pos += 1
                space(newlines: nested)
            } else if c == 91 {   // '[' class
                let open = pos
                pos += 1
                var negated = false
                if at == 94 { negated = true; pos += 1 }
                var ranges: [ClosedRange<UInt32>] = []
                while at != 93 {
                    if pos >= src.count { throw fail("unexpected end of the grammar inside a character class", at: open) }
                    let lo = try char()
                    if at == 45 && peek(1) != 93 {   // a-b
                        pos += 1
                        if pos >= src.count { throw fail("unexpected end of the grammar inside a character class", at: open) }
                        let hi = try char()
                        ranges.append(lo...max(lo, hi))
                    } else {
                        ranges.append(lo...lo)
                    }
                }
                pos += 1
                lastStart = seq.count
                seq.append(.chars(CharClass(ranges: ranges, negated: negated)))
                space(newlines: nested)
            } else if c == 60 || (c == 33 && peek(1) == 60) {   // <[id]> or !<[id]>
                let negated = c == 33
                if negated { pos += 1 }
                pos += 1
                guard at == 91 else { throw fail("expecting a token id as <[ID]> (token texts such as <|eot|> are not supported here)") }
                pos += 1
                let id = try integer()
                guard at == 93, peek(1) == 62 else { throw fail("expecting ]> after the token id") }
                pos += 2
                guard id <= Int(Int32.max) else { throw fail("token id \(id) is too large") }
                lastStart = seq.count
                seq.append(.token(Int32(id), negated: negated))
                space(newlines: nested)
            } else if GrammarParser.isWord(c) {
                let at0 = pos
                let n = try name()
                lastStart = seq.count
                seq.append(.rule(id(n, usedAt: at0)))
                space(newlines: nested)
            } else if c == 40 {   // '(' group
                pos += 1
                space(newlines: true)
                let r = generated(rule)
                rules[r] = try alternatives(rule, nested: true)
                guard at == 41 else { throw fail("expecting ')'") }
                pos += 1
                lastStart = seq.count
                seq.append(.rule(r))
                space(newlines: nested)
            } else if c == 46 {   // '.'
                pos += 1
                lastStart = seq.count
                seq.append(.chars(CharClass(ranges: [], negated: true)))
                space(newlines: nested)
            } else if c == 42 || c == 43 || c == 63 {   // * + ?
                pos += 1
                space(newlines: nested)
                try repeatLast(c == 43 ? 1 : 0, c == 63 ? 1 : nil)
            } else if c == 123 {   // {m}, {m,}, {m,n}
                pos += 1
                space(newlines: nested)
                let lo = try integer()
                space(newlines: nested)
                var hi: Int? = lo
                if at == 44 {
                    pos += 1
                    space(newlines: nested)
                    hi = at >= 48 && at <= 57 ? try integer() : nil
                    space(newlines: nested)
                }
                guard at == 125 else { throw fail("expecting '}'") }
                pos += 1
                space(newlines: nested)
                guard lo <= Grammar.maxRepetitions else { throw fail("at most \(Grammar.maxRepetitions) repetitions, got \(lo)") }
                if let h = hi, h > Grammar.maxRepetitions { hi = nil }
                try repeatLast(lo, hi)
            } else {
                break
            }
        }
        return seq
    }
}
