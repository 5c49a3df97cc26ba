// Model hyper-parameters and typed views over the mapped weights. Nothing here copies a quantized weight:
// a `WeightMatrix` is a pointer into the GGUF mapping plus its shape and type.

/// The transformer families the engine runs.
public enum Architecture: String, Sendable {
    case llama, qwen2, gemma3
}

/// Hyper-parameters read from a GGUF file's `<arch>.*` metadata.
public struct ModelConfig: Sendable {
    public var architecture: Architecture
    public var layerCount: Int
    public var embeddingLength: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var valueDim: Int
    public var feedForwardLength: Int
    public var vocabularySize: Int
    public var contextLength: Int
    public var rmsEpsilon: Float
    /// RoPE base of the global-attention layers.
    public var ropeBase: Float
    /// RoPE base of the sliding-window layers (Gemma 3); equals `ropeBase` elsewhere.
    public var ropeBaseLocal: Float
    /// Rotated dimensions per head (≤ headDim).
    public var ropeDimensions: Int
    /// NeoX-style RoPE (halves rotated together) rather than adjacent pairs.
    public var ropeNeox: Bool
    /// Sliding window of the local-attention layers (0: none).
    public var slidingWindow: Int
    /// Every `slidingWindowPattern`-th layer is global; the others use the window (0: all global).
    public var slidingWindowPattern: Int
    /// Scale applied to the token embedding (√d for Gemma, 1 elsewhere).
    public var embeddingScale: Float
    /// Scale of the attention scores (1/√headDim unless the file says otherwise).
    public var attentionScale: Float

    /// Whether layer `il` attends within the sliding window.
    public func isSlidingWindowLayer(_ il: Int) -> Bool {
        slidingWindow > 0 && slidingWindowPattern > 0 && (il + 1) % slidingWindowPattern != 0
    }

    /// Reads the configuration of a file, with a clear error for missing keys or an architecture the engine lacks.
    public init(gguf f: GGUFFile) throws {
        guard let archName = f.string("general.architecture") else {
            throw ModelError.invalid(f.path, "no general.architecture in the metadata")
        }
        guard let arch = Architecture(rawValue: archName) else {
            throw ModelError.invalid(f.path, "architecture '\(archName)' is not supported (supported: llama, qwen2, gemma3)")
        }
        func req(_ k: String) throws -> Int {
            guard let v = f.int("\(archName).\(k)"), v > 0 else {
                throw ModelError.invalid(f.path, "missing or invalid metadata \(archName).\(k)")
            }
            return v
        }
        architecture = arch
        layerCount = try req("block_count")
        embeddingLength = try req("embedding_length")
        headCount = try req("attention.head_count")
        kvHeadCount = f.int("\(archName).attention.head_count_kv") ?? headCount
        headDim = f.int("\(archName).attention.key_length") ?? embeddingLength / headCount
        valueDim = f.int("\(archName).attention.value_length") ?? headDim
        feedForwardLength = try req("feed_forward_length")
        contextLength = f.int("\(archName).context_length") ?? 2048
        rmsEpsilon = f.float("\(archName).attention.layer_norm_rms_epsilon") ?? 1e-5
        ropeBase = f.float("\(archName).rope.freq_base") ?? 10000
        ropeDimensions = f.int("\(archName).rope.dimension_count") ?? headDim
        let tokens = f.array("tokenizer.ggml.tokens")?.count ?? 0
        vocabularySize = f.int("\(archName).vocab_size") ?? tokens
        switch arch {
        case .llama:
            ropeNeox = false; slidingWindow = 0; slidingWindowPattern = 0; embeddingScale = 1
            ropeBaseLocal = ropeBase
        case .qwen2:
            ropeNeox = true; slidingWindow = 0; slidingWindowPattern = 0; embeddingScale = 1
            ropeBaseLocal = ropeBase
        case .gemma3:
            // Gemma 3: five sliding-window layers for each global one; local layers keep RoPE base 10 000.
            ropeNeox = true
            slidingWindow = f.int("gemma3.attention.sliding_window") ?? 0
            slidingWindowPattern = 6
            embeddingScale = Float(embeddingLength).squareRoot()
            ropeBaseLocal = f.float("gemma3.rope.freq_base_swa") ?? 10000
        }
        if let pattern = f.int("\(archName).attention.sliding_window_pattern"), pattern > 0 {
            slidingWindowPattern = pattern
        }
        attentionScale = 1 / Float(headDim).squareRoot()
        // Features the forward pass does not implement are refused rather than computed wrongly.
        if let scaling = f.string("\(archName).rope.scaling.type"), scaling != "none",
           (f.float("\(archName).rope.scaling.factor") ?? 1) != 1 {
            throw ModelError.invalid(f.path, "RoPE scaling '\(scaling)' (\(archName).rope.scaling.type) is not supported yet")
        }
        if f.tensor("rope_freqs.weight") != nil {
            throw ModelError.invalid(f.path, "per-dimension RoPE frequency factors (rope_freqs.weight, as Llama 3.1 uses) are not supported yet")
        }
        for key in ["attn_logit_softcapping", "final_logit_softcapping"] where (f.float("\(archName).\(key)") ?? 0) != 0 {
            throw ModelError.invalid(f.path, "logit soft-capping (\(archName).\(key)) is not supported yet")
        }
        guard headCount % kvHeadCount == 0 else {
            throw ModelError.invalid(f.path, "head_count \(headCount) is not a multiple of head_count_kv \(kvHeadCount)")
        }
        guard ropeDimensions <= headDim, ropeDimensions % 2 == 0 else {
            throw ModelError.invalid(f.path, "rope.dimension_count \(ropeDimensions) does not fit head size \(headDim)")
        }
    }
}

/// Errors while turning a GGUF file into a runnable model.
public enum ModelError: Error, CustomStringConvertible {
    case invalid(String, String)
    public var description: String {
        switch self {
        case .invalid(let path, let msg): return "\(path): \(msg)"
        }
    }
}

/// A 2-D weight `[rows, columns]` in the mapped file: `rows` output features, each a row of `columns` inputs.
public struct WeightMatrix: @unchecked Sendable {
    public let name: String
    public let type: GGMLType
    public let data: UnsafeRawPointer
    public let rows: Int
    public let columns: Int
    public let rowBytes: Int

    /// Pointer to row `r`.
    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }
}

/// The weights of one transformer block.
public struct LayerWeights: @unchecked Sendable {
    public var attnNorm: UnsafePointer<Float>
    public var wq, wk, wv, wo: WeightMatrix
    public var bq, bk, bv: UnsafePointer<Float>?
    public var qNorm, kNorm: UnsafePointer<Float>?
    public var postAttnNorm: UnsafePointer<Float>?
    public var ffnNorm: UnsafePointer<Float>
    public var wGate, wUp, wDown: WeightMatrix
    public var postFFNNorm: UnsafePointer<Float>?
}

/// All weights of a model, as views over its GGUF mapping (which this object keeps alive).
public final class ModelWeights: @unchecked Sendable {
    public let file: GGUFFile
    public let config: ModelConfig
    public let tokenEmbedding: WeightMatrix
    public let outputNorm: UnsafePointer<Float>
    /// The output projection (the token embedding itself when the file ties them).
    public let output: WeightMatrix
    public let layers: [LayerWeights]

    /// Binds every tensor the architecture needs, checking names, shapes and types.
    public init(file f: GGUFFile) throws {
        let c = try ModelConfig(gguf: f)
        file = f
        config = c
        func matrix(_ name: String, _ cols: Int, _ rows: Int) throws -> WeightMatrix {
            guard let t = f.tensor(name) else { throw ModelError.invalid(f.path, "missing tensor '\(name)'") }
            guard t.dims.count == 2, t.dims[0] == cols, t.dims[1] == rows else {
                throw ModelError.invalid(f.path, "tensor '\(name)' has shape \(t.dims), expected [\(cols), \(rows)]")
            }
            guard GGMLType.supported.contains(t.type) else {
                throw ModelError.invalid(f.path, "tensor '\(name)' has type \(t.type), which the engine cannot compute with (supported: \(GGMLType.supported.map(\.description).sorted().joined(separator: ", ")))")
            }
            return WeightMatrix(name: name, type: t.type, data: f.data(t), rows: rows, columns: cols, rowBytes: t.type.rowBytes(cols)!)
        }
        func vector(_ name: String, _ n: Int) throws -> UnsafePointer<Float> {
            guard let t = f.tensor(name) else { throw ModelError.invalid(f.path, "missing tensor '\(name)'") }
            guard t.type == .f32, t.elementCount == n else {
                throw ModelError.invalid(f.path, "tensor '\(name)' is \(t.type) \(t.dims), expected F32 [\(n)]")
            }
            return f.data(t).assumingMemoryBound(to: Float.self)
        }
        func optionalVector(_ name: String, _ n: Int) throws -> UnsafePointer<Float>? {
            f.tensor(name) == nil ? nil : try vector(name, n)
        }
        let d = c.embeddingLength, qd = c.headCount * c.headDim, kd = c.kvHeadCount * c.headDim
        let vd = c.kvHeadCount * c.valueDim
        tokenEmbedding = try matrix("token_embd.weight", d, c.vocabularySize)
        outputNorm = try vector("output_norm.weight", d)
        output = f.tensor("output.weight") == nil ? tokenEmbedding : try matrix("output.weight", d, c.vocabularySize)
        var ls: [LayerWeights] = []
        for i in 0..<c.layerCount {
            let p = "blk.\(i)."
            ls.append(LayerWeights(
                attnNorm: try vector(p + "attn_norm.weight", d),
                wq: try matrix(p + "attn_q.weight", d, qd),
                wk: try matrix(p + "attn_k.weight", d, kd),
                wv: try matrix(p + "attn_v.weight", d, vd),
                wo: try matrix(p + "attn_output.weight", c.headCount * c.valueDim, d),
                bq: try optionalVector(p + "attn_q.bias", qd),
                bk: try optionalVector(p + "attn_k.bias", kd),
                bv: try optionalVector(p + "attn_v.bias", vd),
                qNorm: try optionalVector(p + "attn_q_norm.weight", c.headDim),
                kNorm: try optionalVector(p + "attn_k_norm.weight", c.headDim),
                postAttnNorm: try optionalVector(p + "post_attention_norm.weight", d),
                ffnNorm: try vector(p + "ffn_norm.weight", d),
                wGate: try matrix(p + "ffn_gate.weight", d, c.feedForwardLength),
                wUp: try matrix(p + "ffn_up.weight", d, c.feedForwardLength),
                wDown: try matrix(p + "ffn_down.weight", c.feedForwardLength, d),
                postFFNNorm: try optionalVector(p + "post_ffw_norm.weight", d)))
        }
        layers = ls
        if c.architecture == .gemma3, ls.contains(where: { $0.qNorm == nil || $0.postAttnNorm == nil || $0.postFFNNorm == nil }) {
            throw ModelError.invalid(f.path, "gemma3 model lacks q/k norms or post-attention/post-FFN norms")
        }
    }
}
