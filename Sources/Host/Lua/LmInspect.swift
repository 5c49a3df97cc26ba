// Looking inside the model from Lua: `m:attention`, `m:hidden` and `m:logit_lens` run one forward pass over a
// text (or ids) through the engine's `inspect` and return matrices (LmMatrix.swift). Layers and heads are the
// model's numbers (0-based, as papers count them); positions in the matrices are Lua's (1-based: position i is
// the i-th token of `ids`).
import CLua
import Engine
import Foundation

extension LuaHost {
    static let attentionOptions: [String: OptionKind] = ["layers": .strings, "heads": .strings, "intervene": .strings]
    static let hiddenOptions: [String: OptionKind] = ["layers": .strings, "intervene": .strings]
    static let lensOptions: [String: OptionKind] = ["layers": .strings, "top": .integer(min: 0), "intervene": .strings]

    /// A list of layer or head numbers: an integer, a list of integers, or "all" (nil when absent). Each must be in
    /// 0..<count; `what` is "layer" or "head".
    func numbers(_ a: Arguments, _ t: Int32?, _ key: String, count: Int, what: String) throws -> [Int]? {
        guard let t else { return nil }
        let lua = a.lua
        lua.rawGet(t, key)
        defer { lua.pop() }
        if lua.isNoneOrNil(-1) { return nil }
        if lua.string(-1) == "all" { return Array(0..<count) }
        var out: [Int] = []
        if let v = lua.integer(-1) {
            out = [v]
        } else if lua.type(-1) == LUA_TTABLE {
            let n = lua.rawLength(-1)
            for k in 1...max(n, 1) where k <= n {
                lua.rawGet(-1, k)
                defer { lua.pop() }
                guard let v = lua.integer(-1) else {
                    throw LuaError.argument(t, "option '\(key)' must list integers (item \(k) is \(lua.describe(-1)))")
                }
                out.append(v)
            }
            guard !out.isEmpty else { throw LuaError.argument(t, "option '\(key)' is an empty list") }
        } else {
            throw LuaError.argument(t, "option '\(key)' must be \"all\", an integer or a list of integers, got \(lua.describe(-1))")
        }
        for v in out where v < 0 || v >= count {
            throw LuaError.message("\(a.function): \(what) \(v) is out of range (the model has \(what)s 0 to \(count - 1))")
        }
        return out
    }

    /// The ids to inspect: text (control tokens parsed, BOS as the model says), ids, or chat messages.
    func inspectedIDs(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> [Int32] {
        let ids = try promptIDs(args, model, first)
        guard !ids.isEmpty else { throw LuaError.message("\(args.function): no tokens to look at") }
        return ids
    }

    /// The fields every inspection result has: the layers (and heads), the ids, their pieces, the dimensions' names.
    func pushInspectionFields(_ m: LanguageModel, ids: [Int32], layers: [Int], heads: [Int]?, dims: [String]) {
        lua.newTable {
            lua.field("layers") { lua.push(ids: layers.map { Int32($0) }) }
            if let heads { lua.field("heads") { lua.push(ids: heads.map { Int32($0) }) } }
            lua.field("ids") { lua.push(ids: ids) }
            lua.field("tokens") { lua.push(strings: ids.map { piece(m, $0) }) }
            lua.field("dims") { lua.push(strings: dims) }
        }
    }

    func attention(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        try admitModelCall("attention")
        let ids = try inspectedIDs(args, model, first)
        let o = try options(args, first + 1, known: LuaHost.attentionOptions)
        let c = model.config
        let layers = try numbers(args, o, "layers", count: c.layerCount, what: "layer") ?? Array(0..<c.layerCount)
        let heads = try numbers(args, o, "heads", count: c.headCount, what: "head") ?? Array(0..<c.headCount)
        var req = InspectionRequest(attentionLayers: layers, heads: heads)
        req.interventions = try intervene(args, o, model: model)
        let ins = try model.inspect(ids, req)
        let T = ids.count, block = heads.count * T * T
        var data = [Float](); data.reserveCapacity(layers.count * block)
        for l in layers { data += ins.attention[l]! }
        pushMatrix(Matrix(data, shape: [layers.count, heads.count, T, T]))
        pushInspectionFields(model, ids: ids, layers: layers, heads: heads, dims: ["layer", "head", "query", "key"])
        setMatrixFields()
        return 1
    }

    func hidden(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        try admitModelCall("hidden")
        let ids = try inspectedIDs(args, model, first)
        let o = try options(args, first + 1, known: LuaHost.hiddenOptions)
        let c = model.config
        let layers = try numbers(args, o, "layers", count: c.layerCount, what: "layer") ?? Array(0..<c.layerCount)
        var req = InspectionRequest(hiddenLayers: layers)
        req.interventions = try intervene(args, o, model: model)
        let ins = try model.inspect(ids, req)
        var data = [Float](); data.reserveCapacity(layers.count * ids.count * c.embeddingLength)
        for l in layers { data += ins.hidden[l]! }
        pushMatrix(Matrix(data, shape: [layers.count, ids.count, c.embeddingLength]))
        pushInspectionFields(model, ids: ids, layers: layers, heads: nil, dims: ["layer", "position", "embedding"])
        setMatrixFields()
        return 1
    }

    /// `m:logit_lens`: each asked layer's residual through the final norm and the unembedding. Returns a table:
    /// layers, ids, tokens, `top[i][t]` (the `top` most likely next tokens at position t by layer layers[i]),
    /// `logprob` (layers × (T − 1): the log-probability each layer gives the token that actually comes next) and
    /// `entropy` (layers × T, nats).
    func logitLens(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        try admitModelCall("logit_lens")
        let ids = try inspectedIDs(args, model, first)
        let o = try options(args, first + 1, known: LuaHost.lensOptions)
        let c = model.config
        let layers = try numbers(args, o, "layers", count: c.layerCount, what: "layer") ?? Array(0..<c.layerCount)
        var top = 5
        if let o {
            lua.rawGet(o, "top")
            if !lua.isNoneOrNil(-1) {
                guard let k = lua.integer(-1), k >= 0 else {
                    throw LuaError.argument(o, "option 'top' must be an integer ≥ 0, got \(lua.describe(-1))")
                }
                top = k
            }
            lua.pop()
        }
        var req = InspectionRequest(hiddenLayers: layers)
        req.interventions = try intervene(args, o, model: model)
        let ins = try model.inspect(ids, req)
        let T = ids.count, V = c.vocabularySize
        var tops: [[[(id: Int32, logprob: Float)]]] = []
        var next = [Float](), entropy = [Float]()
        for l in layers {
            let logits = model.logitLens(ins.hidden[l]!, rows: T)
            var layerTop: [[(id: Int32, logprob: Float)]] = []
            logits.withUnsafeBufferPointer { p in
                for t in 0..<T {
                    let row = UnsafeBufferPointer(rebasing: p[(t * V)..<((t + 1) * V)])
                    layerTop.append(LogProbs.topK(row, top))
                    entropy.append(Float(LogProbs.entropy(row)))
                    if t + 1 < T { next.append(Float(LogProbs.logProb(row, ids[t + 1]))) }
                }
            }
            tops.append(layerTop)
        }
        lua.newTable {
            lua.field("layers") { lua.push(ids: layers.map { Int32($0) }) }
            lua.field("ids") { lua.push(ids: ids) }
            lua.field("tokens") { lua.push(strings: ids.map { piece(model, $0) }) }
            lua.field("top") {
                lua.newTable(array: tops.count) {
                    for (i, lt) in tops.enumerated() {
                        lua.element(i + 1) {
                            lua.newTable(array: T) { for (t, k) in lt.enumerated() { lua.element(t + 1) { pushTop(k, model) } } }
                        }
                    }
                }
            }
            lua.field("logprob") { pushMatrix(Matrix(next, shape: [layers.count, T - 1])) }
            lua.field("entropy") { pushMatrix(Matrix(entropy, shape: [layers.count, T])) }
        }
        return 1
    }
}
