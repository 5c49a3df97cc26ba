// JSON text as the JSON-schema converter needs it: objects keep their members' order (a schema's property order is
// the order the grammar asks the model for them), integers stay apart from fractional numbers (`minItems: 2.0` is
// not an integer), and a value is written back as llama.cpp's JSON library writes it (`dump()`: no spaces, UTF-8
// kept, shortest round-trip numbers), because a `const` or `enum` value becomes a grammar literal in that form.
import Foundation

/// A JSON value whose objects keep their members' order.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.dump() == b.dump() }

    /// Parses `text` (one JSON value, blanks around it allowed); the error names the byte offset and what was
    /// expected there.
    public static func parse(_ text: String) throws -> JSONValue {
        var p = JSONReader(Array(text.utf8))
        p.blanks()
        let v = try p.value(depth: 0)
        p.blanks()
        guard p.i == p.b.count else { throw p.fail("expected the end of the text after a complete value") }
        return v
    }

    /// The member `key` of an object (nil for a missing member or a non-object).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    /// Whether this is an object with a member `key`.
    public func has(_ key: String) -> Bool { self[key] != nil }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// The value as compact JSON text, written as nlohmann::json's `dump()` writes it.
    public func dump() -> String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .integer(let i): out += String(i)
        case .number(let d): out += JSONValue.format(d)
        case .string(let s): JSONValue.quote(s, into: &out)
        case .array(let a):
            out += "["
            for (k, v) in a.enumerated() { if k > 0 { out += "," }; v.write(into: &out) }
            out += "]"
        case .object(let m):
            out += "{"
            for (k, (key, v)) in m.enumerated() {
                if k > 0 { out += "," }
                JSONValue.quote(key, into: &out)
                out += ":"
                v.write(into: &out)
            }
            out += "}"
        }
    }

    /// A JSON string literal: `"` and `\` escaped, the short escapes for \b \f \n \r \t, other control characters
    /// as \u00xx (lower-case hex), everything else as it is.
    public static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }

    /// A double as the shortest digits that read back to it, placed as nlohmann::json places them: plain
    /// notation while the decimal point falls between 10^-4 and 10^15 (a whole number gets ".0"), otherwise
    /// `d.ddde+XX` with at least two exponent digits.
    static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description gives the shortest round-trip digits; take them and the exponent apart.
        let text = "\(abs(d))"
        var mantissa = text, exp = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = String(text[..<e])
            exp = Int(text[text.index(after: e)...])!
        }
        var digits = mantissa.filter(\.isNumber)
        let point = mantissa.firstIndex(of: ".").map { mantissa.distance(from: mantissa.startIndex, to: $0) } ?? mantissa.count
        var n = point + exp   // the decimal point sits after n digits
        let lead = digits.prefix { $0 == "0" }.count
        digits.removeFirst(lead); n -= lead
        while digits.count > 1, digits.last == "0" { digits.removeLast() }
        let k = digits.count
        var s: String
        if k <= n && n <= 15 {
            s = digits + String(repeating: "0", count: n - k) + ".0"
        } else if 0 < n && n <= 15 {
            let cut = digits.index(digits.startIndex, offsetBy: n)
            s = digits[..<cut] + "." + digits[cut...]
        } else if -4 < n && n <= 0 {
            s = "0." + String(repeating: "0", count: -n) + digits
        } else {
            let e = n - 1
            s = String(digits.first!) + (k > 1 ? "." + digits.dropFirst() : "")
            s += "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
        }
        return (d < 0 ? "-" : "") + s
    }
}

/// A recursive-descent reader of JSON bytes (RFC 8259: no comments, no trailing commas).
private struct JSONReader {
    let b: [UInt8]
    var i = 0
    static let maxDepth = 512

    init(_ b: [UInt8]) { self.b = b }

    func fail(_ message: String) -> EngineError {
        EngineError.badInput("offset \(i): \(message)")
    }

    mutating func blanks() {
        while i < b.count, [0x20, 0x09, 0x0A, 0x0D].contains(b[i]) { i += 1 }
    }

    mutating func value(depth: Int) throws -> JSONValue {
        guard depth < JSONReader.maxDepth else { throw fail("nested deeper than \(JSONReader.maxDepth) levels") }
        guard i < b.count else { throw fail("expected a value, got the end of the text") }
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1; blanks()
            var members: [(String, JSONValue)] = []
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a member name in double quotes") }
                let key = try string()
                blanks()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':' after a member name") }
                i += 1; blanks()
                members.append((key, try value(depth: depth + 1)))
                blanks()
                guard i < b.count else { throw fail("expected ',' or '}', got the end of the text") }
                if b[i] == UInt8(ascii: ",") { i += 1; blanks(); continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1; blanks()
            var items: [JSONValue] = []
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                items.append(try value(depth: depth + 1))
                blanks()
                guard i < b.count else { throw fail("expected ',' or ']', got the end of the text") }
                if b[i] == UInt8(ascii: ",") { i += 1; blanks(); continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): try word("true"); return .bool(true)
        case UInt8(ascii: "f"): try word("false"); return .bool(false)
        case UInt8(ascii: "n"): try word("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try number()
        default:
            throw fail("expected a value (object, array, string, number, true, false or null)")
        }
    }

    mutating func word(_ w: String) throws {
        let u = Array(w.utf8)
        guard i + u.count <= b.count, Array(b[i..<i + u.count]) == u else { throw fail("expected '\(w)'") }
        i += u.count
    }

    mutating func number() throws -> JSONValue {
        let start = i
        func digits() -> Int { let s = i; while i < b.count, (0x30...0x39).contains(b[i]) { i += 1 }; return i - s }
        if b[i] == UInt8(ascii: "-") { i += 1 }
        let whole = digits()
        guard whole > 0 else { throw fail("expected a digit") }
        if whole > 1, b[i - whole] == UInt8(ascii: "0") { i -= whole - 1; throw fail("a number cannot have a leading zero") }
        var fractional = false
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1; fractional = true
            guard digits() > 0 else { throw fail("expected a digit after '.'") }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1; fractional = true
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("expected a digit in the exponent") }
        }
        let text = String(decoding: b[start..<i], as: UTF8.self)
        if !fractional, let n = Int64(text) { return .integer(n) }
        return .number(Double(text)!)
    }

    mutating func string() throws -> String {
        i += 1   // the opening quote
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw fail("unterminated string") }
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("a control character inside a string must be escaped") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            guard i + 1 < b.count else { throw fail("unterminated escape") }
            let e = b[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var u = try hex4()
                if (0xD800..<0xDC00).contains(u) {
                    guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                        throw fail("a high surrogate \\u\(String(u, radix: 16)) must be followed by a low one")
                    }
                    i += 2
                    let lo = try hex4()
                    guard (0xDC00..<0xE000).contains(lo) else { throw fail("expected a low surrogate") }
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..<0xE000).contains(u) {
                    throw fail("a lone low surrogate")
                }
                out.append(contentsOf: Array(String(Unicode.Scalar(u)!).utf8))
            default:
                i -= 1
                throw fail("unknown escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        guard let s = String(validatingUTF8CString: out) else { throw fail("a string that is not valid UTF-8") }
        return s
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i..<i + 4], as: UTF8.self), radix: 16),
              b[i..<i + 4].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }) else {
            throw fail("expected four hex digits after \\u")
        }
        i += 4
        return v
    }
}

private extension String {
    /// `bytes` as a string when they are valid UTF-8 (NUL bytes allowed), nil otherwise.
    init?(validatingUTF8CString bytes: [UInt8]) {
        var it = bytes.makeIterator()
        var utf8 = UTF8()
        var scalars = String.UnicodeScalarView()
        while true {
            switch utf8.decode(&it) {
            case .scalarValue(let s): scalars.append(s)
            case .emptyInput: self = String(scalars); return
            case .error: return nil
            }
        }
    }
}
