// Model hyper-parameters and typed views over the mapped weights. Nothing here copies a quantized weight:
// a `WeightMatrix` is a pointer into the GGUF mapping plus its shape and type.
import Foundation

/// The transformer families the engine runs (the GGUF `general.architecture` names, as llama.cpp reads them).
public enum Architecture: String, Sendable, CaseIterable {
    /// Llama 1–3 and Mistral-style files (with Llama 3's `rope_freqs.weight` and linear/YaRN RoPE scaling).
    case llama
    /// Qwen2 and Qwen2.5 (q/k/v biases).
    case qwen2
    /// Qwen3 (q/k RMS norms, a head size of its own).
    case qwen3
    /// Qwen3's mixture of experts (Qwen3-30B-A3B): a softmax router picks `expertsUsed` experts per token, their
    /// weights renormalised to sum to 1.
    case qwen3moe
    /// Phi-3 and Phi-4-mini (fused QKV and gate-up tensors, LongRoPE factors, partial rotary dimensions).
    case phi3
    /// Gemma 2 (post-norms, GELU, soft-capped attention and final logits, a sliding window on every other layer).
    case gemma2
    /// Gemma 3 (q/k norms, post-norms, GELU, five sliding-window layers per global one).
    case gemma3
    /// OLMo 2 (no pre-norms: post-norms after attention and feed-forward; q/k norms over all heads at once; OLMo 3's
    /// sliding window on three layers of four when the file sets one).
    case olmo2
    /// IBM Granite 3 (Llama's layout with embedding, attention, residual and logit multipliers).
    case granite
    /// SmolLM3 (Llama's layout without RoPE on every fourth layer).
    case smollm3

    /// The supported names, for error messages.
    public static var supportedList: String { allCases.map(\.rawValue).joined(separator: ", ") }
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
    /// Width of the feed-forward block (of each expert's, in a mixture of experts).
    public var feedForwardLength: Int
    /// Experts per mixture-of-experts layer (0: a dense model).
    public var expertCount: Int
    /// Experts each token goes through.
    public var expertsUsed: Int
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
    /// RoPE frequency scale of the global layers: 1 / `rope.scaling.factor` (1 without scaling).
    public var ropeFreqScale: Float
    /// RoPE frequency scale of the sliding-window layers (Gemma 2 uses the global one, Gemma 3 none).
    public var ropeFreqScaleLocal: Float
    /// YaRN's extrapolation mix (1 with `rope.scaling.type` yarn, else 0).
    public var ropeExtFactor: Float
    /// Magnitude scale of the rotated values (`rope.scaling.attn_factor`, and YaRN's correction), as llama.cpp
    /// passes it to its RoPE.
    public var ropeAttnFactor: Float
    /// YaRN's correction range in rotated dimensions (from the original context length and β fast/slow).
    public var ropeYarnBetaFast: Float, ropeYarnBetaSlow: Float
    /// The context the model was trained on before RoPE scaling (`rope.scaling.original_context_length`).
    public var ropeOriginalContext: Int
    /// Soft cap of the attention scores, c·tanh(s/c) (Gemma 2; 0: none).
    public var attentionSoftcap: Float
    /// Soft cap of the output logits (Gemma 2; 0: none).
    public var finalSoftcap: Float
    /// The feed-forward block's activation is GELU (Gemma) rather than SiLU.
    public var geluFeedForward: Bool
    /// Scale of each block's attention and feed-forward output before it joins the residual stream (Granite).
    public var residualScale: Float
    /// The output logits are divided by this (Granite's `logit_scale`; 1 elsewhere).
    public var logitScale: Float
    /// Every `noRopeLayerStep`-th layer has no RoPE (SmolLM3: 4; 0: all layers rotate).
    public var noRopeLayerStep: Int
    /// The q/k norms normalise all heads of a row together (OLMo 2) rather than each head.
    public var qkNormFullWidth: Bool
    /// Whether the sliding-window layers use the file's RoPE scaling too (OLMo 3's do not).
    public var ropeScalingOnLocalLayers: Bool

    /// Whether layer `il` applies RoPE.
    public func hasRope(_ il: Int) -> Bool { noRopeLayerStep == 0 || (il + 1) % noRopeLayerStep != 0 }

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
            throw ModelError.invalid(f.path, "architecture '\(archName)' is not supported (supported: \(Architecture.supportedList))")
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
        expertCount = f.int("\(archName).expert_count") ?? 0
        expertsUsed = f.int("\(archName).expert_used_count") ?? 0
        if arch == .qwen3moe {
            guard expertCount > 0, expertsUsed > 0, expertsUsed <= expertCount else {
                throw ModelError.invalid(f.path, "qwen3moe needs \(archName).expert_count and expert_used_count (1...expert_count); the file has \(expertCount) and \(expertsUsed)")
            }
            feedForwardLength = try req("expert_feed_forward_length")
        } else {
            guard expertCount == 0 else {
                throw ModelError.invalid(f.path, "\(archName) with \(expertCount) experts: mixture-of-experts layers are supported for qwen3moe only")
            }
            feedForwardLength = try req("feed_forward_length")
        }
        contextLength = f.int("\(archName).context_length") ?? 2048
        rmsEpsilon = f.float("\(archName).attention.layer_norm_rms_epsilon") ?? 1e-5
        ropeBase = f.float("\(archName).rope.freq_base") ?? 10000
        ropeDimensions = f.int("\(archName).rope.dimension_count") ?? headDim
        let tokens = f.array("tokenizer.ggml.tokens")?.count ?? 0
        vocabularySize = f.int("\(archName).vocab_size") ?? tokens
        attentionSoftcap = 0; finalSoftcap = 0; geluFeedForward = false
        residualScale = 1; logitScale = 1; noRopeLayerStep = 0; qkNormFullWidth = false; ropeScalingOnLocalLayers = true
        switch arch {
        case .granite:
            ropeNeox = false; slidingWindow = 0; slidingWindowPattern = 0
            embeddingScale = f.float("granite.embedding_scale").flatMap { $0 == 0 ? nil : $0 } ?? 1
            residualScale = f.float("granite.residual_scale").flatMap { $0 == 0 ? nil : $0 } ?? 1
            logitScale = f.float("granite.logit_scale").flatMap { $0 == 0 ? nil : $0 } ?? 1
            ropeBaseLocal = ropeBase
        case .smollm3:
            ropeNeox = false; slidingWindow = 0; slidingWindowPattern = 0; embeddingScale = 1
            ropeBaseLocal = ropeBase
            noRopeLayerStep = 4
        case .olmo2:
            ropeNeox = true; embeddingScale = 1
            qkNormFullWidth = true
            slidingWindow = f.int("olmo2.attention.sliding_window") ?? 0
            slidingWindowPattern = slidingWindow > 0 ? 4 : 0
            ropeBaseLocal = f.float("olmo2.rope.freq_base_swa") ?? ropeBase
            ropeScalingOnLocalLayers = false
        case .llama:
            ropeNeox = false; slidingWindow = 0; slidingWindowPattern = 0; embeddingScale = 1
            ropeBaseLocal = ropeBase
        case .qwen2, .qwen3, .qwen3moe:
            ropeNeox = true; slidingWindow = 0; slidingWindowPattern = 0; embeddingScale = 1
            ropeBaseLocal = ropeBase
        case .phi3:
            // llama.cpp ignores Phi-3's sliding_window (its conversion writes one the model does not use).
            ropeNeox = true; slidingWindow = 0; slidingWindowPattern = 0; embeddingScale = 1
            ropeBaseLocal = ropeBase
        case .gemma2:
            // Gemma 2: every other layer (the even ones) attends within the window (4096 unless the file says).
            ropeNeox = true
            slidingWindow = f.int("gemma2.attention.sliding_window") ?? 4096
            slidingWindowPattern = 2
            embeddingScale = Float(embeddingLength).squareRoot()
            ropeBaseLocal = f.float("gemma2.rope.freq_base_swa") ?? ropeBase
            attentionSoftcap = f.float("gemma2.attn_logit_softcapping") ?? 50
            finalSoftcap = f.float("gemma2.final_logit_softcapping") ?? 30
            geluFeedForward = true
        case .gemma3:
            // Gemma 3: five sliding-window layers for each global one; local layers keep RoPE base 10 000.
            ropeNeox = true
            slidingWindow = f.int("gemma3.attention.sliding_window") ?? 0
            slidingWindowPattern = 6
            embeddingScale = Float(embeddingLength).squareRoot()
            ropeBaseLocal = f.float("gemma3.rope.freq_base_swa") ?? 10000
            finalSoftcap = f.float("gemma3.final_logit_softcapping") ?? 0
            geluFeedForward = true
        }
        if let pattern = f.int("\(archName).attention.sliding_window_pattern"), pattern > 0 {
            slidingWindowPattern = pattern
        }
        attentionScale = 1 / Float(headDim).squareRoot()
        if arch == .granite, let scale = f.float("granite.attention.scale"), scale != 0 { attentionScale = scale }
        if (arch == .gemma2 && layerCount == 46) || (arch == .gemma3 && layerCount == 62) {
            // The 27B Gemmas scale queries by 1/√(width / heads), as llama.cpp does.
            attentionScale = 1 / Float(embeddingLength / headCount).squareRoot()
        }

        // RoPE scaling, read as llama.cpp reads it: the type defaults to linear, the factor to none.
        let scaling = f.string("\(archName).rope.scaling.type") ?? "linear"
        guard ["none", "linear", "yarn", "longrope"].contains(scaling) else {
            throw ModelError.invalid(f.path, "RoPE scaling '\(scaling)' (\(archName).rope.scaling.type) is not supported (supported: none, linear, yarn, longrope)")
        }
        let factor = f.float("\(archName).rope.scaling.factor") ?? f.float("\(archName).rope.scale_linear") ?? 0
        ropeFreqScale = scaling == "none" || factor == 0 ? 1 : 1 / factor
        ropeFreqScaleLocal = arch == .gemma3 || arch == .olmo2 ? 1 : ropeFreqScale
        ropeOriginalContext = f.int("\(archName).rope.scaling.original_context_length") ?? contextLength
        ropeYarnBetaFast = f.float("\(archName).rope.scaling.yarn_beta_fast") ?? 32
        ropeYarnBetaSlow = f.float("\(archName).rope.scaling.yarn_beta_slow") ?? 1
        ropeExtFactor = scaling == "yarn" ? 1 : 0
        var attnFactor: Float = 1
        if ropeExtFactor != 0 {
            // YaRN's magnitude correction, 0.1·ln(s) + 1, which the rotation multiplies in itself; llama.cpp divides
            // it out of the factor it passes, so the net scale is the correction once.
            let s = 1 / ropeFreqScale
            let mscale: Float = s <= 1 ? 1 : 0.1 * logf(s) + 1
            attnFactor = mscale * (1 / (1 + 0.1 * logf(s)))
        }
        ropeAttnFactor = attnFactor * (f.float("\(archName).rope.scaling.attn_factor") ?? 1)
        // A `sliding_window` in a llama, qwen2, qwen3 or phi3 file (Mistral 7B v0.1 has 4096) is not read: llama.cpp
        // runs those architectures with full attention, and the engine stays token for token with it.
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

    /// Rows `range` as a matrix of their own (no copy): a fused tensor's parts (Phi-3's QKV and gate-up).
    public func rows(_ range: Range<Int>, name: String) -> WeightMatrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "rows \(range) outside \(self.name)'s \(rows)")
        return WeightMatrix(name: name, type: type, data: row(range.lowerBound), rows: range.count, columns: columns,
                            rowBytes: rowBytes)
    }
}

/// The weights of one transformer block.
public struct LayerWeights: @unchecked Sendable {
    /// The pre-attention norm (nil for OLMo 2, which normalises after the block instead).
    public var attnNorm: UnsafePointer<Float>?
    public var wq, wk, wv, wo: WeightMatrix
    public var bq, bk, bv: UnsafePointer<Float>?
    public var qNorm, kNorm: UnsafePointer<Float>?
    public var postAttnNorm: UnsafePointer<Float>?
    /// The pre-feed-forward norm (nil for OLMo 2).
    public var ffnNorm: UnsafePointer<Float>?
    /// The feed-forward block (of a mixture-of-experts layer: expert 0's, unused; its experts are in `experts`).
    public var wGate, wUp, wDown: WeightMatrix
    public var postFFNNorm: UnsafePointer<Float>?
    /// A mixture-of-experts layer's router and experts (nil in a dense layer).
    public var experts: ExpertWeights?
}

/// The experts of a mixture-of-experts layer: the router (`expertCount` rows) and each expert's three matrices,
/// views into the layer's 3-D expert tensors.
public struct ExpertWeights: @unchecked Sendable {
    public var router: WeightMatrix
    public var gate, up, down: [WeightMatrix]
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
    /// Per-dimension RoPE frequency divisors (`ropeDimensions / 2` of them): Llama 3's `rope_freqs.weight`, or
    /// Phi-3's LongRoPE `rope_factors_long`/`rope_factors_short` (long when the context exceeds the original one,
    /// as llama.cpp chooses); nil when the file has none.
    public let ropeFactors: UnsafePointer<Float>?

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
        /// A 3-D expert tensor `[cols, rows, experts]` as one matrix per expert.
        func expertMatrices(_ name: String, _ cols: Int, _ rows: Int, _ experts: Int) throws -> [WeightMatrix] {
            guard let t = f.tensor(name) else { throw ModelError.invalid(f.path, "missing tensor '\(name)'") }
            guard t.dims == [cols, rows, experts] else {
                throw ModelError.invalid(f.path, "tensor '\(name)' has shape \(t.dims), expected [\(cols), \(rows), \(experts)]")
            }
            guard GGMLType.supported.contains(t.type) else {
                throw ModelError.invalid(f.path, "tensor '\(name)' has type \(t.type), which the engine cannot compute with (supported: \(GGMLType.supported.map(\.description).sorted().joined(separator: ", ")))")
            }
            let all = WeightMatrix(name: name, type: t.type, data: f.data(t), rows: rows * experts, columns: cols,
                                   rowBytes: t.type.rowBytes(cols)!)
            return (0..<experts).map { all.rows(($0 * rows)..<(($0 + 1) * rows), name: "\(name)[\($0)]") }
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
        // Gemma 2 always unembeds with the token embedding (llama.cpp ignores an output.weight there).
        output = f.tensor("output.weight") == nil || c.architecture == .gemma2
            ? tokenEmbedding : try matrix("output.weight", d, c.vocabularySize)
        let half = c.ropeDimensions / 2
        if f.tensor("rope_freqs.weight") != nil {
            ropeFactors = try vector("rope_freqs.weight", half)
        } else if f.tensor("rope_factors_long.weight") != nil || f.tensor("rope_factors_short.weight") != nil {
            let long = c.contextLength > c.ropeOriginalContext
            ropeFactors = try vector(long ? "rope_factors_long.weight" : "rope_factors_short.weight", half)
        } else {
            ropeFactors = nil
        }
        var ls: [LayerWeights] = []
        for i in 0..<c.layerCount {
            let p = "blk.\(i)."
            // Q, K and V: three tensors, or one fused tensor whose rows are Q's, then K's, then V's.
            let wq, wk, wv: WeightMatrix
            if f.tensor(p + "attn_qkv.weight") != nil {
                let qkv = try matrix(p + "attn_qkv.weight", d, qd + kd + vd)
                wq = qkv.rows(0..<qd, name: p + "attn_qkv.weight[q]")
                wk = qkv.rows(qd..<(qd + kd), name: p + "attn_qkv.weight[k]")
                wv = qkv.rows((qd + kd)..<(qd + kd + vd), name: p + "attn_qkv.weight[v]")
            } else {
                wq = try matrix(p + "attn_q.weight", d, qd)
                wk = try matrix(p + "attn_k.weight", d, kd)
                wv = try matrix(p + "attn_v.weight", d, vd)
            }
            // Gate and up: two tensors, or (Phi-3) one ffn_up of twice the width, the gate's rows first; or the
            // experts of a mixture-of-experts layer.
            let wGate, wUp: WeightMatrix
            var wDown: WeightMatrix? = nil
            var experts: ExpertWeights? = nil
            if c.expertCount > 0 {
                let n = c.expertCount, ff = c.feedForwardLength
                let e = ExpertWeights(router: try matrix(p + "ffn_gate_inp.weight", d, n),
                                      gate: try expertMatrices(p + "ffn_gate_exps.weight", d, ff, n),
                                      up: try expertMatrices(p + "ffn_up_exps.weight", d, ff, n),
                                      down: try expertMatrices(p + "ffn_down_exps.weight", ff, d, n))
                experts = e
                wGate = e.gate[0]; wUp = e.up[0]; wDown = e.down[0]
            } else if f.tensor(p + "ffn_gate.weight") == nil, c.architecture == .phi3 {
                let gateUp = try matrix(p + "ffn_up.weight", d, 2 * c.feedForwardLength)
                wGate = gateUp.rows(0..<c.feedForwardLength, name: p + "ffn_up.weight[gate]")
                wUp = gateUp.rows(c.feedForwardLength..<(2 * c.feedForwardLength), name: p + "ffn_up.weight[up]")
            } else {
                wGate = try matrix(p + "ffn_gate.weight", d, c.feedForwardLength)
                wUp = try matrix(p + "ffn_up.weight", d, c.feedForwardLength)
            }
            // OLMo 2 has no pre-norms, and its q/k norms span all heads.
            let preNorms = c.architecture != .olmo2
            let qNormWidth = c.qkNormFullWidth ? qd : c.headDim, kNormWidth = c.qkNormFullWidth ? kd : c.headDim
            ls.append(LayerWeights(
                attnNorm: preNorms ? try vector(p + "attn_norm.weight", d) : nil,
                wq: wq, wk: wk, wv: wv,
                wo: try matrix(p + "attn_output.weight", c.headCount * c.valueDim, d),
                bq: try optionalVector(p + "attn_q.bias", qd),
                bk: try optionalVector(p + "attn_k.bias", kd),
                bv: try optionalVector(p + "attn_v.bias", vd),
                qNorm: try optionalVector(p + "attn_q_norm.weight", qNormWidth),
                kNorm: try optionalVector(p + "attn_k_norm.weight", kNormWidth),
                postAttnNorm: try optionalVector(p + "post_attention_norm.weight", d),
                ffnNorm: preNorms ? try vector(p + "ffn_norm.weight", d) : nil,
                wGate: wGate, wUp: wUp,
                wDown: try wDown ?? matrix(p + "ffn_down.weight", c.feedForwardLength, d),
                postFFNNorm: try optionalVector(p + "post_ffw_norm.weight", d),
                experts: experts))
        }
        layers = ls
        if c.architecture == .gemma3, ls.contains(where: { $0.qNorm == nil || $0.postAttnNorm == nil || $0.postFFNNorm == nil }) {
            throw ModelError.invalid(f.path, "gemma3 model lacks q/k norms or post-attention/post-FFN norms")
        }
        if c.architecture == .gemma2, ls.contains(where: { $0.postAttnNorm == nil || $0.postFFNNorm == nil }) {
            throw ModelError.invalid(f.path, "gemma2 model lacks post-attention/post-FFN norms")
        }
        if c.architecture == .olmo2, ls.contains(where: { $0.qNorm == nil || $0.kNorm == nil || $0.postAttnNorm == nil || $0.postFFNNorm == nil }) {
            throw ModelError.invalid(f.path, "olmo2 model lacks q/k norms or post-attention/post-FFN norms")
        }
        if c.architecture == .qwen3 || c.architecture == .qwen3moe, ls.contains(where: { $0.qNorm == nil || $0.kNorm == nil }) {
            throw ModelError.invalid(f.path, "\(c.architecture.rawValue) model lacks q/k norms (attn_q_norm, attn_k_norm)")
        }
    }
}
