// LuaHost as the REPL drives it: evaluate (lua.c's rules, pretty-printing, `_`, errors), completions, :set
// defaults, and interrupting a generation.
import Foundation
import XCTest
@testable import Host

final class LuaHostTests: XCTestCase {
    /// A host without a model (fast), or with the test model.
    func host(model: Bool = false) throws -> LuaHost {
        try LuaHost(modelPath: model ? try TestEnvironment.modelPath() : nil, threads: 2)
    }

    func testExpressionsPrintTheirValues() throws {
        let h = try host()
        XCTAssertEqual(h.evaluate("1 + 1"), .values(["2"]))
        XCTAssertEqual(h.evaluate("=1, 'two', nil"), .values(["1", "two", "nil"]))
        XCTAssertEqual(h.evaluate("= 0.1 + 0.2"), .values(["0.3"]))
        XCTAssertEqual(h.evaluate("x = 5"), .ok)
        XCTAssertEqual(h.evaluate("x"), .values(["5"]))
        guard case .values(let f) = h.evaluate("print") else { return XCTFail() }
        XCTAssertTrue(f[0].hasPrefix("function"), f[0])
        XCTAssertEqual(h.evaluate("local y = 1"), .ok)
        XCTAssertEqual(h.evaluate("(function() end)()"), .ok, "no values: nothing to print")
    }

    func testUnderscoreHoldsTheLastValueAndSemicolonSuppresses() throws {
        let h = try host()
        XCTAssertEqual(h.evaluate("40 + 2"), .values(["42"]))
        XCTAssertEqual(h.evaluate("_"), .values(["42"]))
        XCTAssertEqual(h.evaluate("{1, 2};"), .ok)
        XCTAssertEqual(h.evaluate("_[2]"), .values(["2"]))
        XCTAssertEqual(h.evaluate("y = 3;"), .ok)
    }

    func testIncompleteChunksContinue() throws {
        let h = try host()
        XCTAssertEqual(h.evaluate("for i = 1, 3 do"), .incomplete)
        XCTAssertEqual(h.evaluate("for i = 1, 3 do\n  s = (s or 0) + i"), .incomplete)
        XCTAssertEqual(h.evaluate("for i = 1, 3 do\n  s = (s or 0) + i\nend"), .ok)
        XCTAssertEqual(h.evaluate("s"), .values(["6"]))
        XCTAssertEqual(h.evaluate("function f(a,"), .incomplete)
        XCTAssertEqual(h.evaluate("t = {"), .incomplete)
        XCTAssertEqual(h.evaluate("s = \"abc"), .incomplete, "lua.c: unfinished string near <eof>")
        XCTAssertEqual(h.evaluate("s = \"abc\nd\""), .error("stdin:1: unfinished string near '\"abc'"))
        XCTAssertEqual(h.evaluate("[[long"), .incomplete)
        if case .error(let e) = h.evaluate("x = = 1") { XCTAssertTrue(e.contains("unexpected symbol"), e) } else { XCTFail() }
    }

    func testTablesArePrettyPrinted() throws {
        let h = try host()
        XCTAssertEqual(h.evaluate("{3, 1, b = 'x', a = {y = 1}}"), .values(["{3, 1, a = {y = 1}, b = \"x\"}"]))
        XCTAssertEqual(h.evaluate("t = {}; t.t = t; return t"), .values(["{t = <cycle: \(cycleName(h))>}"]))
        guard case .values(let v) = h.evaluate("local r = {} for i = 1, 50 do r[i] = i * 1000 end return r") else { return XCTFail() }
        XCTAssertTrue(v[0].contains("... (26 more)"), v[0])
        XCTAssertTrue(v[0].contains("\n  1000,\n"), "a long list is laid out a line an item: \(v[0])")
    }

    private func cycleName(_ h: LuaHost) -> String {
        if case .values(let v) = h.evaluate("tostring(t)") { return v[0] }
        return "?"
    }

    func testErrorsCarryATraceback() throws {
        let h = try host()
        guard case .error(let e) = h.evaluate("local function boom() error('no!') end\nboom()") else { return XCTFail() }
        XCTAssertTrue(e.hasPrefix("stdin:1: no!"), e)
        XCTAssertTrue(e.contains("stack traceback:"), e)
        XCTAssertTrue(e.contains("boom"), e)
        guard case .error(let n) = h.evaluate("lm.generate('hi')") else { return XCTFail() }
        XCTAssertTrue(n.contains("lm.generate: no model loaded"), n)
        XCTAssertEqual(h.evaluate("1"), .values(["1"]), "the session goes on")
    }

    func testCompletions() throws {
        let h = try host(model: true)
        XCTAssertEqual(h.completions(for: "lm.ge"), ["lm.generate", "lm.generate_batch"])
        XCTAssertEqual(h.completions(for: "x = lm.to"), ["lm.token", "lm.tokenize"])
        XCTAssertEqual(h.evaluate("m = lm.model"), .ok)
        XCTAssertEqual(h.completions(for: "m:gen"), ["m:generate", "m:generate_batch"])
        XCTAssertEqual(h.completions(for: "m.in"), ["m.info"])
        XCTAssertEqual(h.completions(for: "m.info.voc"), ["m.info.vocab"])
        XCTAssertEqual(h.evaluate("st = m:state('x')"), .ok)
        XCTAssertEqual(h.completions(for: "st:fo"), ["st:fork"])
        XCTAssertEqual(h.completions(for: "print(string.up"), ["string.upper"])
        XCTAssertEqual(h.completions(for: "pri"), ["print"])
        XCTAssertTrue(h.completions(for: "m:").contains("m:score"))
        XCTAssertFalse(h.completions(for: "m:").contains("m:info"), "after ':' only methods")
        XCTAssertEqual(h.completions(for: "nosuch.x"), [])
        XCTAssertEqual(h.completions(for: "1.5"), [])
        XCTAssertEqual(h.completions(for: "lm.stats.boo"), ["lm.stats.bootstrap_ci"], "the harness is loaded at start")
        XCTAssertEqual(h.completions(for: "lm.extract.b"), ["lm.extract.boxed"])
    }

    func testSetChangesDefaults() throws {
        let h = try host()
        try h.set(option: "temperature", value: "0.25")
        XCTAssertEqual(h.defaults.sampling.temperature, 0.25)
        XCTAssertEqual(h.evaluate("lm.defaults.temperature"), .values(["0.25"]))
        try h.set(option: "max-tokens", value: "12")
        XCTAssertEqual(h.defaults.maxTokens, 12)
        try h.set(option: "stop", value: "\\n\\n")
        XCTAssertEqual(h.defaults.stop, ["\n\n"])
        try h.set(option: "ignore_eos", value: "on")
        XCTAssertTrue(h.defaults.ignoreEOS)
        try h.set(option: "stream", value: "off")
        XCTAssertEqual(h.evaluate("lm.defaults.stream"), .values(["false"]))
        XCTAssertThrowsError(try h.set(option: "temprature", value: "1")) { e in
            XCTAssertEqual("\(e)", "unknown option 'temprature' (did you mean 'temperature'?)")
        }
        XCTAssertThrowsError(try h.set(option: "top_p", value: "2")) { e in
            XCTAssertEqual("\(e)", "top_p must be between 0 and 1, got 2")
        }
        XCTAssertThrowsError(try h.set(option: "top_k", value: "many"))
        var d = h.defaults
        d.sampling.seed = 9
        h.defaults = d
        XCTAssertEqual(h.evaluate("lm.defaults.seed"), .values(["9"]))
        XCTAssertEqual(h.defaults.maxTokens, 12, "setting defaults keeps the other values")
    }

    func testStreamSinkAndInterrupt() throws {
        let h = try host(model: true)
        var streamed = ""
        h.streamSink = { streamed += $0 }
        let ids = "{1,4093,198,1780,314,260,3575,282,4649,47,2,198,1,520,9531,198}"
        XCTAssertEqual(h.evaluate("r = lm.generate(\(ids), {temperature = 0});"), .ok)
        XCTAssertEqual(streamed, "The capital of France is Paris.\n")
        XCTAssertEqual(h.evaluate("r.text"), .values(["The capital of France is Paris."]))
        streamed = ""
        XCTAssertEqual(h.evaluate("r = lm.generate(\(ids), {temperature = 0, stream = false});"), .ok)
        XCTAssertEqual(streamed, "")
        // An interrupt during a generation stops it at the next token and keeps the partial result.
        h.register(global: "_interrupt") { [unowned h] _ in h.interrupt(); return 0 }
        XCTAssertEqual(h.evaluate("""
            n = 0
            r = lm.generate('Once upon a time', {max_tokens = 200, ignore_eos = true, stream = false,
              on_token = function() n = n + 1; if n == 5 then _interrupt() end end});
            """), .ok)
        XCTAssertEqual(h.evaluate("r.finish"), .values(["cancelled"]))
        XCTAssertEqual(h.evaluate("#r.ids"), .values(["5"]))
        // An interrupt while Lua code runs raises "interrupted!" from the count hook.
        guard case .error(let e) = h.evaluate("_interrupt() while true do end") else { return XCTFail() }
        XCTAssertTrue(e.contains("interrupted!"), e)
        XCTAssertEqual(h.evaluate("1"), .values(["1"]), "the flag is taken")
    }

    func testHelpPrints() throws {
        let h = try host()
        XCTAssertEqual(h.evaluate("help(lm.generate)"), .ok)
        XCTAssertEqual(h.evaluate("type(lm.doc('generate'))"), .values(["string"]))
    }
}
