import XCTest
@testable import Engine

/// The JSON-schema converter against llama.cpp's own test cases (Fixtures/json-schema/llama-cpp-cases.json, taken
/// from llama.cpp's tests/test-json-schema-to-grammar.cpp, MIT): the same schema gives the same grammar, byte for
/// byte after trimming each line as llama.cpp's test trims it, and the schemas it refuses are refused.
final class JSONSchemaGrammarTests: XCTestCase {
    struct Case: Decodable { let name: String; let status: String; let schema: String; let grammar: String }
    struct Cases: Decodable { let cases: [Case] }

    func cases() throws -> [Case] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "llama-cpp-cases", withExtension: "json", subdirectory: "Fixtures/json-schema"))
        return try JSONDecoder().decode(Cases.self, from: Data(contentsOf: url)).cases
    }

    /// llama.cpp's trim: blanks off both ends, and off the start of every line.
    func trim(_ s: String) -> String {
        s.trimmingCharacters(in: CharacterSet(charactersIn: " \n\r\t")).components(separatedBy: "\n")
            .map { String($0.drop { $0 == " " || $0 == "\t" }) }.joined(separator: "\n")
    }

    func testLlamaCppCasesGiveTheSameGrammar() throws {
        let all = try cases()
        XCTAssertGreaterThanOrEqual(all.count, 80, "the fixture lost its cases")
        var checked = 0
        for c in all {
            if c.status == "failure" {
                XCTAssertThrowsError(try ConstraintGrammar.jsonSchema(c.schema), "\(c.name): llama.cpp refuses this schema")
                checked += 1
                continue
            }
            do {
                let g = try ConstraintGrammar.jsonSchema(c.schema)
                XCTAssertEqual(trim(g), trim(c.grammar), "\(c.name)")
                // and the grammar loads into the matcher
                XCTAssertNoThrow(try Grammar(g), "\(c.name)")
                checked += 1
            } catch {
                XCTFail("\(c.name): \(error)")
            }
        }
        XCTAssertEqual(checked, all.count)
    }

    func testUnsupportedPatternIsAnyStringWithAWarning() throws {
        let (g, warnings) = try ConstraintGrammar.jsonSchemaConversion(#"{"type": "string", "pattern": "^(?=a)a$"}"#)
        XCTAssertTrue(g.contains("root ::= string\n"), g)
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("not supported"), warnings[0])
    }

    func testErrorsNameThePlaceInTheSchema() {
        let cases: [(String, String)] = [
            (#"{"type": "array", "minItems": -1}"#, "json_schema: at #: minItems must be a non-negative integer"),
            (#"{"type": "object", "properties": {"a": {"type": "strin"}}}"#, "at #/properties/a: unrecognized type strin"),
            (#"{"anyOf": []}"#, "at #/anyOf: must not be empty"),
            (#"{"$ref": "http://x/y"}"#, "only references into the same document"),
            (##"{"$ref": "#/$defs/missing"}"##, "cannot resolve $ref #/$defs/missing"),
            (#"{"type": "string", "pattern": "^(a$"}"#, "Invalid pattern ^(a$: unbalanced parentheses"),
            (#"{"type": "object",}"#, "json_schema: not JSON: offset 18: expected a member name in double quotes"),
            ("[1, 2", "not JSON: offset 5: expected ',' or ']', got the end of the text"),
        ]
        for (s, expected) in cases {
            XCTAssertThrowsError(try ConstraintGrammar.jsonSchema(s), s) { e in
                XCTAssertTrue("\(e)".contains(expected), "\(s): \(e)")
            }
        }
    }

    func testJSONValueKeepsOrderAndWritesAsNlohmann() throws {
        let v = try JSONValue.parse(#"{"b": 1, "a": [1.0, 1e-5, 0.0001, 1e20, -0.0, 2.5, 100, "é\n\u0001\""], "c": {}}"#)
        XCTAssertEqual(v.dump(), #"{"b":1,"a":[1.0,1e-05,0.0001,1e+20,-0.0,2.5,100,"é\n\u0001\""],"c":{}}"#)
        XCTAssertEqual(JSONValue.format(123456789012345.0), "123456789012345.0")
        XCTAssertEqual(JSONValue.format(1e15), "1e+15")
        XCTAssertEqual(JSONValue.format(0.1), "0.1")
        XCTAssertEqual(JSONValue.format(-1.5e-7), "-1.5e-07")
        XCTAssertEqual(try JSONValue.parse(#""\ud83d\ude00""#).string, "😀")
        XCTAssertThrowsError(try JSONValue.parse("01"))
        XCTAssertThrowsError(try JSONValue.parse(#""\ud83d""#))
    }
}
