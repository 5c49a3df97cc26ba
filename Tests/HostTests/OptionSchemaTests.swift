// Every surface that takes generation options against GenerationSchema: Lua's checking and `lm.defaults`, `:set`,
// `lm.options` (what lm.remote checks by), help's key list, the run store's fields both ways, the server's request
// parsing and the command line's flags. An option added to the schema shows up on every surface or fails here;
// the surfaces an option is kept off are the declared exceptions below.
import Engine
import Foundation
import XCTest
@testable import Host

final class OptionSchemaTests: XCTestCase {
    /// The surfaces each option is kept off, and why. Everything else is on every surface.
    let exceptions: [String: (OptionSurfaces, String)] = [
        "max_tokens": (.server, "the server reads max_tokens itself, with max_completion_tokens and the context's room"),
        "logprobs": (.server, "OpenAI's logprobs means other things (completions: a count; chat: a flag with top_logprobs)"),
        "stream": ([.server, .commandLine, .store], "host-side: the server streams SSE, the command line always streams, sample records it itself"),
        "on_token": ([.server, .commandLine, .store, .remote], "a Lua function: local models only"),
        "constrained_logprobs": ([.server, .commandLine, .remote], "reported in Lua only, from a local model's masks"),
        "intervene": ([.server, .commandLine, .store, .remote], "changes a local model's forward pass with Lua values (vectors); the command line takes llama.cpp's control-vector flags instead, and the store records it with the call itself (vectors by hash)"),
    ]

    /// A value inside the option's range that is not the engine's default.
    func otherValue(_ spec: OptionSpec) -> OptionValue? {
        switch spec.kind {
        case .integer: return .integer(spec.key == "seed" ? 12345 : spec.key == "repeat_last_n" ? 7 : 3)
        case .number:
            if let hi = spec.maximum { return .number(hi / 2 == spec.defaultValue.flatMap(number) ? hi / 4 : hi / 2) }
            return .number(spec.key == "temperature" ? 0.25 : 1.5)
        case .boolean: return .boolean(true)
        case .strings: return .strings(["END", "\n\n"])
        case .text: return .text("root ::= [a-z]+")
        case .json: return .text(#"{"type":"object","properties":{"b":{"type":"integer"},"a":{"enum":["x","y"]}},"required":["b"]}"#)
        case .function, .interventions: return nil
        }
    }

    func number(_ v: OptionValue) -> Double? {
        if case .number(let d) = v { return d }
        return nil
    }

    /// A value outside the option's range, when it has one.
    func outside(_ spec: OptionSpec) -> Double? {
        spec.maximum.map { $0 + 1 } ?? spec.minimum.map { $0 - 1 }
    }

    func testEveryOptionIsOnEverySurfaceButTheDeclaredExceptions() {
        XCTAssertEqual(Set(GenerationSchema.options.map(\.key)).count, GenerationSchema.options.count, "keys are unique")
        for spec in GenerationSchema.options {
            let off = exceptions[spec.key]?.0 ?? []
            XCTAssertEqual(spec.surfaces, OptionSurfaces.all.subtracting(off), "\(spec.key): surfaces")
            XCTAssertFalse(spec.help.isEmpty, spec.key)
            if spec.kind != .function && spec.kind != .interventions && spec.key != "stream" { XCTAssertNotNil(spec.defaultValue, spec.key) }
        }
        for key in exceptions.keys { XCTAssertNotNil(GenerationSchema.byKey[key], "exception for an unknown option \(key)") }
    }

    func testLuaDefaultsOptionsAndHelpFollowTheSchema() throws {
        let h = try LuaHost(modelPath: nil, threads: 1)
        // An option that is off by default (a grammar: nil in Lua) is not among lm.defaults' pairs.
        let engineKeys = GenerationSchema.options.filter { $0.field != nil && $0.defaultValue != .text("") }.map(\.key).sorted()
        XCTAssertEqual(h.evaluate("local t = {} for k in pairs(lm.defaults) do t[#t+1] = k end table.sort(t) return table.concat(t, ',')"),
                       .values([engineKeys.joined(separator: ",")]))
        XCTAssertEqual(h.evaluate("local t = {} for k in pairs(lm.options) do t[#t+1] = k end table.sort(t) return table.concat(t, ',')"),
                       .values([GenerationSchema.keys(on: .lua).sorted().joined(separator: ",")]))
        XCTAssertEqual(h.defaults.sampling, GenerationOptions().sampling, "lm.defaults holds the engine's defaults")
        guard let entry = Help.entries.first(where: { $0.key == "lm.defaults" }),
              let options = Help.entries.first(where: { $0.key == "lm.options" }) else { return XCTFail("no help entries") }
        for spec in GenerationSchema.options where spec.surfaces.contains(.lua) {
            XCTAssertTrue(entry.text.contains(spec.key), "help(lm.defaults) names \(spec.key)")
            XCTAssertTrue(options.text.contains(spec.help), "help(lm.options) describes \(spec.key)")
            XCTAssertEqual(h.evaluate("return lm.options.\(spec.key).type"), .values([spec.kind.rawValue]))
            XCTAssertEqual(h.evaluate("return lm.options.\(spec.key).local_only"), .values([spec.surfaces.contains(.remote) ? "false" : "true"]))
        }
    }

    func testSetAndLuaCheckEveryOptionByTheSchema() throws {
        let h = try LuaHost(modelPath: try TestEnvironment.modelPath(), threads: 1)
        for spec in GenerationSchema.options where spec.surfaces.contains(.lua) && spec.kind != .function {
            guard let v = otherValue(spec) else { continue }
            let text: String
            switch v {
            case .integer(let i): text = String(i)
            case .number(let d): text = String(d)
            case .boolean(let b): text = b ? "on" : "off"
            case .strings(let s): text = s[0]
            case .text(let s): text = s
            }
            XCTAssertNoThrow(try h.set(option: spec.key.replacingOccurrences(of: "_", with: "-"), value: text), spec.key)
            if let field = spec.field {
                let got = field.get(h.defaults)
                if case .strings = v { XCTAssertEqual(got, .strings([text]), spec.key) } else { XCTAssertEqual(got, v, spec.key) }
            }
            if let bad = outside(spec) {
                let shown = spec.kind == .integer ? String(Int(bad)) : String(bad)
                XCTAssertThrowsError(try h.set(option: spec.key, value: shown), spec.key) { e in
                    XCTAssertTrue("\(e)".contains("\(spec.key) must be"), "\(e)")
                }
                // The same range in a Lua call's options (checked before the model is needed).
                guard case .error(let err) = h.evaluate("lm.defaults = {\(spec.key) = \(shown)}; return lm.generate('x')") else {
                    XCTFail("lm.defaults.\(spec.key) = \(shown) was accepted"); continue
                }
                XCTAssertTrue(err.contains("option '\(spec.key)' must be"), err)
                _ = h.evaluate("lm.defaults = {}")
            }
        }
        XCTAssertThrowsError(try h.set(option: "temprature", value: "1")) { e in
            XCTAssertTrue("\(e)".contains("did you mean 'temperature'"), "\(e)")
        }
    }

    func testStoreFieldsRoundTripEveryStoreOption() {
        var o = GenerationOptions()
        for spec in GenerationSchema.options where spec.surfaces.contains(.store) {
            spec.field!.set(&o, otherValue(spec)!)
        }
        let fields = GenerationSchema.recordFields(o)
        XCTAssertEqual(Set(fields.keys), Set(GenerationSchema.keys(on: .store)))
        // Through JSON text, as the store keeps them.
        let data = try! JSONSerialization.data(withJSONObject: fields)
        let back = GenerationSchema.options(recordFields: try! JSONSerialization.jsonObject(with: data) as! [String: Any])
        for spec in GenerationSchema.options where spec.surfaces.contains(.store) {
            XCTAssertEqual(spec.field!.get(back), spec.field!.get(o), spec.key)
            XCTAssertNotEqual(spec.field!.get(back), spec.defaultValue, "\(spec.key): the test value is not the default")
        }
    }

    func testServerReadsEveryServerOptionAndChecksItsRange() throws {
        for spec in GenerationSchema.options where spec.surfaces.contains(.server) {
            let v = otherValue(spec)!
            let body = try JSONSerialization.data(withJSONObject: [spec.key: GenerationSchema.jsonValue(v)])
            let g = try OpenAIServer.options(RequestFields(body), maxTokens: 4)
            XCTAssertEqual(spec.field!.get(g), v, spec.key)
            if let alias = spec.serverAlias {
                let b = try JSONSerialization.data(withJSONObject: [alias: GenerationSchema.jsonValue(v)])
                XCTAssertEqual(spec.field!.get(try OpenAIServer.options(RequestFields(b), maxTokens: 4)), v, alias)
            }
            if let bad = outside(spec), !(spec.key == "top_k" && bad == -1) {
                let b = try JSONSerialization.data(withJSONObject: [spec.key: spec.kind == .integer ? Int(bad) as Any : bad as Any])
                XCTAssertThrowsError(try OpenAIServer.options(RequestFields(b), maxTokens: 4), spec.key) { e in
                    XCTAssertTrue((e as? HTTPFailure)?.message.hasPrefix("'\(spec.key)' must be") == true, "\(e)")
                }
            }
        }
    }

    func testCommandLineHasEveryFlagAndChecksItsRange() throws {
        let model = try TestEnvironment.modelPath()
        XCTAssertEqual(GenerationFlags.keys.sorted(), GenerationSchema.keys(on: .commandLine).sorted(),
                       "GenerationFlags has one property per command-line option of the schema")
        let help = try TestEnvironment.run(["generate", "--help"])
        XCTAssertEqual(help.status, 0, help.err)
        for spec in GenerationSchema.options where spec.surfaces.contains(.commandLine) {
            let flag = "--" + spec.flag!
            XCTAssertTrue(help.out.contains(flag), "refrain generate --help lists \(flag)")
            XCTAssertTrue(help.out.contains(String(spec.help.prefix(30))), "refrain generate --help has the schema's help for \(flag)")
            var args = ["generate", "--model", model, "--no-store", "--max-tokens", "1", flag]
            switch otherValue(spec)! {
            case .integer(let i): args.append(String(i))
            case .number(let d): args.append(String(d))
            case .boolean: break
            case .strings(let s): args.append(s[0])
            case .text(let s): args.append(s)
            }
            let r = try TestEnvironment.run(args + ["Hello"])
            XCTAssertEqual(r.status, 0, "\(args): \(r.err)")
            if let bad = outside(spec) {
                let shown = spec.kind == .integer ? String(Int(bad)) : String(bad)
                let e = try TestEnvironment.run(["generate", "--model", model, "--no-store", flag, shown, "Hello"])
                XCTAssertEqual(e.status, 2, "\(flag) \(shown) is a usage error")
                XCTAssertTrue(e.err.contains("\(flag) must be"), e.err)
            }
        }
    }
}
