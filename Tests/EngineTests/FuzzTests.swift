// Seeded fuzzing of the engine's readers of outside input: the GGUF reader (mutated synthetic files and mutated
// real headers), the tokenizer (arbitrary bytes, with and without special-token parsing, and arbitrary ids back
// to text) and the chat templates (mutated template sources, arbitrary conversations). Each input must give a
// result or a thrown error: never a trap, a hang, or a broken property. A few thousand inputs run in the test
// suite (seconds); REFRAIN_FUZZ_RUNS=1000000 (Tests/fuzz.sh) runs the long mode, REFRAIN_FUZZ_SEED another seed.
// Each target prints one line: inputs, executions, findings, seconds.
@testable import Engine
import XCTest


enum Fuzz {
    /// Inputs per target: REFRAIN_FUZZ_RUNS, else `fast` (the test suite's share).
    static func runs(_ fast: Int) -> Int {
        ProcessInfo.processInfo.environment["REFRAIN_FUZZ_RUNS"].flatMap { Int($0) } ?? fast
    }
    static var seed: UInt64 { ProcessInfo.processInfo.environment["REFRAIN_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20261129 }

    static let interesting64: [UInt64] = [0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff,
                                          1 << 32, 1 << 40, 1 << 62, UInt64(Int64.max), UInt64.max, UInt64.max - 1]

    /// One to four mutations of `input`: bit flips, bytes set to random or edge values, 8-byte fields set to edge
    /// counts and lengths, truncations, deletions, duplications and insertions. `hot` bytes at the start (a
    /// header) draw most of the point mutations.
    static func mutate(_ input: [UInt8], _ rng: inout SplitMix, hot: Int = .max) -> [UInt8] {
        var b = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let span = max(1, min(b.count, hot))
            switch Int.random(in: 0..<9, using: &rng) {
            case 0 where !b.isEmpty:
                b[Int.random(in: 0..<span, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            case 1 where !b.isEmpty:
                b[Int.random(in: 0..<span, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 2 where !b.isEmpty:
                b[Int.random(in: 0..<span, using: &rng)] = [0, 1, 0x7f, 0x80, 0xfe, 0xff].randomElement(using: &rng)!
            case 3 where b.count >= 8:
                let at = Int.random(in: 0...(min(b.count, hot >= b.count ? b.count : hot + 8) - 8), using: &rng)
                let v = interesting64.randomElement(using: &rng)!
                for k in 0..<8 { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            case 4 where b.count >= 4:
                let at = Int.random(in: 0...(min(b.count, hot >= b.count ? b.count : hot + 4) - 4), using: &rng)
                let v = UInt32(truncatingIfNeeded: interesting64.randomElement(using: &rng)!)
                for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
            case 5 where !b.isEmpty:
                b.removeLast(Int.random(in: 0..<b.count, using: &rng))
            case 6 where b.count > 1:
                let at = Int.random(in: 0..<b.count, using: &rng)
                b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...16, using: &rng)))
            case 7 where !b.isEmpty:
                let at = Int.random(in: 0..<b.count, using: &rng)
                let piece = b[at..<min(b.count, at + Int.random(in: 1...32, using: &rng))]
                b.insert(contentsOf: piece, at: Int.random(in: 0...b.count, using: &rng))
            default:
                let extra = (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                b.insert(contentsOf: extra, at: Int.random(in: 0...b.count, using: &rng))
            }
        }
        return b
    }

    static func report(_ target: String, inputs: Int, executions: Int, findings: Int, since start: Date) {
        print(String(format: "fuzz %@: %d inputs, %d executions, %d findings, %.1f s (seed %llu)",
                     target, inputs, executions, findings, Date().timeIntervalSince(start), seed))
    }
}

final class FuzzTests: XCTestCase {
    nonisolated(unsafe) static var smol: LanguageModel?

    func smolLM2() throws -> LanguageModel {
        if let m = Self.smol { return m }
        let m = try LanguageModel(path: try TestModels.path(TestModels.smolLM2), threads: 1)
        Self.smol = m
        return m
    }

    /// Where each GGUF input is written to be mapped (tmpfs when there is one); kept after a crash, so that the
    /// input that caused it can be read back.
    var inputPath: String {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return dir + "/refrain-fuzz-\(getpid()).gguf"
    }

    /// Parses `bytes` as a GGUF file; a file that reads is then walked (every metadata value, every tensor).
    func parse(_ bytes: [UInt8]) -> Bool {
        guard FileManager.default.createFile(atPath: inputPath, contents: Data(bytes)) else { return false }
        guard let f = try? GGUFFile(path: inputPath) else { return false }
        for k in f.metadataKeys { _ = "\(f.metadata[k]!)".count }
        for t in f.tensors { _ = f.tensor(t.name) }
        _ = try? f.checkUnchanged()
        return true
    }

    func testGGUFReaderOnMutatedFiles() throws {
        let start = Date()
        var rng = SplitMix(Fuzz.seed)
        let g = GGUFBuilder.small   // GGUFTests' small valid file: four kinds of metadata, two tensors
        let base = g.bytes()
        let runs = Fuzz.runs(3000)
        var parsed = 0
        for _ in 0..<runs where parse(Fuzz.mutate(base, &rng)) { parsed += 1 }
        try? FileManager.default.removeItem(atPath: inputPath)
        XCTAssertTrue(parse(base), "the unmutated file reads")
        Fuzz.report("gguf-synthetic", inputs: runs, executions: runs, findings: 0, since: start)
        print("  \(parsed) of them still read as GGUF")
    }

    /// The first 64 KB of the real SmolLM2 file (its header and the start of its vocabulary), mutated mostly in
    /// the first 4 KB; each read ends at the cut, or earlier at what the mutation broke.
    func testGGUFReaderOnMutatedRealHeaders() throws {
        let start = Date()
        var rng = SplitMix(Fuzz.seed &+ 1)
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: try TestModels.path(TestModels.smolLM2)))
        let header = [UInt8](try handle.read(upToCount: 64 << 10) ?? Data())
        try handle.close()
        let runs = Fuzz.runs(1000)
        for _ in 0..<runs { _ = parse(Fuzz.mutate(header, &rng, hot: 4096)) }
        try? FileManager.default.removeItem(atPath: inputPath)
        Fuzz.report("gguf-real-header", inputs: runs, executions: runs, findings: 0, since: start)
    }

    /// Text for the tokenizer: random bytes, or pieces that stress it (special tokens whole and cut, runs of
    /// spaces and newlines, digits, multi-byte characters cut in the middle).
    static func text(_ rng: inout SplitMix) -> [UInt8] {
        let pieces = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_", "|>", "<", " ", "  ", "\n", "\n\n", "\t", "\r\n",
                      "0", "12345678901234567890", "a", "The", " the", "'s", "'ll", "é", "日本語", "🙂", "\u{0}", "\u{FEFF}",
                      "\u{200B}", "ﬁ", "A\u{301}", "\\", "\"", "<s>", "</s>", "[INST]"]
        var b: [UInt8] = []
        for _ in 0..<Int.random(in: 0...12, using: &rng) {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: b += (0..<Int.random(in: 1...6, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1: b += Array(pieces.randomElement(using: &rng)!.utf8).prefix(Int.random(in: 1...16, using: &rng))
            default: b += Array(pieces.randomElement(using: &rng)!.utf8)
            }
        }
        return b
    }

    /// Arbitrary bytes through the tokenizer with and without special tokens, and back: text without special
    /// parsing must come back exactly, but for the bytes the vocabulary has no token for (SmolLM2 has none for
    /// 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D and some bytes that only begin rare characters: they are dropped, as llama.cpp drops them); random ids (special, byte
    /// and partial-character tokens among them) must decode.
    func testTokenizerOnArbitraryBytes() throws {
        let m = try smolLM2()
        let start = Date()
        var rng = SplitMix(Fuzz.seed &+ 2)
        let runs = Fuzz.runs(5000)
        var executions = 0, findings = 0
        let V = Int32(m.config.vocabularySize)
        // The bytes no single-byte token stands for.
        let single = Set((0..<V).compactMap { id -> UInt8? in let p = m.tokenizer.piece(id); return p.count == 1 ? p[0] : nil })
        let dropped = Set((0...255).map(UInt8.init)).subtracting(single)
        XCTAssertEqual(dropped.filter { $0 < 0x80 }.sorted(), [0x04, 0x06, 0x13, 0x14, 0x16, 0x1D])
        print("  bytes without a token: \(dropped.sorted().map { String($0, radix: 16) })")
        for _ in 0..<runs {
            let s = String(decoding: Self.text(&rng), as: UTF8.self)
            let expected = String(decoding: s.utf8.filter { !dropped.contains($0) }, as: UTF8.self)
            let plain = m.tokenize(s, special: false, addSpecial: false)
            let special = m.tokenize(s, special: true, addSpecial: true)
            let back = m.detokenize(plain)
            _ = m.detokenize(special, special: true)
            let ids = (0..<Int.random(in: 0...8, using: &rng)).map { _ in Int32.random(in: 0..<V, using: &rng) }
            _ = m.detokenize(ids, special: Bool.random(using: &rng))
            executions += 5
            if back != expected {
                findings += 1
                XCTFail("tokenize/detokenize does not round-trip \(Array(s.utf8)): \(plain) gives \(Array(back.utf8))")
            }
        }
        Fuzz.report("tokenizer", inputs: runs, executions: executions, findings: findings, since: start)
    }

    /// Mutated template sources (the fixture templates: eleven, over the seven families) are recognised or refused; every family
    /// renders arbitrary conversations (roles, order and content arbitrary) or refuses them with an error.
    func testChatTemplatesOnArbitraryInput() throws {
        let start = Date()
        var rng = SplitMix(Fuzz.seed &+ 3)
        let dir = try TestModels.fixture("templates")
        let sources = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".jinja") }.sorted()
            .map { [UInt8](try Data(contentsOf: dir.appendingPathComponent($0))) }
        XCTAssertEqual(sources.count, 11)
        let roles = ["system", "user", "assistant", "tool", "model", "", "User", "<|im_start|>"]
        let runs = Fuzz.runs(3000)
        var executions = 0
        for _ in 0..<runs {
            let source = String(decoding: Fuzz.mutate(sources.randomElement(using: &rng)!, &rng), as: UTF8.self)
            let parsed = try? ChatTemplate(source: source)
            let template = parsed ?? ChatTemplate(family: ChatTemplate.Family.allCases.randomElement(using: &rng)!,
                                                 defaultSystem: Bool.random(using: &rng) ? "be brief" : nil)
            let messages = (0..<Int.random(in: 0...5, using: &rng)).map { _ in
                ChatMessage(role: roles.randomElement(using: &rng)!, content: String(decoding: Self.text(&rng), as: UTF8.self))
            }
            _ = try? template.render(messages, addGenerationPrompt: Bool.random(using: &rng))
            executions += 2
        }
        Fuzz.report("chat-template", inputs: runs, executions: executions, findings: 0, since: start)
    }
}
