import XCTest
@testable import Engine

/// Tokenizer behaviour on hand-made vocabularies and on the real models' special tokens.
final class TokenizerUnitTests: XCTestCase {
    /// GPT-2's byte → character mapping, for building byte-level vocabularies by hand.
    static func gpt2Char(_ b: UInt8) -> String {
        var extra: UInt32 = 256
        for x in 0..<256 {
            let printable = (0x21...0x7E).contains(x) || (0xA1...0xAC).contains(x) || (0xAE...0xFF).contains(x)
            let cp = printable ? UInt32(x) : { defer { extra += 1 }; return extra }()
            if x == Int(b) { return String(Unicode.Scalar(cp)!) }
        }
        return ""
    }

    static func bpe(pre: String, merges: [String]) throws -> Tokenizer {
        var tokens = (0..<256).map { gpt2Char(UInt8($0)) }
        for m in merges { tokens.append(m.replacingOccurrences(of: " ", with: "")) }
        let v = TokenizerVocabulary(model: "gpt2", pre: pre, tokens: tokens.map { Array($0.utf8) },
                                    merges: merges.map { Array($0.utf8) })
        return try Tokenizer(vocabulary: v)
    }

    func split(_ pre: String, _ text: String) -> [String] {
        let p = PreTokenizer(pre: pre)!
        let scalars = Array(text.unicodeScalars)
        var out = [String](), start = 0
        for end in p.split(scalars.map(\.value)) {
            out.append(String(String.UnicodeScalarView(scalars[start..<end])))
            start = end
        }
        return out
    }

    func testPreTokenizerGPT2() {
        XCTAssertEqual(split("gpt-2", "Hello  world"), ["Hello", " ", " world"])
        XCTAssertEqual(split("gpt-2", "don't DON'T"), ["don", "'t", " DON", "'", "T"])
        XCTAssertEqual(split("gpt-2", "x  \n"), ["x", "  \n"])
        XCTAssertEqual(split("gpt-2", "a\nb"), ["a", "\n", "b"])
        XCTAssertEqual(split("gpt-2", "3.14 ok!!"), ["3", ".", "14", " ok", "!!"])
        XCTAssertEqual(split("smollm", "ab 123"), ["ab", " ", "1", "2", "3"])
    }

    func testPreTokenizerLlama3AndQwen2() {
        XCTAssertEqual(split("llama3", "1234567"), ["123", "456", "7"])
        XCTAssertEqual(split("qwen2", "123"), ["1", "2", "3"])
        XCTAssertEqual(split("llama3", "Hello\n\nworld"), ["Hello", "\n\n", "world"])
        XCTAssertEqual(split("llama3", "  hi"), [" ", " hi"])
        XCTAssertEqual(split("llama3", "I'LL go"), ["I", "'LL", " go"])
        XCTAssertEqual(split("llama3", "a  \n  b"), ["a", "  \n", " ", " b"])
        XCTAssertEqual(split("llama3", "(x) {\n"), ["(x", ")", " {\n"])
        XCTAssertEqual(split("llama3", "\tword"), ["\tword"])
        XCTAssertEqual(split("qwen2", "héllo мир 中文"), ["héllo", " мир", " 中文"])
    }

    func testPreTokenizerDefault() {
        XCTAssertEqual(split("default", "a+b=1234567"), ["a", "+", "b", "=", "123", "456", "7"])
    }

    func testUnknownPreTokenizerIsNamed() {
        let v = TokenizerVocabulary(model: "gpt2", pre: "mystery-pre", tokens: [[0x61]], merges: [])
        XCTAssertThrowsError(try Tokenizer(vocabulary: v)) { e in
            XCTAssertTrue("\(e)".contains("'mystery-pre'"), "\(e)")
        }
        let w = TokenizerVocabulary(model: "bert", tokens: [[0x61]])
        XCTAssertThrowsError(try Tokenizer(vocabulary: w)) { e in XCTAssertTrue("\(e)".contains("'bert'"), "\(e)") }
    }

    func testBPEMergesByRank() throws {
        // Ranks: "l l" first, then "h e", "he ll", "hell o", "Ġ w".
        let tok = try Self.bpe(pre: "gpt-2", merges: ["l l", "h e", "he ll", "hell o", "Ġ w", "a a"])
        let hello = tok.tokenID("hello")!, space = tok.tokenID("Ġw")!
        XCTAssertEqual(tok.encode("hello w"), [hello, space])
        XCTAssertEqual(tok.decode(tok.encode("hello w")), "hello w")
        // Equal ranks: the leftmost pair merges first.
        XCTAssertEqual(tok.encode("aaa"), [tok.tokenID("aa")!, tok.tokenID("a")!])
        // Bytes that merge with nothing stay single-byte tokens.
        XCTAssertEqual(tok.encode("é"), [0xC3, 0xA9].map { tok.tokenID(Self.gpt2Char($0))! })
        XCTAssertEqual(tok.piece(tok.tokenID("Ġw")!), Array(" w".utf8))
    }

    func testSentencePieceMergesAndByteFallback() throws {
        var tokens: [String] = ["<unk>", "<s>", "</s>"]
        var types = [2, 3, 3]
        for b in 0..<256 { tokens.append(String(format: "<0x%02X>", b)); types.append(6) }
        let normal: [(String, Float)] = [("▁", -1), ("a", -2), ("b", -2), ("ab", -3), ("▁a", -1.5), ("▁ab", -0.5), ("ba", -0.1)]
        for (t, _) in normal { tokens.append(t); types.append(1) }
        let scores = [Float](repeating: 0, count: 3 + 256) + normal.map(\.1)
        let v = TokenizerVocabulary(model: "llama", tokens: tokens.map { Array($0.utf8) }, types: types, scores: scores,
                                    bos: 1, eos: 2, unk: 0, addBOS: true, addSpacePrefix: true)
        let tok = try Tokenizer(vocabulary: v)
        let id = { (s: String) in tok.tokenID(s)! }
        // Leading space added, "▁ab" preferred over "▁a" + "b".
        XCTAssertEqual(tok.encode("ab"), [1, id("▁ab")])
        // "ba" (score -0.1) merges first, so "▁aba" ends as "▁a" "ba", never "▁ab" "a".
        XCTAssertEqual(tok.encode("aba", addSpecial: false), [id("▁a"), id("ba")])
        XCTAssertEqual(tok.encode("bab", addSpecial: false), [id("▁"), id("ba"), id("b")])
        // A character outside the vocabulary falls back to its UTF-8 bytes.
        XCTAssertEqual(tok.encode("é", addSpecial: false), [id("▁"), id("<0xC3>"), id("<0xA9>")])
        XCTAssertEqual(tok.decode(tok.encode("é ab")), " é ab")
        XCTAssertEqual(tok.piece(1), [])
        XCTAssertEqual(tok.piece(1, special: true), Array("<s>".utf8))
        // parse_special: "</s>" is a control token only when asked.
        XCTAssertEqual(tok.encode("a</s>", addSpecial: false, parseSpecial: true), [id("▁a"), 2])
        XCTAssertFalse(tok.encode("a</s>", addSpecial: false, parseSpecial: false).contains(2))
    }

    func testStreamDecoderHoldsIncompleteCharacters() {
        XCTAssertEqual(TokenStreamDecoder.incompleteTail([0x61, 0xF0, 0x9F]), 2)
        XCTAssertEqual(TokenStreamDecoder.incompleteTail([0xF0, 0x9F, 0xA4, 0x96]), 0)
        XCTAssertEqual(TokenStreamDecoder.incompleteTail([0x61, 0x80]), 0)     // stray continuation: not held
        XCTAssertEqual(TokenStreamDecoder.incompleteTail([0xE0, 0x80]), 0)     // overlong: never completes
    }

    // MARK: Real vocabularies

    func testGemmaStreamOfByteFallbackCharacter() throws {
        let tok = try TokenizerTests.tokenizer(TestModels.gemma3)
        let text = "x\u{10FFFD}y"             // a private-use character: no entry, four byte tokens
        let ids = tok.encode(text, addSpecial: false)
        XCTAssertGreaterThanOrEqual(ids.count, 6)
        var s = tok.makeStreamDecoder()
        let parts = ids.map { s.push($0) }
        XCTAssertEqual(parts.joined() + s.finish(), text)
        XCTAssertTrue(parts.contains(""), "some bytes should have been held back")
        XCTAssertFalse(parts.joined().contains("\u{FFFD}"))
        // Cut off mid-character: finish() replaces the incomplete bytes.
        var cut = tok.makeStreamDecoder()
        var out = ""
        for id in ids.prefix(3) { out += cut.push(id) }
        XCTAssertEqual(out, "x")
        XCTAssertEqual(cut.finish(), "\u{FFFD}")
    }

    func testGemmaSpecialTokens() throws {
        let tok = try TokenizerTests.tokenizer(TestModels.gemma3)
        XCTAssertEqual(tok.bos, 2); XCTAssertEqual(tok.eos, 1); XCTAssertTrue(tok.addBOS)
        XCTAssertEqual(tok.endOfGeneration, [1, 106])
        let start = tok.tokenID("<start_of_turn>")!, end = tok.tokenID("<end_of_turn>")!
        let chat = "<start_of_turn>user\nHi<end_of_turn>\n"
        let parsed = tok.encode(chat, parseSpecial: true)
        XCTAssertEqual(Array(parsed.prefix(2)), [2, start])
        XCTAssertTrue(parsed.contains(end))
        // Between special tokens, the text is tokenized on its own (no space prefix for Gemma 3).
        XCTAssertEqual(parsed, [2, start] + tok.encode("user\nHi", addSpecial: false) + [end]
                       + tok.encode("\n", addSpecial: false))
        let plain = tok.encode(chat, parseSpecial: false)
        XCTAssertFalse(plain.contains(start) || plain.contains(end))
        XCTAssertEqual(tok.decode(parsed, special: true), "<bos>" + chat)
        XCTAssertEqual(tok.decode(parsed), chat.replacingOccurrences(of: "<start_of_turn>", with: "")
                        .replacingOccurrences(of: "<end_of_turn>", with: ""))
        XCTAssertEqual(tok.encode("", addSpecial: true), [2])
        XCTAssertEqual(tok.encode("", addSpecial: false), [])
    }

    func testQwenSpecialTokens() throws {
        let tok = try TokenizerTests.tokenizer(TestModels.qwen25Coder)
        XCTAssertEqual(tok.vocabularySize, 151936)
        XCTAssertFalse(tok.addBOS)
        XCTAssertEqual(tok.eos, 151645)
        XCTAssertEqual(tok.endOfGeneration, [151643, 151645, 151662, 151663, 151664])
        // User-defined entries are matched even without parse_special, as llama.cpp does.
        XCTAssertTrue(tok.encode("x<tool_call>y").contains(151657))
        XCTAssertFalse(tok.encode("<|im_end|>").contains(151645))
        XCTAssertEqual(tok.encode("<|im_end|>", parseSpecial: true), [151645])
        XCTAssertEqual(tok.encode("hi", addSpecial: true), [tok.bos!, tok.tokenID("hi")!])
        XCTAssertEqual(tok.piece(151645), [])
        XCTAssertEqual(tok.piece(151645, special: true), Array("<|im_end|>".utf8))
    }

    func testSmolLM2SpecialTokens() throws {
        let tok = try TokenizerTests.tokenizer(TestModels.smolLM2)
        XCTAssertEqual(tok.vocabularySize, 49152)
        XCTAssertEqual(tok.bos, 1); XCTAssertEqual(tok.eos, 2); XCTAssertFalse(tok.addBOS)
        XCTAssertTrue(tok.endOfGeneration.isSuperset(of: [0, 2]))
        XCTAssertEqual(tok.encode("<|im_start|>assistant\n", parseSpecial: true).first, 1)
    }
}
