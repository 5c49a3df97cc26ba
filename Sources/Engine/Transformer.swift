// The forward pass: token ids in, logits out, for the llama family (llama, qwen2) and Gemma 3.
// One batch of T tokens goes through every block together (prompt processing); decoding is T = 1.
// Matrix products quantize the activations to the weight's dot type once, then split rows across threads.
import Foundation

/// How matrix products are computed.
public enum Precision: String, Sendable {
    /// As llama.cpp does: activations quantized to 8 bits, integer dot products (fast).
    case quantized
    /// Every weight dequantized to f32 and dotted with f32 activations (slow; the model's exact arithmetic).
    case exact
}

/// Which logits rows a forward pass returns.
public enum LogitsRequest: Sendable {
    case none, last, all
}

/// Runs a model's weights over token batches against a `KVCache`. One caller at a time (its scratch buffers and
/// thread pool are shared by every call; the pool's workers split one call's work between them).
public final class Transformer {
    public let weights: ModelWeights
    public var config: ModelConfig { weights.config }
    public let pool: ThreadPool
    public var precision: Precision = .quantized
    /// Largest batch evaluated in one pass; longer inputs go in chunks.
    public let maxBatch: Int
    var scratch = Scratch()
    let attentionScratch = AttentionScratch()
    /// The attention implementation of the quantized path (the exact path always runs the reference).
    var attentionKernel = AttentionKernel.blocked
    /// When set, the forward pass keeps attention probabilities and hidden rows in it (`LanguageModel.inspect`).
    var capture: ForwardCapture?

    public init(weights: ModelWeights, threads: Int, maxBatch: Int = 256) {
        self.weights = weights
        self.pool = ThreadPool(threads: threads)
        self.maxBatch = maxBatch
    }

    /// A fresh cache for this model (up to `maxPositions`, default the model's context length): f16 on the quantized
    /// path, as llama.cpp keeps it, f32 on the exact path.
    public func makeCache(maxPositions: Int? = nil) -> KVCache {
        let c = config
        return KVCache(layerCount: c.layerCount, kvHeads: c.kvHeadCount, headDim: c.headDim, valueDim: c.valueDim,
                       maxPositions: maxPositions ?? c.contextLength, half: precision == .quantized)
    }

    /// Evaluates `tokens` at the cache's next positions and appends them to it.
    /// - Returns: the requested logits rows, row-major (`rows × vocabularySize`).
    public func forward(_ tokens: [Int32], cache: KVCache, logits: LogitsRequest = .last) -> [Float] {
        // Misuse stops here with a message in every build mode, rather than reading outside the buffers.
        if cache.count + tokens.count > cache.maxPositions {
            fatalError("context full: \(cache.count) + \(tokens.count) tokens exceed \(cache.maxPositions) positions")
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= config.vocabularySize }) {
            fatalError("token id \(bad) outside the vocabulary (0..<\(config.vocabularySize))")
        }
        let vocab = config.vocabularySize
        var out = [Float]()
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + maxBatch)
            let isLast = end == tokens.count
            let want: LogitsRequest = logits == .all ? .all : (isLast ? logits : .none)
            let chunk = Array(tokens[start..<end])
            let rows = want == .all ? chunk.count : (want == .last ? 1 : 0)
            let base = out.count
            out.append(contentsOf: repeatElement(0, count: rows * vocab))
            out.withUnsafeMutableBufferPointer { buf in
                forwardBatch(chunk, cache: cache, logits: want, into: buf.baseAddress! + base)
            }
            start = end
        }
        return out
    }

    /// One decoding step of several sequences together: token `tokens[i]` is evaluated at the next position of
    /// `caches[i]` and appended to it. The matrix products run over all the sequences' activations at once (the
    /// batched tile path); attention is per sequence, against its own cache. Every row's arithmetic is the same as
    /// a one-token `forward` on that cache alone, so the logits are bit-identical to `k` separate steps.
    /// - Returns: `k` logits rows, row-major, row `i` for sequence `i`.
    public func forwardStep(_ tokens: [Int32], caches: [KVCache]) -> [Float] {
        precondition(tokens.count == caches.count, "forwardStep: \(tokens.count) tokens for \(caches.count) caches")
        if tokens.isEmpty { return [] }
        for (i, cache) in caches.enumerated() {
            if cache.count + 1 > cache.maxPositions {
                fatalError("context full: sequence \(i) holds \(cache.count) of \(cache.maxPositions) positions")
            }
            for j in 0..<i where caches[j] === cache { fatalError("forwardStep: sequence \(i) shares its cache with \(j)") }
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= config.vocabularySize }) {
            fatalError("token id \(bad) outside the vocabulary (0..<\(config.vocabularySize))")
        }
        let vocab = config.vocabularySize
        var out = [Float](repeating: 0, count: tokens.count * vocab)
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + maxBatch)
            let segments = (start..<end).map { Segment(cache: caches[$0], row: $0 - start, count: 1) }
            out.withUnsafeMutableBufferPointer { buf in
                forwardBatch(Array(tokens[start..<end]), segments: segments, logits: .all,
                             into: buf.baseAddress! + start * vocab)
            }
            start = end
        }
        return out
    }

    // MARK: - One batch

    /// Rows `row..<row+count` of a batch belong to the sequence of `cache`, at its next positions.
    struct Segment {
        let cache: KVCache
        let row: Int
        let count: Int
    }

    private func forwardBatch(_ tokens: [Int32], cache: KVCache, logits: LogitsRequest, into logitsOut: UnsafeMutablePointer<Float>) {
        forwardBatch(tokens, segments: [Segment(cache: cache, row: 0, count: tokens.count)], logits: logits, into: logitsOut)
    }

    /// Evaluates a batch whose rows are split into segments, each appended to its own cache.
    private func forwardBatch(_ tokens: [Int32], segments: [Segment], logits: LogitsRequest, into logitsOut: UnsafeMutablePointer<Float>) {
        let c = config
        let T = tokens.count
        let d = c.embeddingLength, hd = c.headDim, vdh = c.valueDim
        let nh = c.headCount, nkv = c.kvHeadCount
        let qd = nh * hd, kd = nkv * hd, vd = nkv * vdh, od = nh * vdh
        let s = scratch
        ensureScratch(T: T, positions: segments.map { $0.cache.count + $0.count }.max() ?? 0)
        // Per row: its segment and its position.
        var rowSegment = [Int](repeating: 0, count: T), rowPos = [Int](repeating: 0, count: T)
        for (i, g) in segments.enumerated() {
            g.cache.reserve(g.count)
            for t in g.row..<(g.row + g.count) { rowSegment[t] = i; rowPos[t] = g.cache.count + t - g.row }
        }
        // Segments computed under interventions (Intervention.swift); none: the loop below does nothing more.
        let steered = segments.filter { $0.cache.interventions != nil }

        // Token embeddings (dequantized rows), scaled for Gemma.
        for (t, id) in tokens.enumerated() {
            let w = weights.tokenEmbedding
            Dequantize.row(w.type, w.row(Int(id)), s.x + t * d, count: d)
            if c.embeddingScale != 1 { for i in 0..<d { s.x[t * d + i] *= c.embeddingScale } }
        }

        for (il, L) in weights.layers.enumerated() {
            // Attention block.
            // OLMo 2 projects the residual stream itself (no pre-norm).
            var attnIn = s.x
            if let an = L.attnNorm { rmsNorm(s.x, an, rows: T, n: d, out: s.xn); attnIn = s.xn }
            matmul(L.wq, attnIn, T, s.q)
            matmul(L.wk, attnIn, T, s.k, sameInput: true)
            matmul(L.wv, attnIn, T, s.v, sameInput: true)
            if let b = L.bq { addBias(s.q, b, rows: T, n: qd) }
            if let b = L.bk { addBias(s.k, b, rows: T, n: kd) }
            if let b = L.bv { addBias(s.v, b, rows: T, n: vd) }
            if c.qkNormFullWidth {
                if let qn = L.qNorm { rmsNorm(s.q, qn, rows: T, n: qd, out: s.q) }
                if let kn = L.kNorm { rmsNorm(s.k, kn, rows: T, n: kd, out: s.k) }
            } else {
                if let qn = L.qNorm { rmsNorm(s.q, qn, rows: T * nh, n: hd, out: s.q) }
                if let kn = L.kNorm { rmsNorm(s.k, kn, rows: T * nkv, n: hd, out: s.k) }
            }
            let local = c.isSlidingWindowLayer(il)
            let base = local ? c.ropeBaseLocal : c.ropeBase
            let freqScale = local ? c.ropeFreqScaleLocal : c.ropeFreqScale
            if c.hasRope(il) {
                let scaled = !local || c.ropeScalingOnLocalLayers
                for t in 0..<T {
                    ropeAngles(pos: rowPos[t], base: base, freqScale: freqScale, scaled: scaled)
                    rope(s.q + t * qd, heads: nh)
                    rope(s.k + t * kd, heads: nkv)
                }
            }
            // Append each segment's keys and values to its cache.
            for g in segments {
                g.cache.store(layer: il, at: g.cache.count, count: g.count, k: s.k + g.row * kd, v: s.v + g.row * vd)
            }
            rowSegment.withUnsafeBufferPointer { seg in
                rowPos.withUnsafeBufferPointer { pos in
                    attention(layer: il, segments: segments, rowSegment: seg, rowPos: pos, T: T,
                              window: local ? c.slidingWindow : 0)
                    for g in steered where !g.cache.interventions!.heads[il].isEmpty {
                        let x = g.cache.interventions!
                        for t in g.row..<(g.row + g.count) {
                            x.applyHeads(layer: il, row: s.attn + t * od, vdh: vdh, pos: pos[t], cache: g.cache)
                        }
                    }
                    if let cap = capture, segments.count == 1 {
                        if cap.attentionLayers.contains(il) {
                            captureAttention(cap, layer: il, cache: segments[0].cache, rowPos: pos, T: T,
                                             window: local ? c.slidingWindow : 0)
                        }
                        if cap.outputLayers.contains(il) {
                            cap.outputs[il, default: []] += UnsafeBufferPointer(start: s.attn, count: T * od)
                        }
                    }
                }
            }
            matmul(L.wo, s.attn, T, s.tmp)
            if let pn = L.postAttnNorm { rmsNorm(s.tmp, pn, rows: T, n: d, out: s.tmp) }
            for g in steered where !g.cache.interventions!.attentionOutput[il].isEmpty {
                let x = g.cache.interventions!
                for t in g.row..<(g.row + g.count) {
                    x.applyAttentionOutput(layer: il, row: s.tmp + t * d, d: d, pos: rowPos[t], cache: g.cache)
                }
            }
            addResidual(s.x, s.tmp, T * d)

            // Feed-forward block.
            var ffnIn = s.x
            if let fn = L.ffnNorm { rmsNorm(s.x, fn, rows: T, n: d, out: s.xn); ffnIn = s.xn }
            if let ex = L.experts {
                mixtureOfExperts(ex, ffnIn, T, out: s.tmp)
            } else {
                feedForward(L.wGate, L.wUp, L.wDown, ffnIn, T, out: s.tmp)
            }
            if let pn = L.postFFNNorm { rmsNorm(s.tmp, pn, rows: T, n: d, out: s.tmp) }
            addResidual(s.x, s.tmp, T * d)
            for g in steered where !g.cache.interventions!.residual[il].isEmpty {
                let x = g.cache.interventions!
                for t in g.row..<(g.row + g.count) {
                    x.applyResidual(layer: il, row: s.x + t * d, d: d, pos: rowPos[t], cache: g.cache)
                }
            }
            if let cap = capture, cap.hiddenLayers.contains(il) {
                cap.hidden[il, default: []] += UnsafeBufferPointer(start: s.x, count: T * d)
            }
        }
        for g in segments { g.cache.advance(g.count) }

        switch logits {
        case .none: return
        case .last:
            rmsNorm(s.x + (T - 1) * d, weights.outputNorm, rows: 1, n: d, out: s.xn)
            matmul(weights.output, s.xn, 1, logitsOut)
            softcapLogits(logitsOut, count: c.vocabularySize)
        case .all:
            rmsNorm(s.x, weights.outputNorm, rows: T, n: d, out: s.xn)
            matmul(weights.output, s.xn, T, logitsOut)
            softcapLogits(logitsOut, count: T * c.vocabularySize)
        }
    }

    /// down(act(gate·x) ⊙ up·x) for `T` rows of x into `out` (`T × embedding`), through `scratch.gate`/`up`.
    private func feedForward(_ wGate: WeightMatrix, _ wUp: WeightMatrix, _ wDown: WeightMatrix,
                             _ x: UnsafeMutablePointer<Float>, _ T: Int, out: UnsafeMutablePointer<Float>) {
        let s = scratch, ff = wGate.rows
        matmul(wGate, x, T, s.gate)
        matmul(wUp, x, T, s.up, sameInput: true)
        let gelu = config.geluFeedForward
        pool.parallelFor(T) { r in
            for t in r {
                let g = s.gate + t * ff, u = s.up + t * ff
                if gelu { VecOps.geluMul(g, u, g, ff) } else { VecOps.siluMul(g, u, g, ff) }
            }
        }
        matmul(wDown, s.gate, T, out)
    }

    /// A mixture-of-experts block, as llama.cpp's build_moe_ffn computes Qwen3-MoE's: router logits, softmax over
    /// the experts, the `expertsUsed` most probable (ties to the lower index), their probabilities renormalised to
    /// sum to 1 (the sum clamped below at 2⁻¹⁴), and each row's output the weighted sum of its experts' feed-forward
    /// outputs. Each expert runs once over the rows routed to it.
    private func mixtureOfExperts(_ ex: ExpertWeights, _ x: UnsafeMutablePointer<Float>, _ T: Int,
                                  out: UnsafeMutablePointer<Float>) {
        let c = config, d = c.embeddingLength, n = c.expertCount, k = c.expertsUsed
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: T * n)
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: T * d)
        let down = UnsafeMutablePointer<Float>.allocate(capacity: T * d)
        defer { logits.deallocate(); rows.deallocate(); down.deallocate() }
        matmul(ex.router, x, T, logits)
        // Routing: per row, the chosen experts and their weights.
        var chosen = [[(expert: Int, weight: Float)]](repeating: [], count: T)
        for t in 0..<T {
            let z = logits + t * n
            var mx = -Float.infinity
            for e in 0..<n { mx = max(mx, z[e]) }
            var sum = 0.0
            var p = [Float](repeating: 0, count: n)
            for e in 0..<n { p[e] = expf(z[e] - mx); sum += Double(p[e]) }
            for e in 0..<n { p[e] = Float(Double(p[e]) / sum) }
            let order = (0..<n).sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }.prefix(k)
            var wsum: Float = 0
            for e in order { wsum += p[e] }
            wsum = max(wsum, 6.103515625e-5)
            chosen[t] = order.map { ($0, p[$0] / wsum) }
        }
        out.initialize(repeating: 0, count: T * d)
        for e in 0..<n {
            let routed = (0..<T).compactMap { t in chosen[t].first { $0.expert == e }.map { (t, $0.weight) } }
            if routed.isEmpty { continue }
            for (i, (t, _)) in routed.enumerated() { (rows + i * d).update(from: x + t * d, count: d) }
            feedForward(ex.gate[e], ex.up[e], ex.down[e], rows, routed.count, out: down)
            for (i, (t, w)) in routed.enumerated() {
                let o = out + t * d, r = down + i * d
                for j in 0..<d { o[j] += w * r[j] }
            }
        }
    }

    /// What some models do to the unembedding's output: Granite divides by its logit scale, Gemma 2 applies its
    /// final soft cap c·tanh(z/c); nothing for the others.
    func softcapLogits(_ z: UnsafeMutablePointer<Float>, count: Int) {
        let c = config
        if c.logitScale != 1 { for i in 0..<count { z[i] /= c.logitScale } }
        let cap = c.finalSoftcap
        guard cap > 0 else { return }
        for i in 0..<count { z[i] = cap * tanhf(z[i] / cap) }
    }

    /// x += y·(the residual scale: Granite's, 1 elsewhere).
    private func addResidual(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let r = config.residualScale
        if r == 1 { for i in 0..<n { x[i] += y[i] } } else { for i in 0..<n { x[i] += y[i] * r } }
    }

    // MARK: - Pieces

    /// Grows the scratch buffers for a batch of `T` rows over caches of up to `positions` positions.
    func ensureScratch(T: Int, positions: Int) {
        let c = config
        let d = c.embeddingLength, nh = c.headCount, nkv = c.kvHeadCount, ff = c.feedForwardLength
        let od = nh * c.valueDim
        scratch.ensure(T: T, d: d, qd: nh * c.headDim, kd: nkv * c.headDim, vd: nkv * c.valueDim, od: od, ff: ff,
                       threads: pool.threadCount, positions: positions, maxColumns: max(d, ff, od))
    }

    /// Residual-stream rows (`rows × embedding`) through the final norm and the unembedding: `rows × vocab` logits,
    /// computed exactly as a forward pass computes its last rows.
    func unembed(_ hidden: [Float], rows: Int) -> [Float] {
        let d = config.embeddingLength, V = config.vocabularySize
        precondition(hidden.count == rows * d, "unembed: \(hidden.count) values for \(rows) rows of \(d)")
        var out = [Float](repeating: 0, count: rows * V)
        var r0 = 0
        while r0 < rows {
            let n = min(maxBatch, rows - r0)
            ensureScratch(T: n, positions: 1)
            let s = scratch
            hidden.withUnsafeBufferPointer { h in
                rmsNorm(UnsafeMutablePointer(mutating: h.baseAddress! + r0 * d), weights.outputNorm, rows: n, n: d, out: s.xn)
            }
            out.withUnsafeMutableBufferPointer { o in
                matmul(weights.output, s.xn, n, o.baseAddress! + r0 * V)
                softcapLogits(o.baseAddress! + r0 * V, count: n * V)
            }
            r0 += n
        }
        return out
    }

    /// out = W · x for each of `T` rows of x (`T × columns` → `T × rows`).
    func matmul(_ w: WeightMatrix, _ x: UnsafeMutablePointer<Float>, _ T: Int, _ out: UnsafeMutablePointer<Float>,
                sameInput: Bool = false) {
        let s = scratch
        s.xqFormat = sameInput ? s.xqFormat : nil
        let n = w.columns
        if precision == .exact {
            pool.run { tid in
                let nt = pool.threadCount
                let lo = tid * w.rows / nt, hi = (tid + 1) * w.rows / nt
                let row = s.dequant[tid]
                for r in lo..<hi {
                    Dequantize.row(w.type, w.row(r), row, count: n)
                    for t in 0..<T { out[t * w.rows + r] = VecOps.dot(row, x + t * n, n) }
                }
            }
            return
        }
        let vt = vecDotType(for: w.type)
        let xBytes = vt.rowBytes(n)!
        // Quantized activations are reused by the next matmul of the same input (q/k/v, gate/up) when its weights
        // take the same activation format. A small batch (decoding several sequences) is quantized on this thread:
        // waking the pool costs more than the work.
        if !(sameInput && s.xqFormat == QuantizedInput(x: x, type: vt, rows: T, columns: n)) {
            if T * n >= 16384 {
                pool.parallelFor(T) { r in
                    for t in r { quantizeActivation(x + t * n, count: n, to: vt, into: s.xq + t * xBytes) }
                }
            } else {
                for t in 0..<T { quantizeActivation(x + t * n, count: n, to: vt, into: s.xq + t * xBytes) }
            }
            s.xqFormat = QuantizedInput(x: x, type: vt, rows: T, columns: n)
        }
        let xq = UnsafeRawPointer(s.xq)
        pool.parallelFor(w.rows) { rows in
            matmulTile(w.type, w: w.data, rowBytes: w.rowBytes, rows: rows, x: xq, xBytes: xBytes, nx: T,
                       count: n, out: out, outStride: w.rows)
        }
    }

    /// The rotation of each rotated dimension pair at `pos` into `scratch.ropeCos`/`ropeSin`, as ggml's RoPE
    /// computes it: θ = pos·base^(−2i/n) divided by the file's frequency factor of pair i, scaled by `freqScale`
    /// (YaRN: blended with the unscaled angle over its correction range), and cos/sin multiplied by the magnitude
    /// factor.
    private func ropeAngles(pos: Int, base: Float, freqScale: Float, scaled: Bool = true) {
        let c = config, s = scratch
        let nd = c.ropeDimensions
        let thetaScale = powf(base, -2 / Float(nd))
        let factors = weights.ropeFactors
        // OLMo 3's sliding-window layers rotate without the file's scaling (no YaRN mix, magnitude 1).
        let ext = scaled ? c.ropeExtFactor : 0
        var mscale = scaled ? c.ropeAttnFactor : 1
        var corr0: Float = 0, corr1: Float = 0
        if ext != 0 {
            // ggml_rope_yarn_corr_dims: the dimensions whose wavelength the original context holds β times.
            func corrDim(_ beta: Float) -> Float {
                Float(nd) * logf(Float(c.ropeOriginalContext) / (beta * 2 * Float.pi)) / (2 * logf(base))
            }
            corr0 = max(0, floorf(corrDim(c.ropeYarnBetaFast)))
            corr1 = min(Float(nd - 1), ceilf(corrDim(c.ropeYarnBetaSlow)))
            mscale *= 1 + 0.1 * logf(1 / freqScale)
        }
        var theta = Float(pos)
        for i in 0..<(nd / 2) {
            let extrap = factors.map { theta / $0[i] } ?? theta
            var angle = freqScale * extrap
            if ext != 0 {
                let y = (Float(i) - corr0) / max(0.001, corr1 - corr0)
                let mix = (1 - min(1, max(0, y))) * ext
                angle = angle * (1 - mix) + extrap * mix
            }
            s.ropeCos[i] = cosf(angle) * mscale; s.ropeSin[i] = sinf(angle) * mscale
            theta *= thetaScale
        }
    }

    /// Rotates `heads` consecutive heads by the angles of the last ``ropeAngles(pos:base:freqScale:scaled:)``: adjacent
    /// pairs, or (NeoX style) dimension i with i + n/2; dimensions past the rotated ones are left as they are.
    private func rope(_ x: UnsafeMutablePointer<Float>, heads: Int) {
        let c = config, s = scratch
        let hd = c.headDim, nd = c.ropeDimensions
        for h in 0..<heads {
            let v = x + h * hd
            for i in 0..<(nd / 2) {
                let (a, b) = c.ropeNeox ? (i, i + nd / 2) : (2 * i, 2 * i + 1)
                let x0 = v[a], x1 = v[b]
                v[a] = x0 * s.ropeCos[i] - x1 * s.ropeSin[i]
                v[b] = x0 * s.ropeSin[i] + x1 * s.ropeCos[i]
            }
        }
    }

    /// Row-wise RMS norm times `weight`, the scale computed in Double (as the f64-norm reference does: on Gemma 3
    /// this sits measurably closer to llama.cpp than a Float mean). `out` may alias `x`.
    private func rmsNorm(_ x: UnsafeMutablePointer<Float>, _ weight: UnsafePointer<Float>, rows: Int, n: Int,
                         out: UnsafeMutablePointer<Float>) {
        let eps = Double(config.rmsEpsilon)
        for r in 0..<rows {
            let xr = x + r * n, o = out + r * n
            var ss = 0.0
            for i in 0..<n { ss += Double(xr[i]) * Double(xr[i]) }
            let scale = Float(1 / (ss / Double(n) + eps).squareRoot())
            for i in 0..<n { o[i] = xr[i] * scale * weight[i] }
        }
    }

    private func addBias(_ x: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows { for i in 0..<n { x[r * n + i] += b[i] } }
    }
}

/// Reusable buffers of the forward pass, grown to the largest batch and context seen (no allocation per token).
final class Scratch {
    var T = 0, positions = 0, threads = 0, maxColumns = 0
    var x = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var xn = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var q = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var k = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var v = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var attn = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var tmp = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var gate = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var up = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var xq = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
    /// What `xq` holds: which input, in which format (nil: nothing reusable). Only a matmul told that its input is
    /// the previous matmul's (`sameInput`) reuses it.
    var xqFormat: QuantizedInput? = nil
    var ropeCos = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var ropeSin = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    var scores: [UnsafeMutablePointer<Float>] = []
    var dequant: [UnsafeMutablePointer<Float>] = []

    func ensure(T: Int, d: Int, qd: Int, kd: Int, vd: Int, od: Int, ff: Int, threads: Int, positions: Int, maxColumns: Int) {
        if T > self.T || maxColumns > self.maxColumns {
            self.T = max(T, self.T)
            self.maxColumns = max(maxColumns, self.maxColumns)
            let n = self.T
            for p in [x, xn, q, k, v, attn, tmp, gate, up, ropeCos, ropeSin] { p.deallocate() }
            x = .allocate(capacity: n * d); xn = .allocate(capacity: n * d)
            q = .allocate(capacity: n * qd); k = .allocate(capacity: n * kd); v = .allocate(capacity: n * vd)
            attn = .allocate(capacity: n * od); tmp = .allocate(capacity: n * d)
            gate = .allocate(capacity: n * ff); up = .allocate(capacity: n * ff)
            ropeCos = .allocate(capacity: qd); ropeSin = .allocate(capacity: qd)
            xq.deallocate()
            xqFormat = nil
            // Generous: at most 4 bytes per element plus per-block scales in any activation format.
            xq = .allocate(byteCount: n * (self.maxColumns * 5 + 1024), alignment: 64)
            for p in dequant { p.deallocate() }
            dequant = (0..<threads).map { _ in .allocate(capacity: self.maxColumns) }
        }
        if positions > self.positions || threads != self.threads {
            for p in scores { p.deallocate() }
            self.positions = max(positions, self.positions * 2)
            self.threads = threads
            scores = (0..<threads).map { _ in .allocate(capacity: self.positions) }
            if dequant.count != threads {
                for p in dequant { p.deallocate() }
                dequant = (0..<threads).map { _ in .allocate(capacity: self.maxColumns) }
            }
        }
    }
}

/// The activations last quantized into `Scratch.xq`: input buffer, activation format and shape.
struct QuantizedInput: Equatable {
    var x: UnsafeMutablePointer<Float>, type: GGMLType, rows: Int, columns: Int
}
