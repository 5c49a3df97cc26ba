// JSON values for the HTTP server and client: read by the engine's JSON reader (JSONValue, members kept in order)
// into an enum that keeps booleans, numbers, strings and nulls apart (so that a request's wrong types can be
// named), and written by a small encoder that keeps object keys in the order they were built (OpenAI's responses
// read best that way).
import Engine
import Foundation

/// A JSON value.
enum JSON: Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    /// An object's members in order (parsed ones in the text's order).
    case object([(String, JSON)])

    static func == (a: JSON, b: JSON) -> Bool { a.text == b.text }

    /// Parses `data`; nil when it is not JSON.
    static func parse(_ data: Data) -> JSON? { (try? JSONValue.parse(String(decoding: data, as: UTF8.self))).map(JSON.init) }

    /// The engine's ordered JSON value, its objects' order kept.
    init(_ v: JSONValue) {
        switch v {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .integer(let i): self = .number(Double(i))
        case .number(let d): self = .number(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(JSON.init))
        case .object(let m): self = .object(m.map { ($0.0, JSON($0.1)) })
        }
    }

    /// The member `key` of an object (nil for a missing member or a non-object).
    subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.0 == key }?.1
    }

    var string: String? { if case .string(let s) = self { return s }; return nil }
    var number: Double? { if case .number(let d) = self { return d }; return nil }
    var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    var isNull: Bool { if case .null = self { return true }; return false }
    /// An integral number that fits an Int.
    var integer: Int? {
        guard case .number(let d) = self, d == d.rounded(), abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }

    /// The JSON type's name, for error messages.
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// The compact JSON text (non-finite numbers as null).
    var text: String {
        var out = ""
        write(into: &out)
        return out
    }

    var data: Data { Data(text.utf8) }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let d):
            if !d.isFinite { out += "null" }
            else if d == d.rounded(), abs(d) < 1e15 { out += String(Int(d)) }
            else { out += String(d) }
        case .string(let s): JSON.quote(s, into: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() { if i > 0 { out += "," }; v.write(into: &out) }
            out += "]"
        case .object(let m):
            out += "{"
            for (i, (k, v)) in m.enumerated() {
                if i > 0 { out += "," }
                JSON.quote(k, into: &out)
                out += ":"
                v.write(into: &out)
            }
            out += "}"
        }
    }

    /// A JSON string literal, as the engine's JSON writer makes one.
    private static func quote(_ s: String, into out: inout String) { JSONValue.quote(s, into: &out) }
}

extension JSON {
    static func int(_ i: Int) -> JSON { .number(Double(i)) }
    static func ints(_ ids: [Int32]) -> JSON { .array(ids.map { .number(Double($0)) }) }
}
