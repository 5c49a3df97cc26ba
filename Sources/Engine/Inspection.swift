// Looking inside a forward pass: attention probabilities per layer and head, the residual stream after a layer,
// and the logit lens (a layer's residual through the final norm and the unembedding). Asked for per call: the
// forward pass fills a capture object only when one is attached, so ordinary calls pay nothing.
//
// Layers are numbered from 0, as in the papers' layer groups (0–6, 7–17, 18–29 for a 30-layer model). The
// probabilities are computed from the definition (exact softmax with a Double sum) over the same cached keys the
// forward pass used, so multiplying them by the cached values gives the layer's attention output.
import Foundation

/// What `LanguageModel.inspect` keeps from a forward pass.
public struct InspectionRequest: Sendable {
    /// Layers whose attention probabilities to keep (0-based).
    public var attentionLayers: [Int] = []
    /// Query heads to keep (0-based; nil: all).
    public var heads: [Int]? = nil
    /// Layers after which to keep the residual stream (0-based).
    public var hiddenLayers: [Int] = []
    /// Keep every position's logits too.
    public var logits = false
    /// Keep each attention layer's output too (before the output projection: `T × heads × valueDim`).
    public var attentionOutputs = false
    /// Layers whose attention output (before the output projection) to keep, without their probabilities: what
    /// head patching and mean ablation take.
    public var headOutputLayers: [Int] = []
    /// Changes to the forward pass it runs under (Intervention.swift).
    public var interventions: [Intervention] = []
    public init(attentionLayers: [Int] = [], heads: [Int]? = nil, hiddenLayers: [Int] = [], logits: Bool = false) {
        self.attentionLayers = attentionLayers
        self.heads = heads
        self.hiddenLayers = hiddenLayers
        self.logits = logits
    }
}

/// What a forward pass showed: attention `[layer] → heads × T × T` (row = query position, column = key position;
/// zeros above the diagonal and outside a sliding window), hidden `[layer] → T × embedding`, logits `T × vocab`.
public struct Inspection: Sendable {
    public let tokens: [Int32]
    public let heads: [Int]
    public var attention: [Int: [Float]] = [:]
    public var hidden: [Int: [Float]] = [:]
    public var logits: [Float]? = nil
    /// Layer → attention output before the output projection (`T × heads × valueDim`), when asked for.
    public internal(set) var attentionOutputs: [Int: [Float]] = [:]
    var cache: KVCache? = nil
    /// Positions (the matrices are T × T).
    public var count: Int { tokens.count }
}

/// The capture a forward pass fills when attached to the transformer.
final class ForwardCapture {
    let attentionLayers: Set<Int>, heads: [Int], hiddenLayers: Set<Int>, total: Int, outputLayers: Set<Int>
    var attention: [Int: UnsafeMutablePointer<Float>] = [:]
    var hidden: [Int: [Float]] = [:]
    var outputs: [Int: [Float]] = [:]

    init(request: InspectionRequest, heads: [Int], total: Int) {
        attentionLayers = Set(request.attentionLayers)
        self.heads = heads
        hiddenLayers = Set(request.hiddenLayers)
        self.total = total
        outputLayers = Set(request.headOutputLayers).union(request.attentionOutputs ? attentionLayers : [])
        for l in attentionLayers {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: heads.count * total * total)
            p.initialize(repeating: 0, count: heads.count * total * total)
            attention[l] = p
        }
    }

    deinit { for p in attention.values { p.deallocate() } }
}

extension Transformer {
    /// Writes the attention probabilities of the batch's rows (one segment) for `layer` into the capture.
    func captureAttention(_ cap: ForwardCapture, layer il: Int, cache: KVCache, rowPos: UnsafeBufferPointer<Int>,
                          T: Int, window: Int) {
        guard let out = cap.attention[il] else { return }
        let c = config, s = scratch
        let hd = c.headDim, nh = c.headCount, group = nh / c.kvHeadCount
        let scale = c.attentionScale, softcap = c.attentionSoftcap
        let heads = cap.heads, total = cap.total
        // The cached keys as f32 rows [position][kv head][d] (the cache keeps them in transposed f16 blocks), so
        // that each dot product below reads one contiguous row.
        var last = 0
        for t in 0..<T { last = max(last, rowPos[t]) }
        let kvh = c.kvHeadCount, positions = last + 1
        let keys = UnsafeMutablePointer<Float>.allocate(capacity: positions * kvh * hd)
        defer { keys.deallocate() }
        pool.parallelFor(positions) { range in
            for j in range {
                for g in 0..<kvh { for d in 0..<hd { keys[(j * kvh + g) * hd + d] = cache.key(il, j, g, d) } }
            }
        }
        pool.parallelFor(T * heads.count) { range in
            for item in range {
                let t = item / heads.count, hi = item % heads.count, h = heads[hi]
                let pos = rowPos[t], g = h / group
                let first = window > 0 ? max(0, pos - window + 1) : 0
                let q = s.q + t * nh * hd + h * hd
                let row = out + (hi * total + pos) * total
                var mx = -Float.infinity
                for j in first...pos {
                    let k = keys + (j * kvh + g) * hd
                    var dot: Float = 0
                    for d in 0..<hd { dot += q[d] * k[d] }
                    row[j] = softcap > 0 ? softcap * tanhf(dot * scale / softcap) : dot * scale
                    mx = max(mx, row[j])
                }
                var sum = 0.0
                for j in first...pos { row[j] = expf(row[j] - mx); sum += Double(row[j]) }
                let inv = Float(1 / sum)
                for j in first...pos { row[j] *= inv }
            }
        }
    }
}

extension LanguageModel {
    /// The most bytes one `inspect` call keeps by default (attention matrices, hidden rows and logits together).
    public static let inspectionByteLimit = 4 << 30

    /// Runs `tokens` through the model from an empty cache and keeps what `request` asks for.
    /// Errors (before any work): no tokens, more than the context, a layer or head out of range, or more memory
    /// than `byteLimit`.
    public func inspect(_ tokens: [Int32], _ request: InspectionRequest,
                        byteLimit: Int = LanguageModel.inspectionByteLimit) throws -> Inspection {
        let c = config
        guard !tokens.isEmpty else { throw EngineError.badInput("inspect needs at least one token") }
        try validate(tokens)
        guard tokens.count <= c.contextLength else {
            throw EngineError.badInput("\(tokens.count) tokens exceed the context length \(c.contextLength)")
        }
        for l in request.attentionLayers + request.hiddenLayers + request.headOutputLayers where l < 0 || l >= c.layerCount {
            throw EngineError.badInput("layer \(l) is out of range (the model has layers 0 to \(c.layerCount - 1))")
        }
        let heads = request.heads ?? Array(0..<c.headCount)
        for h in heads where h < 0 || h >= c.headCount {
            throw EngineError.badInput("head \(h) is out of range (the model has heads 0 to \(c.headCount - 1))")
        }
        let T = tokens.count
        let attnBytes = Set(request.attentionLayers).count * heads.count * T * T * 4
        let hiddenBytes = Set(request.hiddenLayers).count * T * c.embeddingLength * 4
            + Set(request.headOutputLayers).count * T * c.headCount * c.valueDim * 4
        let logitBytes = request.logits ? T * c.vocabularySize * 4 : 0
        let bytes = attnBytes + hiddenBytes + logitBytes
        if bytes > byteLimit {
            let gib = { (b: Int) in String(format: "%.1f GiB", Double(b) / Double(1 << 30)) }
            throw EngineError.badInput("inspecting \(T) tokens needs \(gib(bytes)) (attention: \(Set(request.attentionLayers).count) layers × \(heads.count) heads × \(T)² positions = \(gib(attnBytes))), over the \(gib(byteLimit)) limit: ask for fewer layers or heads, or a shorter text")
        }
        let x = try checked(request.interventions)
        let cap = ForwardCapture(request: request, heads: heads, total: T)
        let tr = transformer
        let cache = tr.makeCache(maxPositions: T)
        cache.intervene(x)
        tr.capture = cap
        defer { tr.capture = nil }
        let rows = tr.forward(tokens, cache: cache, logits: request.logits ? .all : .none)
        var out = Inspection(tokens: tokens, heads: heads)
        for (l, p) in cap.attention { out.attention[l] = Array(UnsafeBufferPointer(start: p, count: heads.count * T * T)) }
        out.hidden = cap.hidden
        out.attentionOutputs = cap.outputs
        out.logits = request.logits ? rows : nil
        out.cache = cache
        return out
    }

    /// The logit lens: `rows` residual-stream rows (`rows × embedding`, e.g. `Inspection.hidden[layer]`) through
    /// the final norm and the unembedding → `rows × vocab` logits. At the last layer these are the model's logits.
    public func logitLens(_ hidden: [Float], rows: Int) -> [Float] {
        transformer.unembed(hidden, rows: rows)
    }
}
