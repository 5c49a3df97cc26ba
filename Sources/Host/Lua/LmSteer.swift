// Steering and interventions from Lua. `lm.vector` values are directions per layer (the engine's ControlVector,
// llama.cpp's control-vector file format); `m:steer` builds one from contrasting prompts; `m:patching` runs the
// clean/corrupted activation-patching sweep; the `intervene` option of generate, sample, generate_batch, state,
// score, choose, attention, hidden and logit_lens declares what the forward pass changes (Engine/Intervention.swift).
//
// Layers are the model's numbers (0-based, as `m:hidden` counts them); positions are Lua's (1-based: position i is
// the i-th token of the prompt).
import CLua
import Engine
import Foundation

/// A control vector as a userdata keeps it.
final class VectorBox {
    let vector: ControlVector
    init(_ v: ControlVector) { vector = v }
}

extension LuaHost {
    /// The keys of one intervention table in `intervene`.
    static let interventionKeys: Set<String> = ["add", "ablate", "clamp", "heads", "attention", "patch", "scale", "value",
                                                "layers", "layer", "positions", "mode", "over"]

    // MARK: - lm.vector

    /// The vector methods, in the order `help()` lists them.
    var vectorOperations: [(String, (Arguments, ControlVector) throws -> Int32)] {
        [("layers", vectorLayers), ("get", vectorGet), ("norm", vectorNorm), ("only", vectorOnly),
         ("normalized", vectorNormalized), ("save", vectorSave)]
    }

    /// Creates the vector metatable (`lm.vector`) in the registry: methods, `#v` (its number of layers),
    /// `tostring`, and arithmetic (`v + w`, `v - w`, `-v`, `v * s`, `s * v`, `v / s`).
    func installVectorMetatable() {
        luaL_newmetatable(L, "lm.vector")
        lua.field("__gc") { lua_pushcclosure(L, LuaHost.releaseUserdata, 0) }
        lua.field("__name", "lm.vector")
        lua.field("__index") {
            lua.newTable()
            for (name, op) in vectorOperations {
                lua.field(name) {
                    pushFunction(name) { [unowned self] lua in
                        let a = Arguments(lua: lua, function: name)
                        return try op(a, try self.vector(a, 1))
                    }
                }
            }
            lua.field("dimension") {
                pushFunction("dimension") { [unowned self] lua in
                    lua.push(try self.vector(Arguments(lua: lua, function: "dimension"), 1).dimension); return 1
                }
            }
        }
        lua.field("__len") {
            pushFunction("len") { [unowned self] lua in
                lua.push(try self.vector(Arguments(lua: lua, function: "len"), 1).directions.count); return 1
            }
        }
        lua.field("__tostring") {
            pushFunction("tostring") { [unowned self] lua in
                let v = try self.vector(Arguments(lua: lua, function: "tostring"), 1)
                let layers = v.directions.keys.sorted()
                let span = layers.isEmpty ? "no layers" : layers.count == 1 ? "layer \(layers[0])" : "layers \(layers.first!)–\(layers.last!)"
                lua.push("vector: \(layers.count) directions of \(v.dimension) (\(span))\(v.modelHint.isEmpty ? "" : ", for \(v.modelHint)")")
                return 1
            }
        }
        for (meta, op) in [("__add", 1.0), ("__sub", -1.0)] {
            lua.field(meta) {
                pushFunction(meta) { [unowned self] lua in
                    let a = Arguments(lua: lua, function: meta == "__add" ? "+" : "-")
                    let x = try self.vector(a, 1), y = try self.vector(a, 2)
                    do { self.pushVector(try ControlVector.sum([(x, 1), (y, Float(op))])) } catch { throw LuaError.message("vector \(a.function): \(error)") }
                    return 1
                }
            }
        }
        lua.field("__unm") {
            pushFunction("unm") { [unowned self] lua in
                self.pushVector(try self.vector(Arguments(lua: lua, function: "-"), 1).scaled(-1)); return 1
            }
        }
        lua.field("__mul") {
            pushFunction("*") { [unowned self] lua in
                let a = Arguments(lua: lua, function: "*")
                let (v, s) = lua.type(1) == LUA_TNUMBER ? (try self.vector(a, 2), lua.number(1)!) : (try self.vector(a, 1), try self.scalar(a, 2))
                self.pushVector(v.scaled(Float(s))); return 1
            }
        }
        lua.field("__div") {
            pushFunction("/") { [unowned self] lua in
                let a = Arguments(lua: lua, function: "/")
                let v = try self.vector(a, 1), s = try self.scalar(a, 2)
                guard s != 0 else { throw LuaError.argument(2, "division of a vector by zero") }
                self.pushVector(v.scaled(Float(1 / s))); return 1
            }
        }
        lua.pop()
    }

    private func scalar(_ a: Arguments, _ i: Int32) throws -> Double {
        guard let s = a.lua.number(i), s.isFinite else { throw a.typeError(i, "finite number") }
        return s
    }

    func pushVector(_ v: ControlVector) { pushUserdata(VectorBox(v), metatableNamed: "lm.vector") }

    /// The vector at argument `i`.
    func vector(_ a: Arguments, _ i: Int32) throws -> ControlVector {
        guard let b = object(i, kind: "lm.vector", as: VectorBox.self) else { throw a.typeError(i, "vector") }
        return b.vector
    }

    func vectorLayers(_ a: Arguments, _ v: ControlVector) throws -> Int32 {
        a.lua.push(ids: v.directions.keys.sorted().map { Int32($0) })
        return 1
    }

    /// `v:get(layer)`: the direction at a layer as a matrix (nil when the vector has none there).
    func vectorGet(_ a: Arguments, _ v: ControlVector) throws -> Int32 {
        let l = try a.integer(2)
        guard let d = v.directions[l] else { a.lua.pushNil(); return 1 }
        pushMatrix(Matrix(d, shape: [d.count]))
        return 1
    }

    /// `v:norm([layer])`: the Euclidean norm at a layer, or a table layer → norm.
    func vectorNorm(_ a: Arguments, _ v: ControlVector) throws -> Int32 {
        let norm = { (d: [Float]) in d.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        if !a.lua.isNoneOrNil(2) {
            let l = try a.integer(2)
            guard let d = v.directions[l] else { throw LuaError.argument(2, "the vector has no direction at layer \(l)") }
            a.lua.push(norm(d))
            return 1
        }
        a.lua.newTable { for (l, d) in v.directions { lua_pushnumber(L, norm(d)); lua_rawseti(L, -2, lua_Integer(l)) } }
        return 1
    }

    /// `v:only(layers)`: the directions at these layers only (an integer, a list, or {from, to} with `to` ≥ from).
    func vectorOnly(_ a: Arguments, _ v: ControlVector) throws -> Int32 {
        let keep = Set(try layerList(a, 2, count: Int.max))
        var w = v
        w.directions = v.directions.filter { keep.contains($0.key) }
        pushVector(w)
        return 1
    }

    /// `v:normalized()`: each direction scaled to norm 1 (as llama-cvector-generator writes them).
    func vectorNormalized(_ a: Arguments, _ v: ControlVector) throws -> Int32 {
        var w = v
        for (l, d) in v.directions {
            let n = Float(d.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
            if n > 0 { w.directions[l] = d.map { $0 / n } }
        }
        pushVector(w)
        return 1
    }

    /// `v:save(path)`: writes llama.cpp's control-vector file (GGUF), which `--control-vector` reads.
    func vectorSave(_ a: Arguments, _ v: ControlVector) throws -> Int32 {
        let path = try a.string(2)
        var target = path
        if sandbox.enabled {
            switch LuaHost.writablePath(path, root: sandbox.folder) {
            case .success(let p): target = p
            case .failure(let e): throw LuaError.message("save: sandbox: \(e)")
            }
        }
        do { try v.write(to: target) } catch { throw LuaError.message("save: \(error)") }
        return 0
    }

    /// `lm.vector.load(path)`, `lm.vector.new{[layer] = values}` and `lm.vector.random(like [, {seed=}])`.
    func installVectorBindings(lm: Int32) {
        lua.newTable()
        pushFunction("load") { [unowned self] lua in
            let a = Arguments(lua: lua, function: "lm.vector.load")
            let path = try a.string(1)
            if case .failure(let e) = self.readablePath(path) { throw LuaError.message("lm.vector.load: sandbox: \(e)") }
            do { self.pushVector(try ControlVector(path: path)) } catch { throw LuaError.message("lm.vector.load: \(error)") }
            return 1
        }
        lua_setfield(L, -2, "load")
        pushFunction("new") { [unowned self] lua in
            let a = Arguments(lua: lua, function: "lm.vector.new")
            try a.table(1)
            var dirs: [Int: [Float]] = [:]
            var dim = -1
            lua.pushNil()
            while lua_next(L, 1) != 0 {
                defer { lua.pop() }
                guard lua_isinteger(L, -2) != 0 else { throw LuaError.argument(1, "keys are layer numbers, got \(lua.describe(-2))") }
                let l = Int(lua_tointegerx(L, -2, nil))
                guard l >= 0 else { throw LuaError.argument(1, "layer \(l) is negative") }
                let values = try self.numbers(a, lua.absolute(-1), what: "layer \(l)")
                if dim == -1 { dim = values.count } else if values.count != dim {
                    throw LuaError.argument(1, "layer \(l) has \(values.count) values, the others \(dim)")
                }
                dirs[l] = values
            }
            guard dim > 0 else { throw LuaError.argument(1, "no directions (give {[layer] = values, ...})") }
            self.pushVector(ControlVector(dimension: dim, directions: dirs))
            return 1
        }
        lua_setfield(L, -2, "new")
        pushFunction("random") { [unowned self] lua in
            let a = Arguments(lua: lua, function: "lm.vector.random")
            let like = try self.vector(a, 1)
            var seed: UInt64 = 0
            if let o = try self.options(a, 2, known: ["seed": .integer(min: 0)]) {
                lua.rawGet(o, "seed")
                if let s = lua.integer(-1) { seed = UInt64(s) }
                lua.pop()
            }
            self.pushVector(like.randomDirections(seed: seed))
            return 1
        }
        lua_setfield(L, -2, "random")
        lua_setfield(L, lm, "vector")
    }

    /// The numbers of a list or a 1-D matrix at `i`.
    func numbers(_ a: Arguments, _ i: Int32, what: String) throws -> [Float] {
        if let m = object(i, kind: "lm.matrix", as: Matrix.self) {
            guard m.shape.count == 1 else { throw LuaError.message("\(a.function): \(what) is a \(m.shapeText) matrix, not a vector") }
            return m.contiguous()
        }
        guard lua.type(i) == LUA_TTABLE else { throw LuaError.message("\(a.function): \(what) must be a list of numbers or a matrix, got \(lua.typeName(i))") }
        let n = lua.rawLength(i)
        var out = [Float](); out.reserveCapacity(n)
        for k in 1...max(n, 1) where k <= n {
            lua.rawGet(i, k)
            defer { lua.pop() }
            guard let x = lua.number(-1), x.isFinite else { throw LuaError.message("\(a.function): \(what): item \(k) is not a finite number") }
            out.append(Float(x))
        }
        guard !out.isEmpty else { throw LuaError.message("\(a.function): \(what) is empty") }
        return out
    }

    /// Layer numbers at `i`: an integer, a list of integers, or "all" (0..<count).
    func layerList(_ a: Arguments, _ i: Int32, count: Int) throws -> [Int] {
        let lua = a.lua
        if lua.string(i) == "all", count < Int.max { return Array(0..<count) }
        if let v = lua.integer(i) { return [v] }
        guard lua.type(i) == LUA_TTABLE else { throw LuaError.message("\(a.function): layers must be an integer, a list of integers or \"all\", got \(lua.typeName(i))") }
        var out: [Int] = []
        for k in 1...max(lua.rawLength(i), 1) where k <= lua.rawLength(i) {
            lua.rawGet(i, k)
            defer { lua.pop() }
            guard let v = lua.integer(-1) else { throw LuaError.message("\(a.function): layers: item \(k) is not an integer") }
            out.append(v)
        }
        guard !out.isEmpty else { throw LuaError.message("\(a.function): layers is an empty list") }
        return out
    }

    // MARK: - The intervene option

    /// The interventions of the `intervene` value at `i`: a vector (added with scale 1 at its layers), one
    /// intervention table, or a list of them. Checked against `m` (layers, sizes, heads) with messages that name
    /// the item.
    func interventions(_ a: Arguments, _ i: Int32, model m: LanguageModel) throws -> [Intervention] {
        let lua = a.lua
        let i = lua.absolute(i)
        func fail(_ msg: String) -> LuaError { .message("\(a.function): intervene: \(msg)") }
        if let v = object(i, kind: "lm.vector", as: VectorBox.self) {
            return try checked(v.vector.interventions(scale: 1), m, fail)
        }
        guard lua.type(i) == LUA_TTABLE else { throw fail("must be a vector, an intervention table or a list of them, got \(lua.typeName(i))") }
        // One table (it has named fields) or a list of them.
        lua.rawGet(i, 1)
        let isList = !lua.isNoneOrNil(-1)
        lua.pop()
        var out: [Intervention] = []
        if isList {
            for k in 1...lua.rawLength(i) {
                lua.rawGet(i, k)
                defer { lua.pop() }
                if let v = object(-1, kind: "lm.vector", as: VectorBox.self) { out += v.vector.interventions(scale: 1); continue }
                guard lua.type(-1) == LUA_TTABLE else { throw fail("item \(k) is a \(lua.typeName(-1)), not an intervention table") }
                do { out += try intervention(a, lua.absolute(-1), model: m) } catch let LuaError.message(msg) {
                    throw fail("item \(k): \(msg)")
                }
            }
        } else {
            do { out = try intervention(a, i, model: m) } catch let LuaError.message(msg) { throw fail(msg) }
        }
        return try checked(out, m, fail)
    }

    private func checked(_ x: [Intervention], _ m: LanguageModel, _ fail: (String) -> LuaError) throws -> [Intervention] {
        do { _ = try m.checked(x) } catch { throw fail("\(error)") }
        return x
    }

    /// One intervention table at `t` → its interventions (one per layer).
    func intervention(_ a: Arguments, _ t: Int32, model m: LanguageModel) throws -> [Intervention] {
        let lua = a.lua, c = m.config
        lua.pushNil()
        while lua_next(L, t) != 0 {
            defer { lua.pop() }
            guard let k = lua.string(-2), LuaHost.interventionKeys.contains(k) else {
                let name = lua.string(-2) ?? lua.describe(-2)
                var msg = "unknown key '\(name)'"
                if let s = GenerationSchema.suggestion(for: name, among: LuaHost.interventionKeys) { msg += " (did you mean '\(s)'?)" }
                throw LuaError.message(msg)
            }
        }
        let kinds = ["add", "ablate", "clamp", "heads", "attention", "patch"].filter { key in
            defer { lua.pop() }
            return lua.rawGet(t, key) != LUA_TNIL
        }
        guard kinds.count == 1 else {
            throw LuaError.message(kinds.isEmpty ? "an intervention needs one of add, ablate, clamp, heads, attention, patch"
                                                 : "an intervention does one thing, got \(kinds.joined(separator: " and "))")
        }
        func number(_ key: String, default d: Float? = nil) throws -> Float? {
            lua.rawGet(t, key); defer { lua.pop() }
            if lua.isNoneOrNil(-1) { return d }
            guard let x = lua.number(-1), x.isFinite else { throw LuaError.message("'\(key)' must be a finite number, got \(lua.describe(-1))") }
            return Float(x)
        }
        func layers(_ fallback: [Int]?) throws -> [Int] {
            for key in ["layers", "layer"] {
                lua.rawGet(t, key); defer { lua.pop() }
                if lua.isNoneOrNil(-1) { continue }
                let ls = try layerList(a, lua.absolute(-1), count: c.layerCount)
                for l in ls where l < 0 || l >= c.layerCount {
                    throw LuaError.message("layer \(l) is out of range (the model has layers 0 to \(c.layerCount - 1))")
                }
                return ls
            }
            guard let fallback else { throw LuaError.message("'\(kinds[0])' needs layers (a layer number, a list, or \"all\")") }
            return fallback
        }
        let positions: Intervention.Positions
        lua.rawGet(t, "positions")
        if lua.isNoneOrNil(-1) { positions = .all }
        else if let s = lua.string(-1), lua.type(-1) == LUA_TSTRING {
            switch s {
            case "all": positions = .all
            case "prompt": positions = .prompt
            case "generated": positions = .generated
            default: lua.pop(); throw LuaError.message("positions must be \"all\", \"prompt\", \"generated\" or a list of positions, got \"\(s)\"")
            }
        } else if lua.type(-1) == LUA_TTABLE {
            var ps: [Int] = []
            for k in 1...max(lua.rawLength(-1), 1) where k <= lua.rawLength(-1) {
                lua.rawGet(-1, k)
                guard let p = lua.integer(-1), p >= 1 else { lua.pop(2); throw LuaError.message("positions: item \(k) is not a position ≥ 1") }
                lua.pop()
                ps.append(p - 1)
            }
            positions = .list(ps)
        } else {
            lua.pop(); throw LuaError.message("positions must be \"all\", \"prompt\", \"generated\" or a list, got \(lua.typeName(-1))")
        }
        lua.pop()
        // A direction: a vector (per layer) or one list of numbers / matrix (the same at every layer asked).
        func directions(_ key: String) throws -> (perLayer: [Int: [Float]]?, one: [Float]?) {
            lua.rawGet(t, key); defer { lua.pop() }
            if let v = object(-1, kind: "lm.vector", as: VectorBox.self) { return (v.vector.directions, nil) }
            return (nil, try numbers(a, lua.absolute(-1), what: "'\(key)'"))
        }
        switch kinds[0] {
        case "add", "ablate", "clamp":
            let key = kinds[0]
            let (per, one) = try directions(key)
            let ls = try layers(per.map { $0.keys.sorted() })
            let scale = try number("scale", default: 1)!
            let value = try number("value")
            if key == "clamp" && value == nil { throw LuaError.message("'clamp' needs a value (the component to set along the direction)") }
            return try ls.map { l in
                guard let d = per?[l] ?? one else { throw LuaError.message("the vector has no direction at layer \(l)") }
                switch key {
                case "add": return Intervention(layer: l, .add(d, scale: scale), positions: positions)
                case "ablate": return Intervention(layer: l, .ablate(d), positions: positions)
                default: return Intervention(layer: l, .clamp(d, value: value!), positions: positions)
                }
            }
        case "attention":
            let f = try number("attention")!
            return try layers(nil).map { Intervention(layer: $0, .attentionScale(f), positions: positions) }
        case "heads":
            lua.rawGet(t, "heads")
            let heads: [Int]
            if lua.string(-1) == "all" { heads = Array(0..<c.headCount) } else {
                do { heads = try layerList(a, lua.absolute(-1), count: c.headCount) } catch { lua.pop(); throw LuaError.message("heads must be a head number, a list of them or \"all\"") }
            }
            lua.pop()
            let hasScale = try number("scale") != nil
            lua.rawGet(t, "mode")
            let mode = lua.string(-1) ?? (hasScale ? "scale" : "zero")
            lua.pop()
            let ls = try layers(nil)
            switch mode {
            case "zero": return ls.map { Intervention(layer: $0, .heads(heads, .zero), positions: positions) }
            case "scale":
                guard let f = try number("scale") else { throw LuaError.message("mode \"scale\" needs scale") }
                return ls.map { Intervention(layer: $0, .heads(heads, .scale(f)), positions: positions) }
            case "mean":
                lua.rawGet(t, "over")
                defer { lua.pop() }
                guard lua.type(-1) == LUA_TTABLE, lua.rawLength(-1) > 0 else {
                    throw LuaError.message("mode \"mean\" needs over = {texts...} (the texts whose mean head outputs replace the heads')")
                }
                var texts: [[Int32]] = []
                for k in 1...lua.rawLength(-1) {
                    lua.rawGet(-1, k)
                    defer { lua.pop() }
                    texts.append(try promptIDs(a, m, lua.absolute(-1)))
                }
                return try ls.map { l in
                    Intervention(layer: l, .heads(heads, .mean(try meanHeadOutputs(m, texts, layer: l, heads: heads))), positions: positions)
                }
            default:
                throw LuaError.message("mode must be \"zero\", \"scale\" or \"mean\", got \(lua.describe(-1))")
            }
        default:   // patch
            lua.rawGet(t, "patch")
            defer { lua.pop() }
            guard let h = object(-1, kind: "lm.matrix", as: Matrix.self), h.shape.count == 3, h.shape[2] == c.embeddingLength else {
                throw LuaError.message("'patch' takes what m:hidden returns (a layers × positions × \(c.embeddingLength) matrix)")
            }
            // Its layers field says which model layer each of its rows is.
            var hl: [Int] = []
            if lua_getiuservalue(L, -1, 1) == LUA_TTABLE, lua.rawGet(-1, "layers") == LUA_TTABLE {
                for k in 1...max(lua.rawLength(-1), 1) where k <= lua.rawLength(-1) { lua.rawGet(-1, k); hl.append(lua.integer(-1) ?? -1); lua.pop() }
                lua.pop()
            } else { lua.pop() }
            lua.pop()
            guard hl.count == h.shape[0] else { throw LuaError.message("'patch': the matrix has no layers field (use m:hidden's result)") }
            let ls = try layers(hl)
            let T = h.shape[1], d = c.embeddingLength
            let ps: [Int]
            switch positions {
            case .list(let l): ps = l
            case .all: ps = Array(0..<T)
            default: throw LuaError.message("'patch' takes positions as a list (or none: every position of the matrix)")
            }
            return try ls.map { l in
                guard let row = hl.firstIndex(of: l) else { throw LuaError.message("'patch': the matrix holds no layer \(l)") }
                var rows: [Int: [Float]] = [:]
                let x = h.select(0, row)
                for p in ps {
                    guard p < T else { throw LuaError.message("'patch': position \(p + 1) is past the matrix's \(T) positions") }
                    rows[p] = x.select(0, p).contiguous()
                    precondition(rows[p]!.count == d)
                }
                return Intervention(layer: l, .patch(rows))
            }
        }
    }

    /// The mean attention output of `heads` at `layer` over every position of `texts` (mean ablation's values).
    func meanHeadOutputs(_ m: LanguageModel, _ texts: [[Int32]], layer: Int, heads: [Int]) throws -> [[Float]] {
        let c = m.config, vdh = c.valueDim, od = c.headCount * vdh
        var sums = [[Double]](repeating: [Double](repeating: 0, count: vdh), count: heads.count)
        var n = 0
        for ids in texts {
            var r = InspectionRequest()
            r.headOutputLayers = [layer]
            let out = try m.inspect(ids, r).attentionOutputs[layer]!
            for t in 0..<ids.count {
                for (k, h) in heads.enumerated() { for j in 0..<vdh { sums[k][j] += Double(out[t * od + h * vdh + j]) } }
            }
            n += ids.count
        }
        return sums.map { $0.map { Float($0 / Double(n)) } }
    }

    /// The `intervene` option of a call's options table at `t` (nil table: none).
    func intervene(_ a: Arguments, _ t: Int32?, model m: LanguageModel) throws -> [Intervention] {
        guard let t else { return [] }
        lua.rawGet(t, "intervene")
        defer { lua.pop() }
        if lua.isNoneOrNil(-1) { return [] }
        return try interventions(a, -1, model: m)
    }

    /// What the run store records of interventions: per intervention its layer, kind, scale or value, positions,
    /// and each vector's SHA-256 (its values are not stored).
    static func recordFields(_ x: [Intervention]) -> [[String: Any]] {
        func hash(_ v: [Float]) -> String {
            var bytes = [UInt8](); bytes.reserveCapacity(v.count * 4)
            for f in v { withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes += $0 } }
            return "sha256:" + SHA256.hex(Data(bytes))
        }
        return x.map { it in
            var f: [String: Any] = ["layer": it.layer]
            switch it.positions {
            case .all: break
            case .prompt: f["positions"] = "prompt"
            case .generated: f["positions"] = "generated"
            case .list(let ps): f["positions"] = ps.map { $0 + 1 }
            }
            switch it.action {
            case .add(let v, let s): f["add"] = hash(v); f["scale"] = shortest(s)
            case .ablate(let v): f["ablate"] = hash(v)
            case .clamp(let v, let value): f["clamp"] = hash(v); f["value"] = shortest(value)
            case .heads(let hs, let mode):
                f["heads"] = hs
                switch mode {
                case .zero: f["mode"] = "zero"
                case .scale(let s): f["mode"] = "scale"; f["scale"] = shortest(s)
                case .mean(let rows): f["mode"] = "mean"; f["mean"] = hash(rows.flatMap { $0 })
                }
            case .attentionScale(let s): f["attention"] = shortest(s)
            case .patch(let rows): f["patch"] = rows.keys.sorted().map { $0 + 1 }; f["rows"] = hash(rows.keys.sorted().flatMap { rows[$0]! })
            case .patchHeads(let hs, let rows): f["patch_heads"] = hs; f["rows"] = hash(rows.keys.sorted().flatMap { rows[$0]! })
            }
            return f
        }
    }

    // MARK: - m:steer and m:patching

    static let steerOptions: [String: OptionKind] = ["method": .strings, "layers": .strings, "position": .strings,
                                                     "normalize": .boolean, "intervene": .strings]

    /// `m:steer(positive, negative [, opts])`: a vector from two lists of prompts, per layer the mean of the
    /// positive prompts' residual rows minus the negative's (contrastive activation addition), or with
    /// `method = "pca"` the first principal direction of the paired differences (representation engineering),
    /// oriented and sized as the mean difference's projection on it. `position = "last"` (default) takes each
    /// prompt's last token, `"mean"` the mean over its tokens. `layers` default 1 to n − 1 (what a control-vector
    /// file holds); `normalize = true` scales each direction to norm 1, as llama-cvector-generator does.
    func steer(_ args: Arguments, _ m: LanguageModel, _ first: Int32) throws -> Int32 {
        try admitModelCall("steer")
        let lua = args.lua, c = m.config
        func prompts(_ i: Int32, _ what: String) throws -> [[Int32]] {
            guard lua.type(i) == LUA_TTABLE, lua.rawLength(i) > 0 else { throw LuaError.argument(i, "a non-empty list of \(what) prompts expected") }
            var out: [[Int32]] = []
            for k in 1...lua.rawLength(i) {
                lua.rawGet(i, k)
                defer { lua.pop() }
                let ids = try promptIDs(args, m, lua.absolute(-1))
                guard !ids.isEmpty else { throw LuaError.argument(i, "\(what) prompt \(k) has no tokens") }
                out.append(ids)
            }
            return out
        }
        let pos = try prompts(first, "positive"), neg = try prompts(first + 1, "negative")
        let o = try options(args, first + 2, known: LuaHost.steerOptions)
        var method = "mean", position = "last", normalize = false
        var layers = Array(1..<c.layerCount)
        var x: [Intervention] = []
        if let o {
            lua.rawGet(o, "method"); if let s = lua.string(-1) { method = s }; lua.pop()
            lua.rawGet(o, "position"); if let s = lua.string(-1) { position = s }; lua.pop()
            normalize = try flag(args, o, "normalize") ?? false
            lua.rawGet(o, "layers")
            if !lua.isNoneOrNil(-1) { layers = try layerList(args, lua.absolute(-1), count: c.layerCount) }
            lua.pop()
            x = try intervene(args, o, model: m)
        }
        guard ["mean", "pca"].contains(method) else { throw LuaError.message("steer: method must be \"mean\" or \"pca\", got \"\(method)\"") }
        guard ["last", "mean"].contains(position) else { throw LuaError.message("steer: position must be \"last\" or \"mean\", got \"\(position)\"") }
        for l in layers where l < 0 || l >= c.layerCount {
            throw LuaError.message("steer: layer \(l) is out of range (the model has layers 0 to \(c.layerCount - 1))")
        }
        if method == "pca" && pos.count != neg.count {
            throw LuaError.message("steer: method \"pca\" pairs the prompts: \(pos.count) positive and \(neg.count) negative")
        }
        let d = c.embeddingLength
        /// Per layer, one row per prompt.
        func rows(_ set: [[Int32]]) throws -> [Int: [[Float]]] {
            var out: [Int: [[Float]]] = [:]
            for ids in set {
                var r = InspectionRequest(hiddenLayers: layers)
                r.interventions = x
                let h = try m.inspect(ids, r).hidden
                for l in layers {
                    let all = h[l]!, T = ids.count
                    if position == "last" { out[l, default: []].append(Array(all[((T - 1) * d)..<(T * d)])); continue }
                    var mean = [Float](repeating: 0, count: d)
                    for t in 0..<T { for j in 0..<d { mean[j] += all[t * d + j] } }
                    out[l, default: []].append(mean.map { $0 / Float(T) })
                }
            }
            return out
        }
        let rp = try rows(pos), rn = try rows(neg)
        var dirs: [Int: [Float]] = [:]
        for l in layers {
            let mp = LuaHost.mean(rp[l]!), mn = LuaHost.mean(rn[l]!)
            var v = zip(mp, mn).map { $0 - $1 }
            if method == "pca" {
                let diffs = zip(rp[l]!, rn[l]!).map { p, n in zip(p, n).map { $0 - $1 } }
                let u = LuaHost.firstPrincipalDirection(diffs)
                var proj: Float = 0
                for j in 0..<d { proj += u[j] * v[j] }
                let sign: Float = proj < 0 ? -1 : 1
                v = u.map { $0 * abs(proj) * sign }
            }
            if normalize {
                let n = Float(v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
                if n > 0 { v = v.map { $0 / n } }
            }
            dirs[l] = v
        }
        pushVector(ControlVector(dimension: d, directions: dirs, modelHint: m.file.string("general.architecture") ?? ""))
        return 1
    }

    static func mean(_ rows: [[Float]]) -> [Float] {
        var m = [Double](repeating: 0, count: rows[0].count)
        for r in rows { for j in 0..<r.count { m[j] += Double(r[j]) } }
        return m.map { Float($0 / Double(rows.count)) }
    }

    /// The unit vector u maximising Σ (rowᵢ · u)² (the first right singular vector, uncentred, as representation
    /// engineering takes it from paired differences), by power iteration on the rows' Gram matrix.
    static func firstPrincipalDirection(_ rows: [[Float]]) -> [Float] {
        let n = rows.count, d = rows[0].count
        // G = R Rᵀ (n × n); its top eigenvector a gives u ∝ Rᵀ a.
        var g = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { var s = 0.0; for k in 0..<d { s += Double(rows[i][k]) * Double(rows[j][k]) }; g[i * n + j] = s } }
        var a = [Double](repeating: 1 / Double(n).squareRoot(), count: n)
        for _ in 0..<500 {
            var b = [Double](repeating: 0, count: n)
            for i in 0..<n { for j in 0..<n { b[i] += g[i * n + j] * a[j] } }
            let norm = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { break }
            b = b.map { $0 / norm }
            let change = zip(a, b).reduce(0) { $0 + abs($1.0 - $1.1) }
            a = b
            if change < 1e-12 { break }
        }
        var u = [Double](repeating: 0, count: d)
        for i in 0..<n { for k in 0..<d { u[k] += a[i] * Double(rows[i][k]) } }
        let norm = u.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return u.map { Float(norm > 0 ? $0 / norm : 0) }
    }

    static let patchingOptions: [String: OptionKind] = ["target": .strings, "foil": .strings, "layers": .strings,
                                                        "intervene": .strings]

    /// `m:patching(clean, corrupted, {target=, foil=, layers=})`: the activation-patching sweep
    /// (LanguageModel.patchingSweep). Returns {values = layers × positions matrix of the metric, restored = the
    /// same as the share of the clean − corrupted gap restored, clean =, corrupted =, layers =, tokens =}.
    func patching(_ args: Arguments, _ m: LanguageModel, _ first: Int32) throws -> Int32 {
        try admitModelCall("patching")
        let lua = args.lua
        let clean = try promptIDs(args, m, first), corrupted = try promptIDs(args, m, first + 1)
        guard let o = try options(args, first + 2, known: LuaHost.patchingOptions) else {
            throw LuaError.argument(first + 2, "options with target (the token whose log-probability is measured) expected")
        }
        func token(_ key: String) throws -> Int32? {
            lua.rawGet(o, key); defer { lua.pop() }
            if lua.isNoneOrNil(-1) { return nil }
            if let id = lua.integer(-1) {
                guard id >= 0, id < m.config.vocabularySize else { throw LuaError.argument(o, "\(key) token id \(id) is outside the vocabulary") }
                return Int32(id)
            }
            guard let s = lua.string(-1) else { throw LuaError.argument(o, "\(key) must be a token id or text") }
            let ids = m.tokenize(s, special: false, addSpecial: false)
            guard ids.count == 1 else { throw LuaError.argument(o, "\(key) '\(s)' is \(ids.count) tokens; give one token (text or id)") }
            return ids[0]
        }
        guard let target = try token("target") else { throw LuaError.argument(o, "target (a token) is required") }
        let foil = try token("foil")
        lua.rawGet(o, "layers")
        let layers = lua.isNoneOrNil(-1) ? nil : try layerList(args, lua.absolute(-1), count: m.config.layerCount)
        lua.pop()
        let x = try intervene(args, o, model: m)
        let s: PatchingSweep
        do { s = try m.patchingSweep(clean: clean, corrupted: corrupted, target: target, foil: foil, layers: layers, interventions: x) } catch {
            throw LuaError.message("patching: \(error)")
        }
        lua.newTable {
            lua.field("values") { pushMatrix(Matrix(s.values, shape: [s.layers.count, s.positions.count])) }
            lua.field("restored") { pushMatrix(Matrix(s.restored, shape: [s.layers.count, s.positions.count])) }
            lua.field("clean", Double(s.clean))
            lua.field("corrupted", Double(s.corrupted))
            lua.field("layers") { lua.push(ids: s.layers.map { Int32($0) }) }
            lua.field("tokens") { lua.push(strings: corrupted.map { piece(m, $0) }) }
            lua.field("clean_tokens") { lua.push(strings: clean.map { piece(m, $0) }) }
        }
        return 1
    }
}

extension ControlVector {
    /// Every direction times `s`.
    func scaled(_ s: Float) -> ControlVector {
        var v = self
        v.directions = directions.mapValues { $0.map { $0 * s } }
        return v
    }

    /// Random directions with this vector's layers and per-layer norms (Gaussian, from `seed`): the control for a
    /// steering vector.
    func randomDirections(seed: UInt64) -> ControlVector {
        var rng = Xoshiro256StarStar(seed: seed)
        // Box–Muller normals from the engine's seeded generator.
        func gaussian() -> Double {
            let u1 = max(rng.nextUnit(), 1e-300), u2 = rng.nextUnit()
            return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
        var v = self
        for l in directions.keys.sorted() {
            let d = directions[l]!
            let norm = d.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            var r = (0..<d.count).map { _ in gaussian() }
            let rn = r.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
            r = r.map { $0 * norm / rn }
            v.directions[l] = r.map { Float($0) }
        }
        return v
    }
}
