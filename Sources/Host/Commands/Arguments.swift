// A small command-line parser: `--name value`, `--flag`, and positional arguments, with errors that name the
// option. (The command set is small; a parser package would cost more build time than it saves.)
import Foundation

struct UsageError: Error, CustomStringConvertible {
    let description: String
}

/// Parsed arguments of one subcommand.
struct Options {
    private(set) var values: [String: [String]] = [:]
    private(set) var flags: Set<String> = []
    private(set) var positional: [String] = []

    /// Parses `args` given which options take a value and which are flags.
    init(_ args: [String], valued: Set<String>, flags known: Set<String>) throws {
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" { positional += args[(i + 1)...]; break }
            if a.hasPrefix("--") {
                var name = String(a.dropFirst(2)), inline: String? = nil
                if let eq = name.firstIndex(of: "=") { inline = String(name[name.index(after: eq)...]); name = String(name[..<eq]) }
                if valued.contains(name) {
                    if let v = inline { values[name, default: []].append(v) } else {
                        guard i + 1 < args.count else { throw UsageError(description: "option --\(name) needs a value") }
                        values[name, default: []].append(args[i + 1]); i += 1
                    }
                } else if known.contains(name) {
                    flags.insert(name)
                } else {
                    throw UsageError(description: "unknown option --\(name)")
                }
            } else {
                positional.append(a)
            }
            i += 1
        }
    }

    func has(_ flag: String) -> Bool { flags.contains(flag) }
    func value(_ name: String) -> String? { values[name]?.last }
    func all(_ name: String) -> [String] { values[name] ?? [] }

    func int(_ name: String, _ def: Int, min lo: Int = Int.min) throws -> Int {
        guard let s = value(name) else { return def }
        guard let v = Int(s), v >= lo else { throw UsageError(description: "--\(name) expects an integer ≥ \(lo), got '\(s)'") }
        return v
    }
    func float(_ name: String, _ def: Float) throws -> Float {
        guard let s = value(name) else { return def }
        guard let v = Float(s), v.isFinite else { throw UsageError(description: "--\(name) expects a number, got '\(s)'") }
        return v
    }
    /// A comma-separated list of token ids.
    func ids(_ name: String) throws -> [Int32]? {
        guard let s = value(name) else { return nil }
        return try s.split(separator: ",", omittingEmptySubsequences: false).map { p in
            guard let v = Int32(p.trimmingCharacters(in: .whitespaces)) else {
                throw UsageError(description: "--\(name) expects comma-separated token ids, got '\(p)'")
            }
            return v
        }
    }
}
