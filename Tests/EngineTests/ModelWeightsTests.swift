import XCTest
@testable import Engine

/// Model files that parse as GGUF but cannot run: each must give a clear error naming what is wrong.
final class ModelWeightsTests: XCTestCase {
    func write(_ g: GGUFBuilder) throws -> GGUFFile {
        let path = NSTemporaryDirectory() + "refrain-model-\(UUID().uuidString).gguf"
        try Data(g.bytes()).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return try GGUFFile(path: path)
    }

    /// A tiny llama header: 1 layer, 32-wide, 2 heads, vocabulary of 4, with only the embedding present.
    func tinyLlama(arch: String = "llama") -> GGUFBuilder {
        var g = GGUFBuilder()
        g.add("general.architecture", string: arch)
        g.add("\(arch).block_count", u32: 1)
        g.add("\(arch).embedding_length", u32: 32)
        g.add("\(arch).attention.head_count", u32: 2)
        g.add("\(arch).feed_forward_length", u32: 64)
        g.add("tokenizer.ggml.tokens", strings: ["a", "b", "c", "d"])
        g.tensors = [("token_embd.weight", [32, 4], GGMLType.f32.rawValue, 0)]
        g.data = [UInt8](repeating: 0, count: 32 * 4 * 4)
        return g
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    func testUnsupportedArchitecture() throws {
        let f = try write(tinyLlama(arch: "mamba"))
        let m = message { _ = try ModelWeights(file: f) }
        XCTAssertTrue(m.contains("architecture 'mamba' is not supported"), m)
        XCTAssertTrue(m.hasPrefix(f.path), m)
    }

    func testMissingTensorIsNamed() throws {
        let f = try write(tinyLlama())
        let m = message { _ = try ModelWeights(file: f) }
        XCTAssertTrue(m.contains("missing tensor 'output_norm.weight'"), m)
    }

    func testMissingHyperParameter() throws {
        var g = tinyLlama()
        g.kv.removeAll { $0.0 == "llama.feed_forward_length" }
        let f = try write(g)
        let m = message { _ = try ModelConfig(gguf: f) }
        XCTAssertTrue(m.contains("missing or invalid metadata llama.feed_forward_length"), m)
    }

    /// RoPE scaling is read as llama.cpp reads it (the figures are ArchitectureTests'); a type llama.cpp does not
    /// know is refused by name.
    func testRopeScaling() throws {
        var g = tinyLlama()
        g.add("llama.rope.scaling.type", string: "yarn")
        g.add("llama.rope.scaling.factor", f32: 4)
        g.add("llama.rope.scaling.original_context_length", u32: 32)
        let c = try ModelConfig(gguf: try write(g))
        XCTAssertEqual(c.ropeFreqScale, 0.25)
        XCTAssertEqual(c.ropeExtFactor, 1)
        XCTAssertEqual(c.ropeOriginalContext, 32)
        XCTAssertEqual(c.ropeAttnFactor, 1, accuracy: 1e-6)   // YaRN's correction is applied in the rotation itself

        var h = tinyLlama()
        h.add("llama.rope.scaling.type", string: "su")
        let f = try write(h)
        let m = message { _ = try ModelConfig(gguf: f) }
        XCTAssertTrue(m.contains("RoPE scaling 'su'") && m.contains("supported: none, linear, yarn, longrope"), m)
    }

    /// Experts in an architecture whose mixture-of-experts layers the engine does not run (Mixtral-style llama
    /// files) are refused by name, not run as a dense model.
    func testExpertsRefusedOutsideQwen3MoE() throws {
        var g = tinyLlama()
        g.add("llama.expert_count", u32: 8)
        g.add("llama.expert_used_count", u32: 2)
        let f = try write(g)
        let m = message { _ = try ModelConfig(gguf: f) }
        XCTAssertTrue(m.contains("llama with 8 experts") && m.contains("qwen3moe only"), m)
    }

    func testConfigOfTheReferenceModels() throws {
        let g = try ModelConfig(gguf: GGUFFile(path: TestModels.path(TestModels.gemma3)))
        XCTAssertEqual(g.architecture, .gemma3)
        XCTAssertEqual(g.headDim, 256)
        XCTAssertEqual(g.slidingWindow, 512)
        XCTAssertEqual((0..<18).filter { !g.isSlidingWindowLayer($0) }, [5, 11, 17])
        XCTAssertEqual(g.ropeBaseLocal, 10_000)
        XCTAssertEqual(g.ropeBase, 1_000_000)
        let q = try ModelConfig(gguf: GGUFFile(path: TestModels.path(TestModels.qwen25Coder)))
        XCTAssertTrue(q.ropeNeox)
        XCTAssertEqual(q.kvHeadCount, 2)
        let s = try ModelConfig(gguf: GGUFFile(path: TestModels.path(TestModels.smolLM2)))
        XCTAssertFalse(s.ropeNeox)
        XCTAssertEqual(s.layerCount, 30)
    }
}
