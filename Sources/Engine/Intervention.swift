// Interventions in the forward pass: what a caller changes in the model's computation, declared once per call and
// applied inside the forward pass (no callback per layer or token). Steering adds a vector to the residual stream
// after a layer; directional ablation removes the component along a direction, clamping sets it; head ablation
// zeroes a head's attention output, replaces it by a mean or scales it; patching substitutes recorded residual rows
// or head outputs at chosen positions.
//
// Where each acts, for layer L (0-based, as `InspectionRequest` counts them):
// - residual actions (`add`, `ablate`, `clamp`, `patch`) on the residual stream after block L (after its
//   feed-forward residual add: what block L + 1 reads and what `hidden` shows for layer L). That is where llama.cpp
//   adds a control vector (`build_cvec` after each layer's output);
// - head actions (`heads`, `patchHeads`) on block L's attention output per head, before the output projection;
// - `attentionScale` on block L's whole attention output after the output projection (and Gemma's post-attention
//   norm), before it is added to the residual stream: 0 removes the layer's attention.
//
// An intervention is part of what a KV cache holds: the cache records the interventions its positions were
// computed under, forks inherit them, and the prefix cache reuses only entries computed under the same ones.
import Foundation

/// One change to the forward pass at one layer.
public struct Intervention: Sendable, Equatable {
    /// Which positions of the sequence it acts on.
    public enum Positions: Sendable, Equatable {
        /// Every position.
        case all
        /// Positions whose tokens were not generated (a prompt, appended text).
        case prompt
        /// Positions whose tokens a generation drew (the first generated token is the first such position: the
        /// token drawn after the prompt is computed from the prompt's positions, unchanged).
        case generated
        /// These absolute positions (0-based).
        case list([Int])
    }

    /// What a head ablation puts in place of a head's output.
    public enum HeadMode: Sendable, Equatable {
        /// Zero.
        case zero
        /// The head's output times a factor.
        case scale(Float)
        /// A fixed output per head (one row of the value size for each head listed, in order): mean ablation with
        /// means taken over reference text.
        case mean([[Float]])
    }

    /// What is done at the layer.
    public enum Action: Sendable, Equatable {
        /// residual += scale · vector.
        case add([Float], scale: Float)
        /// residual −= (residual · u) u, for the unit vector u of the direction.
        case ablate([Float])
        /// residual += (value − residual · u) u: the component along the unit direction u set to `value`.
        case clamp([Float], value: Float)
        /// These heads' attention outputs (before the output projection) replaced as `HeadMode` says.
        case heads([Int], HeadMode)
        /// The layer's attention output (after the output projection) times a factor.
        case attentionScale(Float)
        /// The residual row at each listed position replaced by the given one (activation patching).
        case patch([Int: [Float]])
        /// These heads' outputs at each listed position replaced by the given ones (`heads.count × valueDim`
        /// values per position, head by head).
        case patchHeads([Int], [Int: [Float]])
    }

    public var layer: Int
    public var action: Action
    public var positions: Positions

    public init(layer: Int, _ action: Action, positions: Positions = .all) {
        self.layer = layer
        self.action = action
        self.positions = positions
    }

    /// Whether the intervention changes nothing wherever it applies (a zero vector, scale 0 of an addition,
    /// a head scale of 1): the forward pass skips it, so the result is bit for bit that of no intervention.
    var isIdentity: Bool {
        switch action {
        case .add(let v, let s): return s == 0 || v.allSatisfy { $0 == 0 }
        case .heads(let hs, .scale(let f)): return f == 1 || hs.isEmpty
        case .attentionScale(let f): return f == 1
        case .patch(let rows): return rows.isEmpty
        case .patchHeads(let hs, let rows): return hs.isEmpty || rows.isEmpty
        default: return false
        }
    }
}

/// The interventions of one call, checked against a model and indexed by layer.
public struct Interventions: Sendable, Equatable {
    /// In the order given; at one layer they apply in this order.
    public let list: [Intervention]
    /// Per layer, the indices into `list` of the residual, head and attention-output actions there.
    let residual: [[Int]], heads: [[Int]], attentionOutput: [[Int]]
    /// Unit vectors of the `ablate` and `clamp` directions, by index into `list`.
    let units: [Int: [Float]]
    /// Some intervention acts on prompt or generated positions only.
    public let dependsOnPhase: Bool

    public static func == (a: Interventions, b: Interventions) -> Bool { a.list == b.list }

    /// Checks each intervention against `config` (layer, vector size, head, finite values, non-zero directions).
    /// Interventions that change nothing are dropped; nil when none is left.
    public static func make(_ list: [Intervention], config c: ModelConfig) throws -> Interventions? {
        try make(list, config: c, keepIdentities: false)
    }

    /// As `make`, keeping the interventions that change nothing (tests apply them in the forward pass).
    static func forTests(_ list: [Intervention], config c: ModelConfig) throws -> Interventions? {
        try make(list, config: c, keepIdentities: true)
    }

    private static func make(_ list: [Intervention], config c: ModelConfig, keepIdentities: Bool) throws -> Interventions? {
        let d = c.embeddingLength, vdh = c.valueDim
        func bad(_ i: Int, _ m: String) -> EngineError { .badInput("intervention \(i + 1): \(m)") }
        func finite(_ v: [Float]) -> Bool { v.allSatisfy { $0.isFinite } }
        var kept: [Intervention] = []
        for (i, x) in list.enumerated() {
            guard x.layer >= 0, x.layer < c.layerCount else {
                throw bad(i, "layer \(x.layer) is out of range (the model has layers 0 to \(c.layerCount - 1))")
            }
            if case .list(let ps) = x.positions, let p = ps.first(where: { $0 < 0 }) {
                throw bad(i, "position \(p) is negative")
            }
            func vector(_ v: [Float], _ what: String) throws {
                guard v.count == d else { throw bad(i, "\(what) has \(v.count) values, the model's embedding has \(d)") }
                guard finite(v) else { throw bad(i, "\(what) holds a value that is not finite") }
            }
            func headList(_ hs: [Int]) throws {
                for h in hs where h < 0 || h >= c.headCount {
                    throw bad(i, "head \(h) is out of range (the model has heads 0 to \(c.headCount - 1))")
                }
            }
            switch x.action {
            case .add(let v, let s):
                try vector(v, "the vector")
                guard s.isFinite else { throw bad(i, "the scale is not finite") }
            case .ablate(let v), .clamp(let v, _):
                try vector(v, "the direction")
                guard v.contains(where: { $0 != 0 }) else { throw bad(i, "the direction is the zero vector") }
                if case .clamp(_, let value) = x.action, !value.isFinite { throw bad(i, "the clamp value is not finite") }
            case .heads(let hs, let mode):
                try headList(hs)
                switch mode {
                case .zero: break
                case .scale(let f): guard f.isFinite else { throw bad(i, "the head scale is not finite") }
                case .mean(let rows):
                    guard rows.count == hs.count else { throw bad(i, "\(rows.count) mean rows for \(hs.count) heads") }
                    for r in rows {
                        guard r.count == vdh else { throw bad(i, "a mean row has \(r.count) values, a head's output has \(vdh)") }
                        guard finite(r) else { throw bad(i, "a mean row holds a value that is not finite") }
                    }
                }
            case .attentionScale(let f):
                guard f.isFinite else { throw bad(i, "the attention scale is not finite") }
            case .patch(let rows):
                for (p, r) in rows {
                    guard p >= 0 else { throw bad(i, "position \(p) is negative") }
                    try vector(r, "the patched row at position \(p)")
                }
            case .patchHeads(let hs, let rows):
                try headList(hs)
                for (p, r) in rows {
                    guard p >= 0 else { throw bad(i, "position \(p) is negative") }
                    guard r.count == hs.count * vdh else {
                        throw bad(i, "the patched heads at position \(p) have \(r.count) values, \(hs.count) heads × \(vdh) need \(hs.count * vdh)")
                    }
                    guard finite(r) else { throw bad(i, "the patched heads at position \(p) hold a value that is not finite") }
                }
            }
            if keepIdentities || !x.isIdentity { kept.append(x) }
        }
        return kept.isEmpty ? nil : Interventions(kept, layers: c.layerCount)
    }

    private init(_ list: [Intervention], layers: Int) {
        self.list = list
        var r = [[Int]](repeating: [], count: layers), h = r, a = r
        var units: [Int: [Float]] = [:]
        var phase = false
        for (i, x) in list.enumerated() {
            switch x.action {
            case .add, .patch: r[x.layer].append(i)
            case .ablate(let v), .clamp(let v, _):
                r[x.layer].append(i)
                var n = 0.0
                for e in v { n += Double(e) * Double(e) }
                let inv = Float(1 / n.squareRoot())
                units[i] = v.map { $0 * inv }
            case .heads, .patchHeads: h[x.layer].append(i)
            case .attentionScale: a[x.layer].append(i)
            }
            if x.positions == .prompt || x.positions == .generated { phase = true }
        }
        residual = r; heads = h; attentionOutput = a
        self.units = units
        dependsOnPhase = phase
    }

    /// Whether intervention `x` acts at `pos` of a sequence whose generated positions `cache` records.
    @inline(__always) static func applies(_ x: Intervention, at pos: Int, cache: KVCache) -> Bool {
        switch x.positions {
        case .all: return true
        case .prompt: return !cache.isGenerated(pos)
        case .generated: return cache.isGenerated(pos)
        case .list(let ps): return ps.contains(pos)
        }
    }

    /// Applies the residual actions of layer `il` to row `x` (the residual after the block) at `pos`.
    func applyResidual(layer il: Int, row x: UnsafeMutablePointer<Float>, d: Int, pos: Int, cache: KVCache) {
        for i in residual[il] {
            let it = list[i]
            guard Interventions.applies(it, at: pos, cache: cache) else { continue }
            switch it.action {
            case .add(let v, let s):
                v.withUnsafeBufferPointer { v in
                    if s == 1 { for j in 0..<d { x[j] += v[j] } } else { for j in 0..<d { x[j] += s * v[j] } }
                }
            case .ablate:
                let u = units[i]!
                let p = Interventions.dot(x, u, d)
                u.withUnsafeBufferPointer { u in for j in 0..<d { x[j] -= p * u[j] } }
            case .clamp(_, let value):
                let u = units[i]!
                let p = Interventions.dot(x, u, d)
                u.withUnsafeBufferPointer { u in for j in 0..<d { x[j] += (value - p) * u[j] } }
            case .patch(let rows):
                if let r = rows[pos] { r.withUnsafeBufferPointer { x.update(from: $0.baseAddress!, count: d) } }
            default: break
            }
        }
    }

    /// Applies the head actions of layer `il` to row `a` (every head's attention output, `heads × vdh`) at `pos`.
    func applyHeads(layer il: Int, row a: UnsafeMutablePointer<Float>, vdh: Int, pos: Int, cache: KVCache) {
        for i in heads[il] {
            let it = list[i]
            guard Interventions.applies(it, at: pos, cache: cache) else { continue }
            switch it.action {
            case .heads(let hs, let mode):
                for (k, h) in hs.enumerated() {
                    let o = a + h * vdh
                    switch mode {
                    case .zero: o.update(repeating: 0, count: vdh)
                    case .scale(let f): for j in 0..<vdh { o[j] *= f }
                    case .mean(let rows): rows[k].withUnsafeBufferPointer { o.update(from: $0.baseAddress!, count: vdh) }
                    }
                }
            case .patchHeads(let hs, let rows):
                guard let r = rows[pos] else { continue }
                r.withUnsafeBufferPointer { r in
                    for (k, h) in hs.enumerated() { (a + h * vdh).update(from: r.baseAddress! + k * vdh, count: vdh) }
                }
            default: break
            }
        }
    }

    /// Applies the attention-output actions of layer `il` to row `y` (the attention block's output) at `pos`.
    func applyAttentionOutput(layer il: Int, row y: UnsafeMutablePointer<Float>, d: Int, pos: Int, cache: KVCache) {
        for i in attentionOutput[il] {
            let it = list[i]
            guard Interventions.applies(it, at: pos, cache: cache), case .attentionScale(let f) = it.action else { continue }
            for j in 0..<d { y[j] *= f }
        }
    }

    /// x · u in Double (the projection on a direction, as the definition reads).
    static func dot(_ x: UnsafeMutablePointer<Float>, _ u: [Float], _ d: Int) -> Float {
        var s = 0.0
        u.withUnsafeBufferPointer { u in for j in 0..<d { s += Double(x[j]) * Double(u[j]) } }
        return Float(s)
    }
}

// MARK: - Control vectors

/// A direction per layer in llama.cpp's control-vector GGUF format (general.architecture `controlvector`, f32
/// tensors `direction.L` for layers L ≥ 1, the key `controlvector.model_hint`): what `llama-cvector-generator`
/// writes and `--control-vector` reads. llama.cpp adds direction L to the residual stream after block L (0-based);
/// it never adds one after block 0.
public struct ControlVector: Sendable, Equatable {
    /// The embedding size.
    public let dimension: Int
    /// Layer → direction (`dimension` values).
    public var directions: [Int: [Float]]
    /// The architecture of the model the vector was made for (the file's `controlvector.model_hint`).
    public var modelHint: String

    public init(dimension: Int, directions: [Int: [Float]], modelHint: String = "") {
        self.dimension = dimension
        self.directions = directions
        self.modelHint = modelHint
    }

    /// Reads a control-vector file as llama.cpp's `common_control_vector_load_one` does: every tensor must be named
    /// `direction.L` with L ≥ 1, be f32 and one-dimensional, all of one size; several tensors for one layer add up.
    public init(path: String) throws {
        let f = try GGUFFile(path: path)
        func bad(_ m: String) -> EngineError { .badInput("\(path): \(m)") }
        var dim = -1
        var dirs: [Int: [Float]] = [:]
        if f.tensors.isEmpty { throw bad("no direction tensors (a control vector holds tensors named direction.L)") }
        for t in f.tensors {
            let parts = t.name.split(separator: ".", maxSplits: 1)
            guard parts.count == 2, parts[0] == "direction", let l = Int(parts[1]), l >= 0 else {
                throw bad("tensor '\(t.name)' is not a direction (a control vector's tensors are named direction.L)")
            }
            guard l > 0 else { throw bad("tensor '\(t.name)': layer 0 has no direction (llama.cpp adds none after block 0)") }
            guard t.type == .f32 else { throw bad("tensor '\(t.name)' is \(t.type), a direction must be f32") }
            guard t.dims.count == 1 else { throw bad("tensor '\(t.name)' has \(t.dims.count) dimensions, a direction has 1") }
            if dim == -1 { dim = t.dims[0] } else if t.dims[0] != dim {
                throw bad("tensor '\(t.name)' has \(t.dims[0]) values, the earlier directions \(dim)")
            }
            let p = f.data(t).assumingMemoryBound(to: Float.self)
            var v = dirs[l] ?? [Float](repeating: 0, count: dim)
            for j in 0..<dim { v[j] += p[j] }
            dirs[l] = v
        }
        dimension = dim
        directions = dirs
        modelHint = f.string("controlvector.model_hint") ?? ""
    }

    /// Writes the vector as llama-cvector-generator does: general.architecture `controlvector`,
    /// `controlvector.model_hint`, `controlvector.layer_count` (the number of directions), one f32 tensor
    /// `direction.L` per layer (layers in increasing order; layer 0 cannot be written).
    public func write(to path: String) throws {
        if let l = directions.keys.first(where: { $0 < 1 }) {
            throw EngineError.badInput("a control vector file holds directions for layers from 1 on (llama.cpp adds none after block 0), not layer \(l)")
        }
        let layers = directions.keys.sorted()
        guard !layers.isEmpty else { throw EngineError.badInput("the vector holds no directions: nothing to save") }
        var w = GGUFWriter()
        w.string("general.architecture", "controlvector")
        w.string("controlvector.model_hint", modelHint)
        w.int32("controlvector.layer_count", Int32(layers.count))
        for l in layers { w.tensor("direction.\(l)", directions[l]!) }
        try w.data().write(to: URL(fileURLWithPath: path))
    }

    /// The interventions llama.cpp applies for this vector times `scale`, on layers `range` (inclusive; llama.cpp's
    /// `--control-vector-layer-range`, default 1 to the layer count): each direction added to every position.
    public func interventions(scale: Float = 1, layers range: ClosedRange<Int>? = nil) -> [Intervention] {
        directions.keys.sorted().filter { range?.contains($0) ?? true }.map {
            Intervention(layer: $0, .add(directions[$0]!, scale: scale))
        }
    }

    /// Several vectors with their scales summed into one, as llama.cpp sums its `--control-vector` files.
    public static func sum(_ parts: [(ControlVector, Float)]) throws -> ControlVector {
        guard let first = parts.first?.0 else { throw EngineError.badInput("no control vectors to add") }
        var dirs: [Int: [Float]] = [:]
        for (v, s) in parts {
            guard v.dimension == first.dimension else {
                throw EngineError.badInput("control vectors of \(first.dimension) and \(v.dimension) values cannot be added")
            }
            for (l, d) in v.directions {
                var acc = dirs[l] ?? [Float](repeating: 0, count: v.dimension)
                for j in 0..<d.count { acc[j] += d[j] * s }
                dirs[l] = acc
            }
        }
        return ControlVector(dimension: first.dimension, directions: dirs, modelHint: first.modelHint)
    }
}

/// A minimal GGUF (version 3) writer: string and int32 metadata, f32 tensors, 32-byte alignment.
struct GGUFWriter {
    private var kv: [(String, UInt32, [UInt8])] = []
    private var tensors: [(String, [Float])] = []

    private static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    private static func str(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

    mutating func string(_ key: String, _ value: String) { kv.append((key, 8, GGUFWriter.str(value))) }
    mutating func int32(_ key: String, _ value: Int32) { kv.append((key, 5, GGUFWriter.le(value))) }
    mutating func tensor(_ name: String, _ values: [Float]) { tensors.append((name, values)) }

    func data() -> Data {
        let align = 32
        var out: [UInt8] = Array("GGUF".utf8) + GGUFWriter.le(UInt32(3))
        out += GGUFWriter.le(UInt64(tensors.count)) + GGUFWriter.le(UInt64(kv.count))
        for (k, type, bytes) in kv { out += GGUFWriter.str(k) + GGUFWriter.le(type) + bytes }
        var offset = 0
        for (name, values) in tensors {
            out += GGUFWriter.str(name) + GGUFWriter.le(UInt32(1)) + GGUFWriter.le(UInt64(values.count))
            out += GGUFWriter.le(UInt32(0)) + GGUFWriter.le(UInt64(offset))   // type 0: f32
            offset += (values.count * 4 + align - 1) / align * align
        }
        while out.count % align != 0 { out.append(0) }
        for (_, values) in tensors {
            for v in values { out += GGUFWriter.le(v.bitPattern) }
            while out.count % align != 0 { out.append(0) }
        }
        return Data(out)
    }
}

// MARK: - Activation patching

/// The result of `LanguageModel.patchingSweep`: the metric of the corrupted run with the clean run's residual row
/// patched in at each (layer, position), beside the two runs' own metrics.
public struct PatchingSweep: Sendable {
    public let layers: [Int]
    /// Positions, 0-based (every position of the prompts).
    public let positions: [Int]
    /// `layers.count × positions.count`, row-major: the metric with the clean residual after block `layers[i]`
    /// patched in at position `positions[j]`.
    public let values: [Float]
    /// The metric of the clean and of the corrupted run.
    public let clean: Float, corrupted: Float

    /// How much of the clean run's metric a patch restores: (value − corrupted) / (clean − corrupted), per cell.
    public var restored: [Float] {
        let span = clean - corrupted
        return values.map { span == 0 ? 0 : ($0 - corrupted) / span }
    }
}

extension LanguageModel {
    /// The classic clean/corrupted activation-patching experiment: for each layer L of `layers` (default all) and
    /// each position p, runs `corrupted` with the residual row after block L at position p replaced by the one the
    /// `clean` run computed there, and measures, at the last position, log p(target) − log p(foil) (the logit
    /// difference; log p(target) when `foil` is nil). `interventions` apply to every run. The two prompts must have
    /// the same number of tokens. Positions before p are the corrupted run's own, so each patched run starts from
    /// the corrupted run's cache at p (the result equals running every patched prompt whole).
    public func patchingSweep(clean: [Int32], corrupted: [Int32], target: Int32, foil: Int32? = nil,
                              layers: [Int]? = nil, interventions: [Intervention] = []) throws -> PatchingSweep {
        guard !clean.isEmpty, clean.count == corrupted.count else {
            throw EngineError.badInput("patching needs two prompts of the same length, got \(clean.count) and \(corrupted.count) tokens")
        }
        try validate(clean); try validate(corrupted); try validate([target] + (foil.map { [$0] } ?? []))
        let c = config, T = clean.count
        let layers = layers ?? Array(0..<c.layerCount)
        for l in layers where l < 0 || l >= c.layerCount {
            throw EngineError.badInput("layer \(l) is out of range (the model has layers 0 to \(c.layerCount - 1))")
        }
        let base = try checked(interventions)
        func metric(_ logits: [Float]) -> Float {
            logits.withUnsafeBufferPointer { row in
                let t = LogProbs.logProb(row, target)
                return Float(foil.map { t - LogProbs.logProb(row, $0) } ?? t)
            }
        }
        var req = InspectionRequest(hiddenLayers: layers)
        req.interventions = interventions
        let cleanRun = try inspect(clean, req)
        let tr = transformer
        let cleanCache = tr.makeCache(maxPositions: T)
        cleanCache.intervene(base)
        let cleanMetric = metric(tr.forward(clean, cache: cleanCache, logits: .last))
        let corrupted0 = tr.makeCache(maxPositions: T)
        corrupted0.intervene(base)
        let corruptedMetric = metric(tr.forward(corrupted, cache: corrupted0, logits: .last))
        let d = c.embeddingLength
        var values = [Float](repeating: 0, count: layers.count * T)
        for (i, l) in layers.enumerated() {
            let rows = cleanRun.hidden[l]!
            for p in 0..<T {
                let patch = Intervention(layer: l, .patch([p: Array(rows[(p * d)..<((p + 1) * d)])]))
                let cache = corrupted0.fork(keeping: p)
                // The patch acts at p and after it only: the kept positions are the same under it.
                cache.interventions = try checked(interventions + [patch])
                values[i * T + p] = metric(tr.forward(Array(corrupted[p...]), cache: cache, logits: .last))
            }
        }
        return PatchingSweep(layers: layers, positions: Array(0..<T), values: values, clean: cleanMetric,
                             corrupted: corruptedMetric)
    }
}
