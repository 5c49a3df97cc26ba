// The `json_schema` constraint: a JSON schema read into a GBNF grammar the way llama.cpp's converter
// (common/json-schema-to-grammar.cpp and common/json-schema.cpp) reads it, so that the same schema gives the same
// grammar, rule for rule, and greedy outputs stay identical to llama.cpp's. That fixes the choices a schema leaves
// open: properties in the schema's order, required ones first; optional ones in order, each may be left out;
// `additionalProperties` absent means none once `properties` is given (any object when it is not); whitespace
// between tokens is at most two line breaks and 20 blanks (the `space` rule); strings are JSON strings without raw
// control characters; integers at most 16 digits. Tests/EngineTests/Fixtures/json-schema holds llama.cpp's own
// test cases, which the Swift converter must reproduce byte for byte.
//
// The subset (as llama.cpp's): type (a name or a list), properties, required, additionalProperties (boolean or
// schema), items (a schema, or a list: a tuple), prefixItems, minItems, maxItems, enum, const, anyOf, oneOf (as
// anyOf), allOf (of objects and enums), $ref into the same document (#/$defs/..., recursion allowed), string
// pattern (anchored ^...$ regular expressions), minLength, maxLength, format (date, time, date-time, uuid),
// integer minimum, maximum, exclusiveMinimum, exclusiveMaximum. A pattern the converter cannot express becomes any
// string, with a warning (llama.cpp's behaviour).
import Foundation

/// A JSON schema read into the converter's nodes (llama.cpp's common_chat_schema).
indirect enum SchemaNode {
    enum Format { case none, uuid, date, time, dateTime }

    case any
    case ref(String)
    case anyOf([SchemaNode])
    case allOf([SchemaNode])
    case const(JSONValue)
    case enumeration([JSONValue])
    case null, boolean, number
    /// Inclusive bounds, Int64.min / Int64.max for none.
    case integer(min: Int64, max: Int64)
    /// maxLength -1: unbounded.
    case string(pattern: String, format: Format, minLength: Int, maxLength: Int)
    /// maxItems -1: unbounded.
    case array(items: SchemaNode, minItems: Int, maxItems: Int)
    case tuple([SchemaNode])
    /// Properties in schema order; additional nil: not allowed.
    case object(properties: [(name: String, schema: SchemaNode, required: Bool)], additional: SchemaNode?)

    var isAny: Bool { if case .any = self { return true }; return false }
}

/// Reads a schema document into nodes, resolving `$ref`s inside it.
struct SchemaReader {
    let root: JSONValue
    var refs: [String: SchemaNode?] = [:]

    init(_ root: JSONValue) { self.root = root }

    func fail(_ path: String, _ message: String) -> EngineError {
        EngineError.badInput("json_schema: at \(path): \(message)")
    }

    mutating func read() throws -> (root: SchemaNode, refs: [String: SchemaNode]) {
        let node = try build(root, "#")
        return (node, refs.compactMapValues { $0 })
    }

    func count(_ s: JSONValue, _ key: String, _ path: String, _ fallback: Int) throws -> Int {
        guard let v = s[key] else { return fallback }
        guard case .integer(let n) = v, n >= 0, n <= Int64(Int32.max) else { throw fail(path, "\(key) must be a non-negative integer") }
        return Int(n)
    }

    /// A bound of an integer's range; a fractional one rounds inwards.
    func bound(_ s: JSONValue, _ key: String, _ path: String, roundUp: Bool) throws -> Int64 {
        switch s[key]! {
        case .integer(let n): return n
        case .number(let d):
            let r = roundUp ? d.rounded(.up) : d.rounded(.down)
            guard r > -9.2e18, r < 9.2e18 else { throw fail(path, "\(key) is out of the 64-bit range") }
            return Int64(r)
        default: throw fail(path, "\(key) must be a number")
        }
    }

    func format(_ s: JSONValue, _ path: String) throws -> SchemaNode.Format {
        guard let v = s["format"] else { return .none }
        guard let f = v.string else { throw fail(path, "format must be a string") }
        switch f {
        case "date": return .date
        case "time": return .time
        case "date-time": return .dateTime
        case "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5": return .uuid
        default: return .none
        }
    }

    /// The value a `#/a/b/0` pointer names.
    func resolve(_ ref: String, _ path: String) throws -> JSONValue {
        var target = root
        let parts = ref.dropFirst().components(separatedBy: "/")
        for sel in parts.dropFirst() {
            if case .object = target, let v = target[sel] {
                target = v
            } else if case .array(let a) = target {
                guard let k = Int(sel), k >= 0, k < a.count else { throw fail(path, "cannot resolve $ref \(ref), \(sel) is out of range") }
                target = a[k]
            } else {
                throw fail(path, "cannot resolve $ref \(ref), \(sel) not found")
            }
        }
        return target
    }

    mutating func buildRef(_ v: JSONValue, _ path: String) throws -> SchemaNode {
        guard let ref = v.string else { throw fail(path, "$ref must be a string") }
        guard ref.hasPrefix("#/") else { throw fail(path, "unsupported $ref \(ref), only references into the same document are supported") }
        if refs[ref] == nil {
            refs[ref] = .some(nil)   // reserved first, so that a cycle back to this $ref stops here
            refs[ref] = .some(try build(try resolve(ref, path), ref))
        }
        return .ref(ref)
    }

    mutating func alternatives(_ v: JSONValue, _ path: String) throws -> [SchemaNode] {
        guard case .array(let alts) = v else { throw fail(path, "must be an array of schemas") }
        guard !alts.isEmpty else { throw fail(path, "must not be empty") }
        return try alts.enumerated().map { try build($0.element, path + "/\($0.offset)") }
    }

    mutating func object(_ s: JSONValue, _ path: String) throws -> SchemaNode {
        var required = Set<String>()
        if case .array(let names)? = s["required"] { for case .string(let n) in names { required.insert(n) } }
        var properties: [(name: String, schema: SchemaNode, required: Bool)] = []
        if let p = s["properties"] {
            guard case .object(let members) = p else { throw fail(path, "properties must be an object") }
            for (name, prop) in members {
                properties.append((name, try build(prop, path + "/properties/" + name), required.contains(name)))
            }
        }
        var additional: SchemaNode? = nil
        if let a = s["additionalProperties"] {
            switch a {
            case .bool(let b): if b { additional = .any }
            case .object: additional = try build(a, path + "/additionalProperties")
            default: throw fail(path, "additionalProperties must be a boolean or a schema")
            }
        } else if !s.has("properties") {
            additional = .any   // {"type": "object"} on its own accepts any object
        }
        return .object(properties: properties, additional: additional)
    }

    mutating func array(_ s: JSONValue, _ path: String) throws -> SchemaNode {
        var items = SchemaNode.any
        if s.has("items") || s.has("prefixItems") {
            let key = s.has("items") ? "items" : "prefixItems"
            let v = s[key]!
            if case .array(let list) = v {
                return .tuple(try list.enumerated().map { try build($0.element, path + "/\(key)/\($0.offset)") })
            }
            items = try build(v, path + "/" + key)
        }
        return .array(items: items, minItems: try count(s, "minItems", path, 0), maxItems: try count(s, "maxItems", path, -1))
    }

    mutating func string(_ s: JSONValue, _ path: String) throws -> SchemaNode {
        var pattern = ""
        if let p = s["pattern"] {
            guard let t = p.string else { throw fail(path, "pattern must be a string") }
            pattern = t
        }
        return .string(pattern: pattern, format: try format(s, path), minLength: try count(s, "minLength", path, 0),
                       maxLength: try count(s, "maxLength", path, -1))
    }

    func integer(_ s: JSONValue, _ path: String) throws -> SchemaNode {
        var lo = Int64.min, hi = Int64.max
        if s.has("minimum") { lo = try bound(s, "minimum", path, roundUp: true) }
        else if s.has("exclusiveMinimum") { lo = try bound(s, "exclusiveMinimum", path, roundUp: false) &+ 1 }
        if s.has("maximum") { hi = try bound(s, "maximum", path, roundUp: false) }
        else if s.has("exclusiveMaximum") { hi = try bound(s, "exclusiveMaximum", path, roundUp: true) &- 1 }
        return .integer(min: lo, max: hi)
    }

    mutating func build(_ s: JSONValue, _ path: String) throws -> SchemaNode {
        guard case .object = s else { throw fail(path, "schema must be an object") }
        if let r = s["$ref"] { return try buildRef(r, path) }
        if s.has("oneOf") || s.has("anyOf") {
            let key = s.has("oneOf") ? "oneOf" : "anyOf"
            return .anyOf(try alternatives(s[key]!, path + "/" + key))
        }
        let type = s["type"] ?? .null
        if case .array(let types) = type {
            // {"type": ["a", "b"], ...} is {"anyOf": [{"type": "a", ...}, {"type": "b", ...}]}
            guard !types.isEmpty else { throw fail(path, "type must not be empty") }
            guard case .object(let members) = s else { return .any }
            return .anyOf(try types.enumerated().map { k, t in
                try build(.object(members.map { $0.0 == "type" ? ("type", t) : $0 }), path + "/type/\(k)")
            })
        }
        if let c = s["const"] { return .const(c) }
        if let e = s["enum"] {
            guard case .array(let values) = e, !values.isEmpty else { throw fail(path, "enum must be a non-empty array") }
            return .enumeration(values)
        }
        if !type.isNull && type.string == nil { throw fail(path, "type must be a string or an array of strings") }
        let name = type.string ?? ""
        var hasProperties = s.has("properties")
        if let a = s["additionalProperties"], a != .bool(true) { hasProperties = true }
        switch name {
        case "":
            // without a type the structural keywords decide, in the converter's order
            if hasProperties { return try object(s, path) }
            if let a = s["allOf"] { return .allOf(try alternatives(a, path + "/allOf")) }
            if s.has("items") || s.has("prefixItems") { return try array(s, path) }
            if try s.has("pattern") || s.has("minLength") || s.has("maxLength") || format(s, path) != .none {
                return try string(s, path)
            }
            return .any
        case "object":
            if !hasProperties, let a = s["allOf"] { return .allOf(try alternatives(a, path + "/allOf")) }
            return try object(s, path)
        case "string":
            if let a = s["allOf"] { return .allOf(try alternatives(a, path + "/allOf")) }
            return try string(s, path)
        case "array": return try array(s, path)
        case "integer": return try integer(s, path)
        case "number": return .number
        case "boolean": return .boolean
        case "null": return .null
        default: throw fail(path, "unrecognized type \(name)")
        }
    }
}

/// Writes schema nodes as GBNF rules (llama.cpp's common_chat_schema_converter).
struct SchemaConverter {
    struct Builtin { let content: String; let deps: [String] }

    static let spaceRule = #"| " " | "\n"{1,2} [ \t]{0,20}"#

    static let primitives: [String: Builtin] = [
        "boolean": Builtin(content: #"("true" | "false")"#, deps: []),
        "decimal-part": Builtin(content: "[0-9]{1,16}", deps: []),
        "integral-part": Builtin(content: "[0] | [1-9] [0-9]{0,15}", deps: []),
        "number": Builtin(content: #"("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)?"#, deps: ["integral-part", "decimal-part"]),
        "integer": Builtin(content: #"("-"? integral-part)"#, deps: ["integral-part"]),
        "value": Builtin(content: "object | array | string | number | boolean | null", deps: ["object", "array", "string", "number", "boolean", "null"]),
        "object": Builtin(content: #""{" space ( string ":" space value ("," space string ":" space value)* )? space "}""#, deps: ["string", "value"]),
        "array": Builtin(content: #""[" space ( value ("," space value)* )? space "]""#, deps: ["value"]),
        "uuid": Builtin(content: #""\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12} "\"""#, deps: []),
        "char": Builtin(content: #"[^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | "u" [0-9a-fA-F]{4})"#, deps: []),
        "string": Builtin(content: #""\"" char* "\"""#, deps: ["char"]),
        "null": Builtin(content: #""null""#, deps: []),
    ]

    static let formats: [String: Builtin] = [
        "date": Builtin(content: #"[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )"#, deps: []),
        "time": Builtin(content: #"([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{3} )? ( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )"#, deps: []),
        "date-time": Builtin(content: #"date "T" time"#, deps: ["date", "time"]),
        "date-string": Builtin(content: #""\"" date "\"""#, deps: ["date"]),
        "time-string": Builtin(content: #""\"" time "\"""#, deps: ["time"]),
        "date-time-string": Builtin(content: #""\"" date-time "\"""#, deps: ["date-time"]),
    ]

    static let reserved: Set<String> = Set(["root"]).union(primitives.keys).union(formats.keys)

    let refs: [String: SchemaNode]
    var rules: [String: String] = ["space": SchemaConverter.spaceRule]
    var refsBeingResolved = Set<String>()
    var errors: [String] = []
    var warnings: [String] = []

    init(refs: [String: SchemaNode]) { self.refs = refs }

    /// The grammar text: each rule on a line, rules sorted by name (byte order).
    var grammar: String {
        rules.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { "\($0) ::= \(rules[$0]!)\n" }.joined()
    }

    /// A rule name: each run of characters other than letters, digits and '-' becomes one '-'.
    static func ruleName(_ name: String) -> String {
        var out = "", inRun = false
        for c in name.utf8 {
            let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D
            if ok { out.unicodeScalars.append(Unicode.Scalar(c)); inRun = false }
            else if !inRun { out += "-"; inRun = true }
        }
        return out
    }

    /// Adds `rule` under `name` (or name0, name1, ... when the name holds another rule); returns the name used.
    mutating func addRule(_ name: String, _ rule: String) -> String {
        let esc = SchemaConverter.ruleName(name)
        if rules[esc] == nil || rules[esc] == rule { rules[esc] = rule; return esc }
        var i = 0
        while let r = rules[esc + String(i)], r != rule { i += 1 }
        rules[esc + String(i)] = rule
        return esc + String(i)
    }

    mutating func addPrimitive(_ name: String, _ rule: Builtin) -> String {
        let n = addRule(name, rule.content)
        for dep in rule.deps {
            guard let d = SchemaConverter.primitives[dep] ?? SchemaConverter.formats[dep] else { errors.append("Rule \(dep) not known"); continue }
            if rules[dep] == nil { _ = addPrimitive(dep, d) }
        }
        return n
    }

    /// A GBNF literal for `s`: '"', '\', CR and LF escaped.
    static func literal(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    static func constant(_ v: JSONValue) -> String { literal(v.dump()) }

    mutating func visit(_ schema: SchemaNode, _ name: String) -> String {
        let ruleName = SchemaConverter.reserved.contains(name) ? name + "-" : name.isEmpty ? "root" : name
        let subName = name + (name.isEmpty ? "" : "-")
        switch schema {
        case .ref(let ref):
            return addRule(ruleName, resolveRef(ref))
        case .anyOf(let alts):
            let parts = alts.enumerated().map { visit($0.element, name + (name.isEmpty ? "alternative-" : "-") + String($0.offset)) }
            return addRule(ruleName, parts.joined(separator: " | "))
        case .allOf(let children):
            return visitAllOf(children, name, ruleName)
        case .const(let v):
            return addRule(ruleName, SchemaConverter.constant(v))
        case .enumeration(let values):
            return addRule(ruleName, "(" + values.map(SchemaConverter.constant).joined(separator: " | ") + ")")
        case .object(let properties, let additional):
            if properties.isEmpty, let a = additional, a.isAny {
                return addRule(ruleName, addPrimitive("object", SchemaConverter.primitives["object"]!))
            }
            return addRule(ruleName, objectRule(properties.map { ($0.name, $0.schema) }, Set(properties.filter(\.required).map(\.name)), name, additional))
        case .tuple(let items):
            var rule = #""[" space "#
            for (k, item) in items.enumerated() {
                if k > 0 { rule += #" "," space "# }
                rule += visit(item, subName + "tuple-" + String(k))
            }
            return addRule(ruleName, rule + #" space "]""#)
        case .array(let items, let minItems, let maxItems):
            if items.isAny && minItems == 0 && maxItems < 0 { return visitPrimitive(ruleName, "array") }
            let item = visit(items, subName + "item")
            let rep = SchemaConverter.repetition(item, minItems, maxItems < 0 ? Int(Int32.max) : maxItems, separator: #""," space"#)
            return addRule(ruleName, #""[" space "# + rep + #" space "]""#)
        case .string(let pattern, let format, let minLength, let maxLength):
            if !pattern.isEmpty { return visitPattern(pattern, ruleName) }
            switch format {
            case .uuid: return visitPrimitive(ruleName, "uuid")
            case .date, .time, .dateTime:
                let prim = (format == .date ? "date" : format == .time ? "time" : "date-time") + "-string"
                return addRule(ruleName, addPrimitive(prim, SchemaConverter.formats[prim]!))
            case .none: break
            }
            if minLength > 0 || maxLength >= 0 {
                let char = addPrimitive("char", SchemaConverter.primitives["char"]!)
                let rep = SchemaConverter.repetition(char, minLength, maxLength < 0 ? Int(Int32.max) : maxLength)
                return addRule(ruleName, #""\"" "# + rep + #" "\"""#)
            }
            return visitPrimitive(ruleName, "string")
        case .integer(let lo, let hi):
            if lo == .min && hi == .max { return visitPrimitive(ruleName, "integer") }
            var out = "("
            IntegerRange.build(lo, hi, into: &out)
            return addRule(ruleName, out + ")")
        case .number: return visitPrimitive(ruleName, "number")
        case .boolean: return visitPrimitive(ruleName, "boolean")
        case .null: return visitPrimitive(ruleName, "null")
        case .any: return addRule(ruleName, addPrimitive("value", SchemaConverter.primitives["value"]!))
        }
    }

    mutating func visitPrimitive(_ ruleName: String, _ type: String) -> String {
        addPrimitive(ruleName == "root" ? "root" : type, SchemaConverter.primitives[type]!)
    }

    mutating func resolveRef(_ ref: String) -> String {
        let fragment = ref.firstIndex(of: "#").map { String(ref[ref.index(after: $0)...]) } ?? ref
        var refName = "ref" + SchemaConverter.ruleName(fragment)
        if rules[refName] == nil && !refsBeingResolved.contains(ref) {
            guard let target = refs[ref] else { errors.append("Unresolved $ref \(ref)"); return "" }
            refsBeingResolved.insert(ref)
            refName = visit(target, refName)
            refsBeingResolved.remove(ref)
        }
        return refName
    }

    mutating func visitAllOf(_ children: [SchemaNode], _ name: String, _ ruleName: String) -> String {
        var required = Set<String>()
        var properties: [(String, SchemaNode)] = []
        var enumCounts: [String: Int] = [:]
        func add(_ comp: SchemaNode, _ isRequired: Bool) {
            switch comp {
            case .ref(let r): if let t = refs[r] { add(t, isRequired) }
            case .object(let props, _):
                for p in props { properties.append((p.name, p.schema)); if isRequired { required.insert(p.name) } }
            case .enumeration(let values):
                for v in values { enumCounts[SchemaConverter.constant(v), default: 0] += 1 }
            default: break
            }
        }
        for child in children {
            if case .anyOf(let alts) = child { for a in alts { add(a, false) } } else { add(child, true) }
        }
        if !enumCounts.isEmpty {
            let both = enumCounts.filter { $0.value == children.count }.keys
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            if !both.isEmpty { return addRule(ruleName, "(" + both.joined(separator: " | ") + ")") }
        }
        return addRule(ruleName, objectRule(properties, required, name, nil))
    }

    mutating func objectRule(_ properties: [(String, SchemaNode)], _ required: Set<String>, _ name: String,
                             _ additional: SchemaNode?) -> String {
        var requiredProps: [String] = [], optionalProps: [String] = [], kvNames: [String: String] = [:], names: [String] = []
        let prefix = name + (name.isEmpty ? "" : "-")
        for (propName, propSchema) in properties {
            let propRule = visit(propSchema, prefix + propName)
            kvNames[propName] = addRule(prefix + propName + "-kv",
                                        SchemaConverter.literal(JSONValue.string(propName).dump()) + #" space ":" space "# + propRule)
            if required.contains(propName) { requiredProps.append(propName) } else { optionalProps.append(propName) }
            names.append(propName)
        }
        if let additional {
            let sub = prefix + "additional"
            let valueRule = additional.isAny ? addPrimitive("value", SchemaConverter.primitives["value"]!) : visit(additional, sub + "-value")
            let keyRule = names.isEmpty ? addPrimitive("string", SchemaConverter.primitives["string"]!) : addRule(sub + "-k", notStrings(names))
            kvNames["*"] = addRule(sub + "-kv", keyRule + #" ":" space "# + valueRule)
            optionalProps.append("*")
        }
        if requiredProps.isEmpty && optionalProps.isEmpty { return #""{" space "}""# }

        var rule = #""{" space "#
        rule += requiredProps.map { kvNames[$0]! }.joined(separator: #" "," space "#)
        if !optionalProps.isEmpty {
            rule += " ("
            if !requiredProps.isEmpty { rule += #" "," space ( "# }
            func recursiveRefs(_ ks: ArraySlice<String>, firstIsOptional: Bool) -> String {
                guard let k = ks.first else { return "" }
                let kv = kvNames[k]!
                let commaRef = #"( "," space "# + kv + " )"
                var res = firstIsOptional ? commaRef + (k == "*" ? "*" : "?") : kv + (k == "*" ? " " + commaRef + "*" : "")
                if ks.count > 1 {
                    res += " " + addRule(prefix + k + "-rest", recursiveRefs(ks.dropFirst(), firstIsOptional: true))
                }
                return res
            }
            rule += optionalProps.indices.map { recursiveRefs(optionalProps[$0...], firstIsOptional: false) }.joined(separator: " | ")
            if !requiredProps.isEmpty { rule += " )" }
            rule += " )?"
        }
        return rule + #" space "}""#
    }

    /// A JSON string that is none of `strings` (the keys an object with additional properties must not repeat).
    mutating func notStrings(_ strings: [String]) -> String {
        final class Node { var children: [(UInt32, Node)] = []; var ends = false }
        let root = Node()
        for s in strings {
            var n = root
            for c in s.unicodeScalars {
                if let child = n.children.first(where: { $0.0 == c.value })?.1 { n = child; continue }
                let child = Node()
                n.children.append((c.value, child))
                n.children.sort { $0.0 < $1.0 }
                n = child
            }
            n.ends = true
        }
        let char = addPrimitive("char", SchemaConverter.primitives["char"]!)
        var out = #"["] ( "#
        func walk(_ node: Node) {
            var rejects = ""
            for (k, (cpt, child)) in node.children.enumerated() {
                let c = String(Unicode.Scalar(cpt)!)
                rejects += c
                if k > 0 { out += " | " }
                out += "[" + c + "]"
                if !child.children.isEmpty { out += " ("; walk(child); out += ")" } else { out += " " + char + "+" }
            }
            if !node.children.isEmpty { out += #" | [^""# + rejects + "] " + char + "*" }
        }
        walk(root)
        out += " )"
        if !root.ends { out += "?" }
        return out + #" ["]"#
    }

    /// `item` repeated between `min` and `max` times (max Int32.max: unbounded), with `separator` between.
    static func repetition(_ item: String, _ min: Int, _ max: Int, separator: String = "") -> String {
        let hasMax = max != Int(Int32.max)
        if max == 0 { return "" }
        if min == 0 && max == 1 { return item + "?" }
        if separator.isEmpty {
            if min == 1 && !hasMax { return item + "+" }
            if min == 0 && !hasMax { return item + "*" }
            return item + "{" + String(min) + "," + (hasMax ? String(max) : "") + "}"
        }
        var result = item + " " + repetition("(" + separator + " " + item + ")", min == 0 ? 0 : min - 1, hasMax ? max - 1 : max)
        if min == 0 { result = "(" + result + ")?" }
        return result
    }

    // MARK: Patterns

    struct Unsupported: Error { let message: String }
    struct Invalid: Error { let message: String }

    mutating func visitPattern(_ pattern: String, _ name: String) -> String {
        let snapshot = rules
        do {
            return try patternRule(pattern, name)
        } catch let e as Unsupported {
            rules = snapshot
            warnings.append("pattern \(pattern) is not supported (\(e.message)), accepting any string")
            return addRule(name, addPrimitive("string", SchemaConverter.primitives["string"]!))
        } catch let e as Invalid {
            rules = snapshot
            errors.append("Invalid pattern \(pattern): \(e.message)")
            return ""
        } catch {
            rules = snapshot
            errors.append("Invalid pattern \(pattern): \(error)")
            return ""
        }
    }

    /// The length of a GBNF escape at `pos` (\xHH \uHHHH \UHHHHHHHH \t \r \n \\ \" \[ \] \-), 0 when there is none.
    static func escapeLength(_ p: [UInt8], _ pos: Int) -> Int {
        guard pos + 1 < p.count, p[pos] == UInt8(ascii: "\\") else { return 0 }
        var hex = 0
        switch p[pos + 1] {
        case UInt8(ascii: "x"): hex = 2
        case UInt8(ascii: "u"): hex = 4
        case UInt8(ascii: "U"): hex = 8
        case UInt8(ascii: "t"), UInt8(ascii: "r"), UInt8(ascii: "n"), UInt8(ascii: "\\"), UInt8(ascii: "\""),
             UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "-"): return 2
        default: return 0
        }
        guard pos + 2 + hex <= p.count else { return 0 }
        for h in p[(pos + 2)..<(pos + 2 + hex)] where !((h >= 0x30 && h <= 0x39) || (h >= 0x61 && h <= 0x66) || (h >= 0x41 && h <= 0x46)) {
            return 0
        }
        return 2 + hex
    }

    static let nonLiteral = Set("|.()[]{}*+?^$".utf8)
    static let escapedInRegexOnly = Set("^$.[](){}|*+?".utf8)
    static let maxPatternDepth = 100

    /// An anchored regular expression as a rule that matches it inside JSON string quotes.
    mutating func patternRule(_ pattern: String, _ name: String) throws -> String {
        let whole = Array(pattern.utf8)
        guard whole.count >= 2, whole.first == UInt8(ascii: "^"), whole.last == UInt8(ascii: "$") else {
            throw Unsupported(message: "not anchored with '^' and '$'")
        }
        let p = Array(whole[1..<(whole.count - 1)])
        var subRuleIds: [String: String] = [:]
        var i = 0, depth = 0
        let text = { (bytes: [UInt8]) in String(decoding: bytes, as: UTF8.self) }
        func toRule(_ item: (String, Bool)) -> String { item.1 ? "\"" + item.0 + "\"" : item.0 }

        func transform() throws -> (String, Bool) {
            var seq: [(String, Bool)] = []
            func joinSeq() -> (String, Bool) {
                var out: [(String, Bool)] = [], lit = ""
                for item in seq {
                    if item.1 { lit += item.0 } else {
                        if !lit.isEmpty { out.append((lit, true)); lit = "" }
                        out.append(item)
                    }
                }
                if !lit.isEmpty { out.append((lit, true)) }
                return (out.map(toRule).joined(separator: " "), false)
            }
            while i < p.count {
                let c = p[i]
                switch c {
                case UInt8(ascii: "."):
                    seq.append((addRule("dot", "[^\\x0A\\x0D]"), false))
                    i += 1
                case UInt8(ascii: "("):
                    i += 1
                    if i < p.count, p[i] == UInt8(ascii: "?") {
                        if i + 1 < p.count, p[i + 1] == UInt8(ascii: ":") { i += 2 } else { throw Unsupported(message: "unsupported group syntax") }
                    }
                    depth += 1
                    if depth > SchemaConverter.maxPatternDepth { throw Unsupported(message: "pattern nesting too deep") }
                    seq.append(("(" + toRule(try transform()) + ")", false))
                case UInt8(ascii: ")"):
                    i += 1
                    if depth == 0 { throw Invalid(message: "unbalanced parentheses") }
                    depth -= 1
                    return joinSeq()
                case UInt8(ascii: "^"), UInt8(ascii: "$"):
                    throw Unsupported(message: "anchor inside the pattern")
                case UInt8(ascii: "["):
                    var sq: [UInt8] = [c]
                    i += 1
                    while i < p.count && p[i] != UInt8(ascii: "]") {
                        if p[i] == UInt8(ascii: "\\") {
                            let n = SchemaConverter.escapeLength(p, i)
                            if n == 0 { throw Unsupported(message: "unsupported escape in character class: " + text(Array(p[i..<min(i + 2, p.count)]))) }
                            sq += p[i..<(i + n)]; i += n
                        } else {
                            sq.append(p[i]); i += 1
                        }
                    }
                    if i >= p.count { throw Invalid(message: "unterminated character class") }
                    sq.append(UInt8(ascii: "]")); i += 1
                    seq.append((text(sq), false))
                case UInt8(ascii: "|"):
                    seq.append(("|", false)); i += 1
                case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
                    guard let last = seq.popLast() else { throw Invalid(message: "nothing to repeat") }
                    seq.append((toRule(last) + String(Unicode.Scalar(c)), false))
                    i += 1
                case UInt8(ascii: "{"):
                    var curly: [UInt8] = [c]
                    i += 1
                    while i < p.count && p[i] != UInt8(ascii: "}") { curly.append(p[i]); i += 1 }
                    if i >= p.count { throw Unsupported(message: "unterminated curly brackets") }
                    i += 1
                    let nums = text(Array(curly.dropFirst())).components(separatedBy: ",")
                    var lo = 0, hi = Int(Int32.max)
                    guard nums.count == 1 || nums.count == 2 else { throw Unsupported(message: "wrong number of values in curly brackets") }
                    if nums.count == 1 {
                        guard let n = SchemaConverter.stoi(nums[0]) else { throw Unsupported(message: "invalid number in curly brackets") }
                        lo = n; hi = n
                    } else {
                        if !nums[0].isEmpty { guard let n = SchemaConverter.stoi(nums[0]) else { throw Unsupported(message: "invalid number in curly brackets") }; lo = n }
                        if !nums[1].isEmpty { guard let n = SchemaConverter.stoi(nums[1]) else { throw Unsupported(message: "invalid number in curly brackets") }; hi = n }
                    }
                    guard var last = seq.popLast() else { throw Invalid(message: "nothing to repeat") }
                    if !last.1 {
                        if let id = subRuleIds[last.0] { last.0 = id } else {
                            let id = addRule(name + "-" + String(subRuleIds.count + 1), last.0)
                            subRuleIds[last.0] = id
                            last.0 = id
                        }
                    }
                    seq.append((SchemaConverter.repetition(last.1 ? "\"" + last.0 + "\"" : last.0, lo, hi), false))
                default:
                    var lit: [UInt8] = []
                    while i < p.count {
                        if p[i] == UInt8(ascii: "\\") {
                            if i == p.count - 1 { throw Invalid(message: "trailing backslash") }
                            let next = p[i + 1]
                            if SchemaConverter.escapedInRegexOnly.contains(next) {
                                lit.append(next); i += 2
                            } else {
                                let n = SchemaConverter.escapeLength(p, i)
                                if n == 0 { throw Unsupported(message: "unsupported escape: " + text(Array(p[i..<(i + 2)]))) }
                                lit += p[i..<(i + n)]; i += n
                            }
                        } else if p[i] == UInt8(ascii: "\"") {
                            lit += Array("\\\"".utf8); i += 1
                        } else if !SchemaConverter.nonLiteral.contains(p[i]) &&
                                    (i == p.count - 1 || lit.isEmpty || p[i + 1] == UInt8(ascii: ".") || !SchemaConverter.nonLiteral.contains(p[i + 1])) {
                            lit.append(p[i]); i += 1
                        } else {
                            break
                        }
                    }
                    if lit.isEmpty { throw Unsupported(message: "unsupported character: " + text([c])) }
                    seq.append((text(lit), true))
                }
            }
            return joinSeq()
        }

        let rule = toRule(try transform())
        if depth != 0 { throw Invalid(message: "unbalanced parentheses") }
        return addRule(name, #""\"" ("# + rule + #") "\"""#)
    }

    /// C's stoi on a repetition count: blanks, an optional sign, digits (the rest ignored); nil without digits.
    static func stoi(_ s: String) -> Int? {
        var u = Substring(s).drop { $0 == " " || $0 == "\t" || $0 == "\n" }
        var sign = 1
        if let f = u.first, f == "+" || f == "-" { sign = f == "-" ? -1 : 1; u = u.dropFirst() }
        let digits = u.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let n = Int32(digits) else { return nil }
        return sign * Int(n)
    }
}

/// An integer range as GBNF (llama.cpp's build_min_max_int): digits place by place, at most 16 of them.
enum IntegerRange {
    static func build(_ minValue: Int64, _ maxValue: Int64, into out: inout String, decimalsLeft: Int = 16, topLevel: Bool = true) {
        var minValue = minValue
        let hasMin = minValue != .min, hasMax = maxValue != .max

        func digitRange(_ from: UInt8, _ to: UInt8) {
            out += "["
            out.unicodeScalars.append(Unicode.Scalar(from))
            if from != to { out += "-"; out.unicodeScalars.append(Unicode.Scalar(to)) }
            out += "]"
        }
        func moreDigits(_ minDigits: Int, _ maxDigits: Int) {
            out += "[0-9]"
            if minDigits == maxDigits && minDigits == 1 { return }
            out += "{" + String(minDigits)
            if maxDigits != minDigits {
                out += ","
                if maxDigits != Int(Int32.max) { out += String(maxDigits) }
            }
            out += "}"
        }
        func uniformRange(_ from: [UInt8], _ to: [UInt8]) {
            var i = 0
            while i < from.count && i < to.count && from[i] == to[i] { i += 1 }
            if i > 0 { out += "\"" + String(decoding: from[0..<i], as: UTF8.self) + "\"" }
            guard i < from.count && i < to.count else { return }
            if i > 0 { out += " " }
            let subLen = from.count - i - 1
            guard subLen > 0 else {
                out += "["; out.unicodeScalars.append(Unicode.Scalar(from[i])); out += "-"
                out.unicodeScalars.append(Unicode.Scalar(to[i])); out += "]"
                return
            }
            let fromSub = Array(from[(i + 1)...]), toSub = Array(to[(i + 1)...])
            let zeros = [UInt8](repeating: 0x30, count: subLen), nines = [UInt8](repeating: 0x39, count: subLen)
            var toReached = false
            out += "("
            if fromSub == zeros {
                digitRange(from[i], to[i] - 1)
                out += " "
                moreDigits(subLen, subLen)
            } else {
                out += "["; out.unicodeScalars.append(Unicode.Scalar(from[i])); out += "] "
                out += "("
                uniformRange(fromSub, nines)
                out += ")"
                if from[i] < to[i] - 1 {
                    out += " | "
                    if toSub == nines { digitRange(from[i] + 1, to[i]); toReached = true } else { digitRange(from[i] + 1, to[i] - 1) }
                    out += " "
                    moreDigits(subLen, subLen)
                }
            }
            if !toReached {
                out += " | "
                digitRange(to[i], to[i])
                out += " "
                uniformRange(zeros, toSub)
            }
            out += ")"
        }
        let digits = { (n: Int64) in Array(String(n).utf8) }

        if hasMin && hasMax {
            if minValue < 0 && maxValue < 0 {
                out += "\"-\" ("
                build(-maxValue, -minValue, into: &out, decimalsLeft: decimalsLeft, topLevel: true)
                out += ")"
                return
            }
            if minValue < 0 {
                out += "\"-\" ("
                build(0, -minValue, into: &out, decimalsLeft: decimalsLeft, topLevel: true)
                out += ") | "
                minValue = 0
            }
            var minS = digits(minValue)
            let maxS = digits(maxValue)
            for d in minS.count..<max(minS.count, maxS.count) {
                uniformRange(minS, [UInt8](repeating: 0x39, count: d))
                minS = [0x31] + [UInt8](repeating: 0x30, count: d)
                out += " | "
            }
            uniformRange(minS, maxS)
            return
        }

        let lessDecimals = max(decimalsLeft - 1, 1)
        if hasMin {
            if minValue < 0 {
                out += "\"-\" ("
                build(.min, -minValue, into: &out, decimalsLeft: decimalsLeft, topLevel: false)
                out += ") | [0] | [1-9] "
                moreDigits(0, decimalsLeft - 1)
            } else if minValue == 0 {
                if topLevel { out += "[0] | [1-9] "; moreDigits(0, lessDecimals) } else { moreDigits(1, decimalsLeft) }
            } else if minValue <= 9 {
                let c = UInt8(0x30 + minValue)
                let start: UInt8 = topLevel ? 0x31 : 0x30
                if c > start {
                    digitRange(start, c - 1); out += " "; moreDigits(1, lessDecimals); out += " | "
                }
                digitRange(c, 0x39); out += " "; moreDigits(0, lessDecimals)
            } else {
                let minS = digits(minValue)
                let len = minS.count, c = minS[0]
                if c > 0x31 {
                    digitRange(topLevel ? 0x31 : 0x30, c - 1); out += " "; moreDigits(len, lessDecimals); out += " | "
                }
                digitRange(c, c)
                out += " ("
                build(Int64(String(decoding: minS[1...], as: UTF8.self))!, .max, into: &out, decimalsLeft: lessDecimals, topLevel: false)
                out += ")"
                if c < 0x39 {
                    out += " | "; digitRange(c + 1, 0x39); out += " "; moreDigits(len - 1, lessDecimals)
                }
            }
            return
        }
        if hasMax {
            if maxValue >= 0 {
                if topLevel { out += "\"-\" [1-9] "; moreDigits(0, lessDecimals); out += " | " }
                build(0, maxValue, into: &out, decimalsLeft: decimalsLeft, topLevel: true)
            } else {
                out += "\"-\" ("
                build(-maxValue, .max, into: &out, decimalsLeft: decimalsLeft, topLevel: false)
                out += ")"
            }
        }
    }
}

extension ConstraintGrammar {
    /// The GBNF grammar llama.cpp's converter makes of the JSON schema `schema` (JSON text), with the warnings it
    /// gives (patterns it cannot express, accepted as any string). The error names the place in the schema.
    public static func jsonSchemaConversion(_ schema: String) throws -> (grammar: String, warnings: [String]) {
        let value: JSONValue
        do { value = try JSONValue.parse(schema) } catch let EngineError.badInput(m) {
            throw EngineError.badInput("json_schema: not JSON: \(m)")
        }
        return try jsonSchemaConversion(value)
    }

    /// The grammar of an already parsed schema.
    public static func jsonSchemaConversion(_ schema: JSONValue) throws -> (grammar: String, warnings: [String]) {
        var reader = SchemaReader(schema)
        let (root, refs) = try reader.read()
        var c = SchemaConverter(refs: refs)
        _ = c.visit(root, "")
        if !c.errors.isEmpty {
            throw EngineError.badInput("json_schema: " + c.errors.joined(separator: "; "))
        }
        return (c.grammar, c.warnings)
    }

    /// The GBNF grammar of the JSON schema `schema` (JSON text); see `jsonSchemaConversion`.
    public static func jsonSchema(_ schema: String) throws -> String {
        try jsonSchemaConversion(schema).grammar
    }
}

/// Conversions already made, by schema text, so that a schema used for every call of an experiment is read once
/// and its warnings are written once.
private final class SchemaCache: @unchecked Sendable {
    static let shared = SchemaCache()
    let lock = NSLock()
    var grammars: [String: String] = [:]
}

extension ConstraintGrammar {
    /// `jsonSchema(schema)`, remembered; the first conversion of a schema writes its warnings to standard error
    /// (as llama.cpp does), each line starting "json_schema: warning:".
    public static func cachedJSONSchema(_ schema: String) throws -> String {
        let cache = SchemaCache.shared
        cache.lock.lock()
        if let g = cache.grammars[schema] { cache.lock.unlock(); return g }
        cache.lock.unlock()
        let (g, warnings) = try jsonSchemaConversion(schema)
        cache.lock.lock()
        let first = cache.grammars.updateValue(g, forKey: schema) == nil
        if cache.grammars.count > 256 { cache.grammars = [schema: g] }
        cache.lock.unlock()
        if first { for w in warnings { FileHandle.standardError.write(Data("json_schema: warning: \(w)\n".utf8)) } }
        return g
    }
}
