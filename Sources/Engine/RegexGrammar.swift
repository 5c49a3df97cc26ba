// The `regex` and `choices` constraints, as GBNF grammars for the matcher (GrammarMatcher.swift). A regular
// expression is matched whole (as SGLang's `gen(regex=...)` and vLLM's guided_regex match it): `^` at its start and
// `$` at its end are allowed and change nothing. The subset: literals and escapes (\. \\ \n \t \r \f \v \xHH
// \uHHHH), classes [a-z] [^...] with \d \w \s inside, `.` (any character but a line break, as in Python and
// JavaScript), \d \w \s \D \W \S, groups ( ) and (?: ), alternation |, and the quantifiers * + ? {m} {m,} {m,n}
// (a lazy `?` after one is accepted: the language is the same). Back-references, look-around and anchors inside
// are refused with their position.
import Foundation

/// Grammars made from other constraint forms.
public enum ConstraintGrammar {
    /// The GBNF grammar that accepts exactly the strings `pattern` matches whole.
    public static func regex(_ pattern: String) throws -> String {
        var p = RegexParser(Array(pattern.unicodeScalars))
        let body = try p.parse()
        return "root ::= " + body + "\n"
    }

    /// The GBNF grammar that accepts exactly one of `choices`.
    public static func choices(_ choices: [String]) throws -> String {
        guard !choices.isEmpty else { throw EngineError.badInput("choices: give at least one string") }
        if let i = choices.firstIndex(of: "") { throw EngineError.badInput("choices: choice \(i + 1) is empty") }
        return "root ::= " + choices.map(literal).joined(separator: " | ") + "\n"
    }

    /// A GBNF literal for `s`, every character that is not plain ASCII written as an escape.
    static func literal(_ s: String) -> String {
        "\"" + s.unicodeScalars.map(escape).joined() + "\""
    }

    static func escape(_ c: Unicode.Scalar) -> String {
        switch c {
        case "\"": return "\\\""
        case "\\": return "\\\\"
        case "[", "]", "-", "^": return "\\x" + String(format: "%02X", c.value)
        default:
            if c.value >= 0x20 && c.value < 0x7F { return String(c) }
            if c.value <= 0xFF { return String(format: "\\x%02X", c.value) }
            if c.value <= 0xFFFF { return String(format: "\\u%04X", c.value) }
            return String(format: "\\U%08X", c.value)
        }
    }
}

/// A regular expression read into GBNF text.
private struct RegexParser {
    let s: [Unicode.Scalar]
    var i = 0

    init(_ s: [Unicode.Scalar]) { self.s = s }

    var at: Unicode.Scalar? { i < s.count ? s[i] : nil }

    func fail(_ message: String, at pos: Int? = nil) -> EngineError {
        EngineError.badInput("regex: position \((pos ?? i) + 1): \(message)")
    }

    mutating func parse() throws -> String {
        if at == "^" { i += 1 }
        let body = try alternation()
        if at == "$" { i += 1 }
        guard i == s.count else {
            if at == ")" { throw fail("unbalanced ')'") }
            throw fail("unexpected '\(at!)' (anchors are allowed only at the start and the end)")
        }
        return body
    }

    mutating func alternation() throws -> String {
        var alts = [try sequence()]
        while at == "|" {
            i += 1
            alts.append(try sequence())
        }
        return alts.count == 1 ? alts[0] : "(" + alts.joined(separator: " | ") + ")"
    }

    mutating func sequence() throws -> String {
        var items: [String] = []
        while let c = at, c != "|", c != ")" {
            if c == "$" && i == s.count - 1 { break }
            var item = try atom()
            item = try quantified(item)
            items.append(item)
        }
        return items.isEmpty ? "\"\"" : items.joined(separator: " ")
    }

    mutating func quantified(_ item: String) throws -> String {
        guard let c = at else { return item }
        var out = item
        switch c {
        case "*", "+", "?":
            i += 1
            out = "(" + item + ")" + String(c)
        case "{":
            let start = i
            i += 1
            func number() -> Int? {
                let from = i
                while let d = at, ("0"..."9").contains(d) { i += 1 }
                return from == i ? nil : Int(String(String.UnicodeScalarView(s[from..<i])))
            }
            guard let lo = number() else { throw fail("expecting a number after '{'", at: start) }
            var hi: Int? = lo
            if at == "," {
                i += 1
                hi = number()
            }
            guard at == "}" else { throw fail("expecting '}'") }
            i += 1
            if let hi, hi < lo { throw fail("the repetition's maximum \(hi) is below its minimum \(lo)", at: start) }
            guard lo <= Grammar.maxRepetitions, (hi ?? 0) <= Grammar.maxRepetitions else {
                throw fail("at most \(Grammar.maxRepetitions) repetitions", at: start)
            }
            out = "(" + item + ")" + (hi == lo ? "{\(lo)}" : hi.map { "{\(lo),\($0)}" } ?? "{\(lo),}")
        default:
            return item
        }
        if at == "?" { i += 1 }   // lazy: the same language
        if let c = at, ["*", "+", "?", "{"].contains(c) { throw fail("a quantifier after a quantifier") }
        return out
    }

    mutating func atom() throws -> String {
        let c = at!
        switch c {
        case "(":
            let open = i
            i += 1
            if at == "?" {
                i += 1
                guard at == ":" else { throw fail("only non-capturing groups (?:...) are supported, not look-around or flags", at: open) }
                i += 1
            }
            let inner = try alternation()
            guard at == ")" else { throw fail("expecting ')' to close the group", at: open) }
            i += 1
            return "(" + inner + ")"
        case "[":
            return try charClass()
        case ".":
            i += 1
            return "[^\\x0A\\x0D]"
        case "\\":
            i += 1
            guard let e = at else { throw fail("a '\\' at the end") }
            i += 1
            if let cls = RegexParser.classEscape(e) { return "[" + (cls.negated ? "^" : "") + cls.body + "]" }
            if ("1"..."9").contains(e) { throw fail("back-references are not supported", at: i - 2) }
            if ["b", "B", "A", "z", "Z"].contains(e) { throw fail("the anchor \\\(e) is not supported", at: i - 2) }
            return ConstraintGrammar.literal(String(try literalEscape(e)))
        case "*", "+", "?", "{":
            throw fail("'\(c)' with nothing before it to repeat")
        case "^", "$":
            throw fail("anchors are allowed only at the start and the end")
        default:
            i += 1
            return ConstraintGrammar.literal(String(c))
        }
    }

    /// \d \w \s and their negations, as a class body.
    static func classEscape(_ e: Unicode.Scalar) -> (body: String, negated: Bool)? {
        switch e {
        case "d": return ("0-9", false)
        case "D": return ("0-9", true)
        case "w": return ("a-zA-Z0-9_", false)
        case "W": return ("a-zA-Z0-9_", true)
        case "s": return (" \\t\\n\\r\\x0B\\x0C", false)
        case "S": return (" \\t\\n\\r\\x0B\\x0C", true)
        default: return nil
        }
    }

    mutating func hex(_ n: Int) throws -> Unicode.Scalar {
        guard i + n <= s.count, let v = UInt32(String(String.UnicodeScalarView(s[i..<(i + n)])), radix: 16),
              let u = Unicode.Scalar(v) else { throw fail("expecting \(n) hex digits") }
        i += n
        return u
    }

    /// The character an escape stands for (after the backslash).
    mutating func literalEscape(_ e: Unicode.Scalar) throws -> Unicode.Scalar {
        switch e {
        case "n": return "\n"
        case "t": return "\t"
        case "r": return "\r"
        case "f": return "\u{0C}"
        case "v": return "\u{0B}"
        case "0": return "\u{0}"
        case "x": return try hex(2)
        case "u": return try hex(4)
        default:
            if e.properties.isAlphabetic || ("0"..."9").contains(e) { throw fail("unknown escape '\\\(e)'", at: i - 2) }
            return e
        }
    }

    mutating func charClass() throws -> String {
        let open = i
        i += 1
        var negated = false
        if at == "^" { negated = true; i += 1 }
        var body = ""
        var first = true
        while true {
            guard let c = at else { throw fail("expecting ']' to close the class", at: open) }
            if c == "]" && !first { i += 1; break }
            first = false
            var lo: Unicode.Scalar
            if c == "\\" {
                i += 1
                guard let e = at else { throw fail("a '\\' at the end") }
                i += 1
                if let cls = RegexParser.classEscape(e) {
                    if cls.negated { throw fail("\\\(e) inside a class is not supported (write the class out)", at: i - 2) }
                    body += cls.body
                    continue
                }
                lo = try literalEscape(e)
            } else {
                lo = c
                i += 1
            }
            if at == "-", i + 1 < s.count, s[i + 1] != "]" {
                i += 1
                var hi: Unicode.Scalar
                if at == "\\" {
                    i += 1
                    guard let e = at else { throw fail("a '\\' at the end") }
                    i += 1
                    hi = try literalEscape(e)
                } else {
                    hi = at!
                    i += 1
                }
                guard hi.value >= lo.value else { throw fail("the range \(lo)-\(hi) is backwards", at: open) }
                body += ConstraintGrammar.escape(lo) + "-" + ConstraintGrammar.escape(hi)
            } else {
                body += ConstraintGrammar.escape(lo)
            }
        }
        return "[" + (negated ? "^" : "") + body + "]"
    }
}
