// GBNF grammars (Grammar.swift) and the matcher that constrains generation (GrammarMatcher.swift): parsing as
// llama.cpp parses, the language a grammar accepts, token masks against a real vocabulary, and errors with positions.
import Foundation
import XCTest
@testable import Engine

final class GrammarTests: XCTestCase {
    nonisolated(unsafe) static var tokenizer: Tokenizer?

    static func sharedTokenizer() throws -> Tokenizer {
        if let t = GrammarTests.tokenizer { return t }
        let m = try LanguageModel(path: try TestModels.path(TestModels.smolLM2), threads: 1)
        GrammarTests.tokenizer = m.tokenizer
        return m.tokenizer
    }

    func smolTokenizer() throws -> Tokenizer { try GrammarTests.sharedTokenizer() }

    func constraint(_ g: String) throws -> GrammarConstraint {
        GrammarConstraint(try Grammar(g), tokenizer: try smolTokenizer())
    }

    func testLanguageOfSmallGrammars() throws {
        let cases: [(String, [String], [String])] = [
            (#"root ::= "a" | "bc""#, ["a", "bc"], ["", "b", "abc", "ab"]),
            (#"root ::= [a-c]+ "!""#, ["a!", "abcabc!"], ["!", "ad!", "a"]),
            (#"root ::= [^x] "y""#, ["ay", "éy", "日y"], ["xy", "y"]),
            (#"root ::= "a"{2,3}"#, ["aa", "aaa"], ["a", "aaaa"]),
            (#"root ::= "a"{2}"#, ["aa"], ["a", "aaa"]),
            (#"root ::= "a"{2,} "b""#, ["aab", "aaaaab"], ["ab"]),
            (#"root ::= ("ab" | "c")* "."  # a comment"#, [".", "ab.", "cabc."], ["a.", "abab"]),
            ("root ::= x y\nx ::= \"1\"?\ny ::= [0-9]", ["5", "15"], ["", "155"]),
            (#"root ::= "\x41\u00e9\n\t\\""#, ["Aé\n\t\\"], ["A"]),
            ("root ::= .", ["a", "é", "日"], ["", "ab"]),
            ("root ::= (\n  \"a\"\n  | \"b\"\n)", ["a", "b"], ["ab"]),
        ]
        for (g, yes, no) in cases {
            let c = try constraint(g)
            for s in yes { XCTAssertTrue(c.accepts(text: s), "\(g) should accept \(s.debugDescription)") }
            for s in no { XCTAssertFalse(c.accepts(text: s), "\(g) should refuse \(s.debugDescription)") }
        }
    }

    func testChessGrammarRefusesBytesItHasNoCharacterFor() throws {
        let chess = """
        root    ::= "1. " move " " move "\\n" ([1-9] [0-9]? ". " move " " move "\\n")+
        move    ::= (pawn | nonpawn | castle) [+#]?
        nonpawn ::= [NBKQR] [a-h]? [1-8]? "x"? [a-h] [1-8]
        pawn    ::= ([a-h] "x")? [a-h] [1-8] ("=" [NBKQR])?
        castle  ::= "O-O" "-O"?
        """
        let c = try constraint(chess)
        XCTAssertTrue(c.accepts(text: "1. e4 e5\n2. Nf3 Nc6\n"))
        XCTAssertFalse(c.accepts(text: "1. e4 e5\n"))
        let t = try smolTokenizer()
        var st = c.initial
        for id in t.encode("1. ", addSpecial: false) {
            guard let next = c.accept(st, id) else { return XCTFail("token \(id) of '1. ' refused") }
            st = next
        }
        let m = c.mask(st)
        var allowed: [Int32] = []
        for id in 0..<Int32(t.vocabularySize) where m[Int(id) >> 6] & (1 << UInt64(id & 63)) != 0 { allowed.append(id) }
        for id in allowed {
            let p = t.piece(id, special: true)
            XCTAssertTrue(p.allSatisfy { $0 < 0x80 }, "token \(id) \(p) allowed after '1. '")
        }
        XCTAssertFalse(allowed.isEmpty)
    }

    /// Every grammar of llama.cpp's grammars/ folder copied here parses and compiles, and takes a sample sentence.
    func testLlamaCppExampleGrammarsParse() throws {
        let samples = ["json": #"{"a": [1, 2.5, "x"], "b": null}"#, "json_arr": "[\n1,\n{\"k\": true}]",
                       "list": "- eggs\n- milk\n", "chess": "1. e4 e5\n2. Nf3 Nc6\n", "arithmetic": "1 +2 = 3\n",
                       "english": "Hello world.", "japanese": "こんにちは", "c": "int main(){return 0;}"]
        for name in ["json", "json_arr", "list", "chess", "arithmetic", "english", "japanese", "c"] {
            let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "gbnf", subdirectory: "Fixtures/grammars"))
            let c = try constraint(try String(contentsOf: url, encoding: .utf8))
            if let s = samples[name] { XCTAssertTrue(c.accepts(text: s), "\(name): \(s.debugDescription)") }
        }
    }

    func testErrorsNameTheLineColumnAndWhatWasExpected() {
        let cases: [(String, String)] = [
            ("root ::= foo", "line 1, column 10: rule 'foo' is used but not defined"),
            ("root := \"a\"", "line 1, column 6: expecting ::= after the rule name 'root'"),
            ("root ::= [a-z", "unexpected end of the grammar inside a character class"),
            ("a ::= \"x\"", "the grammar has no rule 'root'"),
            ("root ::= \"a\"\nroot ::= \"b\"", "line 2, column 1: rule 'root' is defined twice"),
            ("root ::= root \"a\" | \"b\"", "rule 'root' is left-recursive"),
            ("root ::= \"\\q\"", "line 1, column 11: unknown escape"),
            ("root ::= \"a\"{3,1}", "below its minimum"),
            ("root ::= *", "expecting an item before the repetition"),
            ("root ::= (\"a\"", "expecting ')'"),
        ]
        for (g, expected) in cases {
            XCTAssertThrowsError(try Grammar(g), g) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(g): \(e)")
            }
        }
    }
}

/// Seeded generations under llama.cpp's own example grammars (Fixtures/grammars, MIT, from llama.cpp's grammars/
/// folder), each output checked by a validator that is not the matcher: JSON by JSONSerialization, the list and
/// chess grammars by regular expressions written from them, every grammar by the parser of the other direction
/// (the output re-checked by a fresh matcher). Outputs that reach max_tokens (finish "incomplete") must be a prefix
/// of a sentence.
final class GrammarGenerationTests: XCTestCase {
    func fixture(_ name: String) throws -> String {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "gbnf", subdirectory: "Fixtures/grammars"))
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// Regular expressions equivalent to two of the grammars (their languages are regular).
    static let regexes: [String: String] = [
        "list": #"^(- [^\r\n\x{0b}\x{0c}\x{85}\x{2028}\x{2029}]+\n)+$"#,
        "chess": #"^1\. M M\n([1-9][0-9]?\. M M\n)+$"#.replacingOccurrences(
            of: "M", with: #"(?:(?:(?:[a-h]x)?[a-h][1-8](?:=[NBKQR])?)|(?:[NBKQR][a-h]?[1-8]?x?[a-h][1-8])|(?:O-O(?:-O)?))[+#]?"#),
    ]

    func testSeededGenerationsFollowTheGrammars() throws {
        let m = try LanguageModel(path: try TestModels.path(TestModels.smolLM2), threads: 2)
        let prompts = ["json": "A JSON object describing a cat:", "json_arr": "A JSON list of three numbers:",
                       "list": "A shopping list:\n", "chess": "The game began: ", "arithmetic": "An arithmetic expression: "]
        var complete = 0, total = 0
        for (name, prompt) in prompts.sorted(by: { $0.key < $1.key }) {
            let text = try fixture(name)
            let check = GrammarConstraint(try Grammar(text), tokenizer: m.tokenizer)
            var o = GenerationOptions()
            o.grammar = text
            o.maxTokens = 40
            for seed in 0..<UInt64(6) {
                o.sampling.seed = 1000 + seed
                o.sampling.temperature = seed == 0 ? 0 : 1   // greedy once, then sampled
                o.constrainedLogprobs = true
                let g = try m.generate(m.tokenizer.encode(prompt), options: o)
                total += 1
                XCTAssertTrue([.eos, .stop, .incomplete, .length].contains(g.finish), "\(name) seed \(seed): finish \(g.finish)")
                // Renormalised over the allowed tokens, a token's constrained log-probability is at least the model's.
                for t in g.tokens {
                    guard let c = t.constrainedLogprob else { XCTFail("\(name) seed \(seed): token \(t.id) has no constrained log-probability"); break }
                    XCTAssertGreaterThanOrEqual(c, t.logprob - 1e-4, "\(name) seed \(seed): token \(t.id)")
                    XCTAssertLessThanOrEqual(c, 1e-4)
                }
                if g.finish == .incomplete {
                    XCTAssertTrue(check.acceptsPrefix(text: g.text), "\(name) seed \(seed): not a prefix: \(g.text.debugDescription)")
                    continue
                }
                complete += 1
                XCTAssertTrue(check.accepts(text: g.text), "\(name) seed \(seed): \(g.text.debugDescription)")
                if name.hasPrefix("json") {
                    XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(g.text.utf8), options: [.fragmentsAllowed]),
                                     "\(name) seed \(seed): \(g.text.debugDescription)")
                }
                if let pattern = GrammarGenerationTests.regexes[name] {
                    let re = try NSRegularExpression(pattern: pattern)
                    let whole = NSRange(g.text.startIndex..., in: g.text)
                    XCTAssertEqual(re.firstMatch(in: g.text, range: whole)?.range, whole, "\(name) seed \(seed): \(g.text.debugDescription)")
                }
            }
        }
        XCTAssertGreaterThan(complete, total / 4, "many generations should end inside 40 tokens")
    }

    /// A draw that reaches only the best k tokens (greedy, top-k) asks the grammar about the best candidates while a
    /// state's mask is unknown; it must draw what the masked row draws. Each pair: the first generation under a
    /// grammar never compiled before (few masks known, so mostly the candidates' path), then the same seed with
    /// `constrainedLogprobs`, which masks every step. An untruncated draw is by rejection either way: asking for the
    /// constrained log-probabilities must not change it.
    func testDrawingFromTheBestCandidatesEqualsMasking() throws {
        let m = try LanguageModel(path: try TestModels.path(TestModels.smolLM2), threads: 2)
        var settings: [(String, SamplingParameters)] = []
        var p = SamplingParameters.greedy
        settings.append(("greedy", p))
        p = SamplingParameters(); p.temperature = 1
        settings.append(("defaults at T=1", p))
        p = SamplingParameters(); p.temperature = 0.7; p.topK = 5; p.topP = 0.5; p.minP = 0
        settings.append(("top-k 5, top-p 0.5", p))
        p = SamplingParameters(); p.temperature = 1.5; p.topK = 100; p.topP = 1; p.minP = 0
        p.repetitionPenalty = 1.3; p.presencePenalty = 0.5; p.frequencyPenalty = 0.2
        settings.append(("top-k 100, penalties", p))
        p = SamplingParameters(); p.temperature = 1; p.topK = 2; p.minP = 0.2
        settings.append(("top-k 2, min-p 0.2", p))
        p = SamplingParameters(); p.temperature = 1; p.topK = 0; p.topP = 1; p.minP = 0; p.repetitionPenalty = 1.2
        settings.append(("whole distribution (rejection)", p))
        let grammars = ["json": "A JSON object describing a cat:", "list": "A shopping list:\n",
                        "arithmetic": "An arithmetic expression: "]
        var variant = 0, lazySteps = 0, steps = 0
        for (name, prompt) in grammars.sorted(by: { $0.key < $1.key }) {
            for (label, sampling) in settings {
                for seed in 0..<UInt64(2) {
                    variant += 1
                    // A comment makes the text new to the grammar cache: a fresh constraint, no masks known.
                    var o = GenerationOptions()
                    o.grammar = try fixture(name) + "\n# variant \(variant)\n"
                    o.maxTokens = 32
                    o.sampling = sampling
                    o.sampling.seed = 77 + seed
                    let tokens = m.tokenizer.encode(prompt)
                    let constraint = try GrammarCache.shared.constraint(o.grammar!, tokenizer: m.tokenizer)
                    let byCandidates = try m.generate(tokens, options: o)
                    lazySteps += byCandidates.ids.count + 1 - constraint.maskCount
                    steps += byCandidates.ids.count + 1
                    o.constrainedLogprobs = true
                    let masked = try m.generate(tokens, options: o)
                    XCTAssertEqual(byCandidates.ids, masked.ids, "\(name), \(label), seed \(seed)")
                    XCTAssertEqual(byCandidates.finish, masked.finish, "\(name), \(label), seed \(seed)")
                    XCTAssertNil(byCandidates.tokens.first?.constrainedLogprob)
                    XCTAssertNotNil(masked.tokens.first?.constrainedLogprob)
                }
            }
        }
        // The candidates' path must have been the one taken for most steps (else the comparison shows nothing).
        XCTAssertGreaterThan(lazySteps, steps / 3, "\(lazySteps) of \(steps) steps drawn without a mask")
    }
}

/// Regular expressions and choices, compiled to grammars: the language each accepts checked against
/// NSRegularExpression (an independent matcher) on sample strings, and errors with positions.
final class RegexConstraintTests: XCTestCase {
    func testRegexLanguageAgreesWithNSRegularExpression() throws {
        let tokenizer = try GrammarTests.sharedTokenizer()
        let cases: [(String, [String])] = [
            (#"\d+"#, ["", "1", "123", "12a", "a"]),
            (#"The answer is -?\d+(\.\d+)?\."#, ["The answer is 42.", "The answer is -3.5.", "The answer is .", "The answer is 4"]),
            (#"^(yes|no)$"#, ["yes", "no", "yesno", "y"]),
            (#"[A-D]"#, ["A", "D", "E", "AB", ""]),
            (#"[^a-c]{2,3}"#, ["xy", "xyz", "xa", "wxyz", "x"]),
            (#"\w+@\w+\.com"#, ["a@b.com", "a_1@x2.com", "@b.com", "a@b.org"]),
            (#"(?:ab)*c?"#, ["", "ab", "abab", "ababc", "aba", "c", "cc"]),
            (#"a.b"#, ["axb", "a\nb", "ab", "aéb"]),
            (#"\s*x\S"#, ["x1", "  \tx1", "x ", " x"]),
            (#"[\d\-]+"#, ["1-2", "--", "1a"]),
            (#"colou?r{1,2}"#, ["color", "colour", "colorr", "colr", "colorrr"]),
            (#"\x41\u00e9[\]\\]"#, ["Aé]", "Aé\\", "Aé["]),
        ]
        for (pattern, strings) in cases {
            let c = GrammarConstraint(try Grammar(try ConstraintGrammar.regex(pattern)), tokenizer: tokenizer)
            let re = try NSRegularExpression(pattern: "^(?:" + pattern.replacingOccurrences(of: "^", with: "", options: .anchored)
                                                .replacingOccurrences(of: "$", with: "", options: [.anchored, .backwards]) + ")$")
            for s in strings {
                let expected = re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
                XCTAssertEqual(c.accepts(text: s), expected, "\(pattern) on \(s.debugDescription)")
            }
        }
    }

    func testChoicesAcceptExactlyTheirStrings() throws {
        let tokenizer = try GrammarTests.sharedTokenizer()
        let choices = ["A", "B", "yes \"quoted\"", "back\\slash", "[x-y]", "日本"]
        let c = GrammarConstraint(try Grammar(try ConstraintGrammar.choices(choices)), tokenizer: tokenizer)
        for s in choices { XCTAssertTrue(c.accepts(text: s), s) }
        for s in ["", "C", "AB", "yes", "x"] { XCTAssertFalse(c.accepts(text: s), s) }
        XCTAssertThrowsError(try ConstraintGrammar.choices([])) { XCTAssertTrue("\($0)".contains("at least one")) }
        XCTAssertThrowsError(try ConstraintGrammar.choices(["a", ""])) { XCTAssertTrue("\($0)".contains("choice 2 is empty")) }
    }

    func testRegexErrorsNameThePosition() {
        let cases: [(String, String)] = [
            (#"(ab"#, "position 1: expecting ')' to close the group"),
            (#"ab)"#, "position 3: unbalanced ')'"),
            (#"a**"#, "position 3: a quantifier after a quantifier"),
            (#"*a"#, "position 1: '*' with nothing before it"),
            (#"(a)\1"#, "position 4: back-references are not supported"),
            (#"(?=a)"#, "position 1: only non-capturing groups"),
            (#"a^b"#, "anchors are allowed only at the start and the end"),
            (#"[z-a]"#, "position 1: the range z-a is backwards"),
            (#"[abc"#, "position 1: expecting ']'"),
            (#"a{3,1}"#, "position 2: the repetition's maximum 1 is below its minimum 3"),
            (#"\q"#, "position 1: unknown escape"),
        ]
        for (pattern, expected) in cases {
            XCTAssertThrowsError(try ConstraintGrammar.regex(pattern), pattern) { e in
                XCTAssertTrue("\(e)".contains("regex: " + expected) || "\(e)".contains(expected), "\(pattern): \(e)")
            }
        }
    }

    func testAtMostOneConstraint() {
        var o = GenerationOptions()
        o.grammar = "root ::= \"a\""
        o.regex = "a"
        XCTAssertThrowsError(try o.check()) { XCTAssertTrue("\($0)".contains("give at most one of grammar, regex, choices and json_schema, got grammar and regex")) }
    }
}

/// Seeded generations under regular expressions and choices on the three models: every finished text is a whole
/// match by NSRegularExpression (independent of the matcher) or one of the choices; a text cut at the limit is a
/// prefix the matcher can still complete.
final class ConstraintPropertyTests: XCTestCase {
    func testRegexAndChoicesOnTheThreeModels() throws {
        let patterns = [#"-?\d{1,4}"#, #"(yes|no)\."#, #"[A-D]\) \w+"#, #"\d+ \+ \d+ = \d+"#, #"[a-z]{2,6}(, [a-z]{2,6}){0,2}"#]
        let choices = [["A", "B", "C", "D"], ["true", "false"], ["Paris", "London", "Rome", "Madrid", "Berlin"]]
        var finished = 0, runs = 0
        for file in [TestModels.smolLM2, TestModels.gemma3, TestModels.qwen25Coder] {
            let m = try LanguageModel(path: try TestModels.path(file), threads: 2)
            for (k, pattern) in patterns.enumerated() {
                let re = try NSRegularExpression(pattern: "^(?:" + pattern + ")$")
                let check = GrammarConstraint(try Grammar(try ConstraintGrammar.regex(pattern)), tokenizer: m.tokenizer)
                var o = GenerationOptions()
                o.regex = pattern
                o.maxTokens = 16
                for seed in 0..<UInt64(3) {
                    o.sampling.seed = seed &+ UInt64(10 * k)
                    o.sampling.temperature = seed == 0 ? 0 : 1
                    let g = try m.generate(m.tokenizer.encode("Answer: "), options: o)
                    runs += 1
                    if g.finish == .incomplete {
                        XCTAssertTrue(check.acceptsPrefix(text: g.text), "\(file) \(pattern): \(g.text.debugDescription)")
                        continue
                    }
                    finished += 1
                    let whole = NSRange(g.text.startIndex..., in: g.text)
                    XCTAssertNotNil(re.firstMatch(in: g.text, range: whole), "\(file) \(pattern) seed \(seed): \(g.text.debugDescription)")
                }
            }
            for (k, list) in choices.enumerated() {
                var o = GenerationOptions()
                o.choices = list
                for seed in 0..<UInt64(3) {
                    o.sampling.seed = seed &+ UInt64(100 * k)
                    o.sampling.temperature = seed == 0 ? 0 : 1
                    let g = try m.generate(m.tokenizer.encode("Pick one: "), options: o)
                    runs += 1
                    finished += 1
                    XCTAssertTrue(list.contains(g.text), "\(file) \(list) seed \(seed): \(g.text.debugDescription) (\(g.finish))")
                }
            }
        }
        XCTAssertGreaterThan(finished, runs * 2 / 3, "most constrained generations should finish within 16 tokens")
    }
}
