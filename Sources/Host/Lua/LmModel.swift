// The `lm` module's model half: model userdata, its methods (tokenize, detokenize, token, template, generate,
// sample, score, choose, state), and `lm.*` functions that call the same methods on `lm.model`.
import CLua
import Engine
import Foundation

/// A Swift object a userdata keeps alive (its block holds one retained pointer, released by `__gc`).
final class ModelBox {
    let model: LanguageModel
    init(_ model: LanguageModel) { self.model = model }
}

extension LuaHost {
    /// A model operation: the arguments, the model, and the stack index of the first argument after the model.
    typealias ModelOperation = (Arguments, LanguageModel, Int32) throws -> Int32

    /// The model methods, in the order `help()` lists them.
    var modelOperations: [(String, ModelOperation)] {
        [("tokenize", tokenize), ("detokenize", detokenize), ("token", token), ("template", template),
         ("generate", generate), ("sample", sample), ("generate_batch", generateBatch), ("score", score), ("choose", choose), ("state", state),
         ("attention", attention), ("hidden", hidden), ("logit_lens", logitLens), ("steer", steer), ("patching", patching)]
    }

    /// Registers each model operation twice: as a method (`m:generate`) and on `lm` for `lm.model`
    /// (`lm.generate`), in the tables at the absolute indices `lm` and `methods`.
    func installModelOperations(lm: Int32, methods: Int32) {
        for (name, op) in modelOperations {
            pushFunction(name) { [unowned self] lua in
                let a = Arguments(lua: lua, function: name)
                return try op(a, try self.model(a, 1), 2)
            }
            lua_setfield(L, methods, name)
            pushFunction(name) { [unowned self] lua in
                let a = Arguments(lua: lua, function: name)
                return try op(a, try self.defaultModel(name), 1)
            }
            lua_setfield(L, lm, name)
        }
    }

    // MARK: - Model userdata

    /// Pushes a userdata holding `object` retained, with the metatable at `metatable` (an absolute index).
    func pushUserdata(_ object: AnyObject, metatable: Int32) {
        let p = refrain_lua_newuserdatauv(L, MemoryLayout<UnsafeMutableRawPointer?>.size, 0)!
        p.assumingMemoryBound(to: UnsafeMutableRawPointer?.self).pointee = Unmanaged.passRetained(object).toOpaque()
        lua.pushValue(metatable)
        lua_setmetatable(L, -2)
    }

    /// Pushes a userdata holding `object` retained, with the registry's metatable `name` ("lm.state", "lm.vector").
    func pushUserdata(_ object: AnyObject, metatableNamed name: String) {
        refrain_luaL_getmetatable(L, name)
        pushUserdata(object, metatable: lua.absolute(-1))
        lua_rotate(L, -2, 1)
        lua.pop()
    }

    /// `__gc` of models and states: releases the Swift object.
    static let releaseUserdata: lua_CFunction = { L in
        if let p = lua_touserdata(L, 1)?.assumingMemoryBound(to: UnsafeMutableRawPointer?.self), let o = p.pointee {
            Unmanaged<AnyObject>.fromOpaque(o).release()
            p.pointee = nil
        }
        return 0
    }

    /// The Swift object of the userdata at `i` when its metatable is named `kind` ("lm.model", "lm.state").
    func object<T: AnyObject>(_ i: Int32, kind: String, as: T.Type) -> T? {
        guard lua.type(i) == LUA_TUSERDATA, lua_getmetatable(L, i) != 0 else { return nil }
        let name = lua.rawGet(-1, "__name") == LUA_TSTRING ? lua.string(-1) : nil
        lua.pop(2)
        guard name == kind, let p = lua_touserdata(L, i)?.assumingMemoryBound(to: UnsafeMutableRawPointer?.self).pointee
        else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(p).takeUnretainedValue() as? T
    }

    /// The model at argument `i`.
    func model(_ a: Arguments, _ i: Int32) throws -> LanguageModel {
        guard let b = object(i, kind: "lm.model", as: ModelBox.self) else { throw a.typeError(i, "model") }
        return b.model
    }

    /// `lm.model`, for the `lm.*` forms of the methods.
    func defaultModel(_ function: String) throws -> LanguageModel {
        lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
        lua.rawGet(-1, "model")
        defer { lua.pop(2) }
        guard let b = object(-1, kind: "lm.model", as: ModelBox.self) else {
            throw LuaError.message("lm.\(function): no model loaded (lm.model is nil: use lm.load(path), or :model PATH in the REPL)")
        }
        return b.model
    }

    /// Pushes a model userdata. Each model has its own metatable whose `__index` holds `info` and falls back to
    /// the shared methods, so that completion can follow it.
    func pushModel(_ model: LanguageModel) {
        let base = lua.top
        defer { lua_settop(L, base + 1) }
        lua.newTable()                                    // metatable
        lua.field("__name", "lm.model")
        lua.field("__gc") { lua_pushcclosure(L, LuaHost.releaseUserdata, 0) }
        lua.field("__tostring") {
            let name = URL(fileURLWithPath: model.file.path).lastPathComponent
            let c = model.config
            let text = "model: \(name) (\(c.architecture.rawValue), \(c.layerCount) layers, \(c.vocabularySize) tokens)"
            pushFunction("tostring") { lua in lua.push(text); return 1 }
        }
        lua.field("__index") {
            lua.newTable()
            lua.field("info") { pushInfo(model) }
            lua.newTable()
            lua.field("__index") { lua_rawgeti(L, luaRegistry, lua_Integer(modelMethodsRef)) }
            lua_setmetatable(L, -2)
        }
        pushUserdata(ModelBox(model), metatable: base + 1)
        refrain_lua_replace(L, base + 1)
    }

    /// `m.info`: the model's shape and file; `sha256` is computed on first use.
    func pushInfo(_ m: LanguageModel) {
        lua.newTable()
        for (key, value) in ModelInfo.fields(m) {
            switch value {
            case .int(let i): lua.field(key, i)
            case .string(let t): lua.field(key, t)
            case .counts(let counts): lua.field(key) { lua.newTable { for (k, v) in counts { lua.field(k, v) } } }
            }
        }
        lua.newTable()
        lua.field("__index") {
            pushFunction("info") { [unowned self] lua in
                guard lua.string(2) == "sha256" else { return 0 }
                lua.rawGet(1, "path")
                var path = lua.string(-1) ?? ""
                // The table is the script's: under the sandbox its path is read only where reading is granted.
                switch self.readablePath(path) {
                case .success(let p): path = p
                case .failure(let e): throw LuaError.message("info.sha256: sandbox: " + e.description)
                }
                guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
                    throw LuaError.message("info.sha256: cannot read \(path)")
                }
                lua.push(SHA256.hex(data))
                lua.pushValue(-1)
                lua_setfield(lua.L, 1, "sha256")
                return 1
            }
        }
        lua_setmetatable(L, -2)
    }

    // MARK: - Arguments shared by the methods

    /// The token ids of a prompt argument: a string (control tokens written in it are parsed, BOS as the file
    /// says), a list of ids, or a list of `{role=, content=}` messages rendered by the chat template.
    func promptIDs(_ a: Arguments, _ m: LanguageModel, _ i: Int32) throws -> [Int32] {
        if let s = a.lua.string(i) { return m.tokenize(s, special: true) }
        guard a.lua.type(i) == LUA_TTABLE else { throw a.typeError(i, "string or table") }
        let first = a.lua.rawGet(i, 1)
        a.lua.pop()
        if first == LUA_TTABLE { return m.tokenize(try m.renderChat(try messages(a, i)), special: true) }
        return try a.ids(i, vocabulary: m.config.vocabularySize)
    }

    /// A list of `{role=, content=}` messages.
    func messages(_ a: Arguments, _ i: Int32) throws -> [ChatMessage] {
        try a.table(i)
        let lua = a.lua
        var out: [ChatMessage] = []
        for k in 1...max(lua.rawLength(i), 1) where k <= lua.rawLength(i) {
            lua.rawGet(i, k)
            defer { lua.pop() }
            guard lua.type(-1) == LUA_TTABLE else { throw LuaError.argument(i, "message \(k) is a \(lua.typeName(-1)), not a table") }
            var fields: [String] = []
            for key in ["role", "content"] {
                lua.rawGet(-1, key)
                defer { lua.pop() }
                guard let s = lua.string(-1) else { throw LuaError.argument(i, "message \(k) has no '\(key)' string") }
                fields.append(s)
            }
            out.append(ChatMessage(role: fields[0], content: fields[1]))
        }
        guard !out.isEmpty else { throw LuaError.argument(i, "no messages") }
        return out
    }

    /// Reads the small options tables (tokenize, detokenize, choose, load): checks the names, returns the table's
    /// index or nil when there is none.
    func options(_ a: Arguments, _ i: Int32, known: [String: OptionKind]) throws -> Int32? {
        guard try a.table(i, optional: true) else { return nil }
        try LmOptions.checkNames(a.lua, i, known: known, function: a.function)
        return i
    }

    func flag(_ a: Arguments, _ t: Int32?, _ name: String) throws -> Bool? {
        guard let t else { return nil }
        a.lua.rawGet(t, name)
        defer { a.lua.pop() }
        if a.lua.isNoneOrNil(-1) { return nil }
        guard let b = a.lua.boolean(-1) else { throw LuaError.argument(t, "option '\(name)' must be a boolean, got \(a.lua.typeName(-1))") }
        return b
    }

    // MARK: - Methods

    func tokenize(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        let text = try args.string(first)
        let o = try options(args, first + 1, known: ["special": .boolean, "bos": .boolean])
        args.lua.push(ids: model.tokenize(text, special: try flag(args, o, "special") ?? false, addSpecial: try flag(args, o, "bos")))
        return 1
    }

    func detokenize(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        let ids = try args.ids(first, vocabulary: model.config.vocabularySize)
        let o = try options(args, first + 1, known: ["special": .boolean])
        args.lua.push(model.detokenize(ids, special: try flag(args, o, "special") ?? false))
        return 1
    }

    func token(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        let id = try args.integer(first)
        guard id >= 0, id < model.config.vocabularySize else {
            throw LuaError.argument(first, "token id \(id) is outside the vocabulary (0..\(model.config.vocabularySize - 1))")
        }
        args.lua.push(piece(model, Int32(id)))
        return 1
    }

    func piece(_ m: LanguageModel, _ id: Int32) -> String {
        String(decoding: m.tokenizer.piece(id, special: true), as: UTF8.self)
    }

    func template(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        args.lua.push(try model.renderChat(try messages(args, first)))
        return 1
    }

    func generate(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        try admitModelCall("generate")
        let prompt = try promptIDs(args, model, first)
        let o = try generationOptions(args, opts: first + 1, model: model)
        defer { release(o) }
        guard !prompt.isEmpty else { throw LuaError.message("generate: empty prompt (generation needs at least one token)") }
        let g = try recorder.recorded("generate", model, prompt: prompt, options: o.engine.recordFields, {
            try runGeneration(args, o, stream: o.stream ?? (streamSink != nil), sample: nil, model: model) {
                try model.generate(prompt, options: o.engine, onToken: $0)
            }
        }, outputs: { ([callOutput($0, model)], nil) })
        pushGeneration(g, model)
        return 1
    }

    func sample(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        try admitModelCall("sample")
        let prompt = try promptIDs(args, model, first)
        let n = try args.integer(first + 1, min: 1)
        let o = try generationOptions(args, opts: first + 2, model: model)
        defer { release(o) }
        guard !prompt.isEmpty else { throw LuaError.message("sample: empty prompt (generation needs at least one token)") }
        var fields = o.engine.recordFields
        fields["n"] = n
        fields["stream"] = o.stream ?? false
        let results = try recorder.recorded("sample", model, prompt: prompt, options: fields, {
            try sampleGenerations(args, model, prompt, n, o)
        }, outputs: { gs in (gs.map { callOutput($0, model) }, nil) })
        args.lua.newTable(array: results.count) {
            for (i, g) in results.enumerated() { args.lua.element(i + 1) { pushGeneration(g, model) } }
        }
        return 1
    }

    /// `n` samples of `prompt`: one after another when streamed (seeds seed, seed+1, ...), else decoded together.
    func sampleGenerations(_ a: Arguments, _ m: LanguageModel, _ prompt: [Int32], _ n: Int,
                           _ options: LuaGenerationOptions) throws -> [Generation] {
        var o = options
        var results: [Generation] = []
        if o.stream ?? false {
            // Streamed samples come one after another, so that their texts do not interleave.
            let (st, cached) = try m.cachedState(for: prompt, interventions: try m.checked(o.engine.interventions))
            _ = try st.logits()                 // the prompt is evaluated once; each sample forks it
            let seed = o.engine.sampling.seed
            for i in 0..<n {
                o.engine.sampling.seed = seed &+ UInt64(i)
                let fork = st.fork()
                var g = try runGeneration(a, o, stream: true, sample: i + 1, model: m) { try fork.generate(o.engine, onToken: $0) }
                g.cachedTokens = cached
                results.append(g)
                if g.finish == .cancelled && lastInterrupted { break }
            }
            m.rememberState(st)
        } else {
            // Decoded together: one batched step per token for all unfinished samples.
            var callbackError: String?
            var counts: [Int] = []     // grown as sequences report (n may be refused by the engine)
            lastInterrupted = false
            let lua = a.lua
            results = try m.sample(prompt: prompt, n: n, options: o.engine) { [unowned self] i, tok in
                if i >= counts.count { counts += repeatElement(0, count: i - counts.count + 1) }
                counts[i] += 1
                self.generatedTokens += 1
                if o.onToken != LUA_NOREF && !self.callOnToken(lua, o.onToken, tok, counts[i], i + 1, m, &callbackError) {
                    return callbackError != nil ? .stopAll : .stop
                }
                if self.takeInterrupt() || self.timeIsUp || self.tokenLimitReached { self.lastInterrupted = true; return .stopAll }
                return .proceed
            }
            if let err = callbackError { throw LuaError.raw(err) }
        }
        return results
    }

    /// `m:generate_batch(requests)`: each request `{prompt=, opts=, n=, labels=}` is what `m:generate(prompt,
    /// opts)` (no `n`) or `m:sample(prompt, n, opts)` would compute, and all are decoded together. Each is
    /// recorded in the run store as its own generate or sample call, under its `labels` when given.
    func generateBatch(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        try args.table(first)
        let lua = args.lua
        let count = Int(lua.rawLength(first))
        var requests: [LanguageModel.BatchRequest] = []
        var luaOptions: [LuaGenerationOptions] = []
        var requestLabels: [CallLabels?] = []
        defer { for o in luaOptions { release(o) } }
        let known: Set<String> = ["prompt", "opts", "n", "labels"]
        for k in 0..<count {
            lua.rawGet(first, k + 1)
            let t = lua.top
            defer { lua_settop(L, t - 1) }
            func fail(_ message: String) -> LuaError { .message("generate_batch: request \(k + 1): \(message)") }
            guard lua.type(t) == LUA_TTABLE else { throw fail("a \(lua.typeName(t)), not a table {prompt=, opts=, n=, labels=}") }
            lua.pushNil()
            while lua_next(L, t) != 0 {
                defer { lua.pop() }
                let key = lua.type(-2) == LUA_TSTRING ? lua.string(-2) : nil
                guard let key, known.contains(key) else {
                    throw fail("unknown field \(key.map { "'\($0)'" } ?? lua.describe(-2)) (known: labels, n, opts, prompt)")
                }
            }
            do {
                lua.rawGet(t, "prompt")
                if lua.isNoneOrNil(-1) { throw fail("no prompt") }
                let prompt = try promptIDs(args, model, lua.absolute(-1))
                guard !prompt.isEmpty else { throw fail("empty prompt (generation needs at least one token)") }
                lua.pop()
                lua.rawGet(t, "n")
                var n: Int? = nil
                if !lua.isNoneOrNil(-1) {
                    guard lua_isinteger(L, -1) != 0, lua_tointegerx(L, -1, nil) >= 1 else {
                        throw fail("n must be an integer ≥ 1, got \(lua.describe(-1))")
                    }
                    n = Int(lua_tointegerx(L, -1, nil))
                }
                lua.pop()
                lua.rawGet(t, "opts")
                let o = try generationOptions(args, opts: lua.isNoneOrNil(-1) ? 0 : lua.absolute(-1), model: model)
                luaOptions.append(o)
                if o.onToken != LUA_NOREF || o.stream == true {
                    throw fail("on_token and stream are not supported in a batch (call generate or sample)")
                }
                lua.pop()
                lua.rawGet(t, "labels")
                requestLabels.append(lua.isNoneOrNil(-1) ? nil : try readLabels(args, lua.absolute(-1)))
                lua.pop()
                requests.append(.init(prompt: prompt, n: n, options: o.engine))
            } catch LuaError.argument(_, let message) {
                throw fail(message)
            }
        }
        try admitModelCall("generate_batch", count: requests.count)
        let started = Date()
        lastInterrupted = false
        var results: [[Generation]]
        do {
            results = try model.generateBatch(requests) { [unowned self] _, _, _ in
                self.generatedTokens += 1
                if self.takeInterrupt() || self.timeIsUp || self.tokenLimitReached { self.lastInterrupted = true; return .stopAll }
                return .proceed
            }
        } catch {
            for (q, l) in zip(requests, requestLabels) {
                record(q, l, model, started: started, outputs: [], error: "\(error)")
            }
            throw error
        }
        for (k, q) in requests.enumerated() {
            record(q, requestLabels[k], model, started: started, outputs: results[k].map { callOutput($0, model) }, error: nil)
        }
        lua.newTable(array: results.count) {
            for (k, gs) in results.enumerated() {
                lua.element(k + 1) {
                    if requests[k].n == nil { pushGeneration(gs[0], model); return }
                    lua.newTable(array: gs.count) {
                        for (i, g) in gs.enumerated() { lua.element(i + 1) { pushGeneration(g, model) } }
                    }
                }
            }
        }
        return 1
    }

    /// Records one request of a batch as the generate or sample call it stands for, under `l` (else the current
    /// labels).
    private func record(_ q: LanguageModel.BatchRequest, _ l: CallLabels?, _ m: LanguageModel, started: Date,
                        outputs: [CallOutput], error: String?) {
        guard recorder.isOn else { return }
        var fields = q.options.recordFields
        if let n = q.n { fields["n"] = n; fields["stream"] = false }
        var r = CallRecord(kind: q.n == nil ? "generate" : "sample", model: m.file.path,
                           prompt: m.detokenize(q.prompt, special: true), promptIDs: q.prompt,
                           options: CallRecord.json(fields), started: started, seconds: Date().timeIntervalSince(started))
        r.outputs = outputs
        r.error = error
        recorder.record(r, labels: l)
    }

    func score(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        try admitModelCall("score")
        let prefix = try promptIDs(args, model, first)
        let cont = try continuationIDs(args, model, first + 1)
        guard !prefix.isEmpty else { throw LuaError.message("score: empty prefix (scoring needs at least one token of context)") }
        let o = try options(args, first + 2, known: ["intervene": .strings])
        let x = try intervene(args, o, model: model)
        let fields: [String: Any] = x.isEmpty ? [:] : ["intervene": LuaHost.recordFields(x)]
        let s = try recorder.recorded("score", model, prompt: prefix, options: fields, { try model.score(prefix: prefix, continuation: cont, interventions: x) },
                             outputs: { ([callOutput($0, model)], ["sum": $0.sum, "mean": $0.mean]) })
        pushScore(s)
        return 1
    }

    /// A continuation: text (no BOS, no control tokens parsed) or a list of ids.
    func continuationIDs(_ a: Arguments, _ m: LanguageModel, _ i: Int32) throws -> [Int32] {
        if let s = a.lua.string(i) { return m.tokenize(s, special: false, addSpecial: false) }
        guard a.lua.type(i) == LUA_TTABLE else { throw a.typeError(i, "string or table") }
        return try a.ids(i, vocabulary: m.config.vocabularySize)
    }

    func pushScore(_ s: Score) {
        lua.newTable {
            lua.field("sum", s.sum)
            lua.field("mean", s.mean)
            lua.field("logprobs") { lua.push(numbers: s.logprobs) }
            lua.field("ids") { lua.push(ids: s.ids) }
        }
    }

    /// `m:choose(prefix, options [, opts])`: scores each option after the prefix (and with no context, for
    /// "calibrated"); `lm.choice` (Lua/lm/choice.lua, the rule lm.remote's choose follows too) checks the arguments
    /// and picks the winner. Recorded as one "choose" call.
    func choose(_ args: Arguments, _ model: LanguageModel, _ first: Int32) throws -> Int32 {
        try admitModelCall("choose")
        let prefix = try promptIDs(args, model, first)
        let lua = args.lua
        let base = lua.top
        // `intervene` is the local model's own option: read here, and left out of what lm.choice checks (the rule
        // remote models follow too).
        var x: [Intervention] = []
        if first + 2 <= base, lua.type(first + 2) == LUA_TTABLE {
            x = try intervene(args, first + 2, model: model)
            lua.newTable()
            lua.pushNil()
            while lua_next(L, first + 2) != 0 {
                if lua.string(-2) == "intervene" && lua.type(-2) == LUA_TSTRING { lua.pop(); continue }
                lua.pushValue(-2); lua.pushValue(-2)
                lua_settable(L, -5)
                lua.pop()
            }
            lua_copy(L, -1, first + 2); lua.pop()
        }
        try callChoice("check", 1) {
            lua.pushValue(first + 1)
            if first + 2 <= base { lua.pushValue(first + 2) } else { lua.pushNil() }
            lua.push(1)
        }
        let by = lua.string(-1) ?? "mean"
        lua.pop()
        var choices: [String] = []
        for k in 1...lua.rawLength(first + 1) {
            lua.rawGet(first + 1, k)
            choices.append(lua.string(-1) ?? "")
            lua.pop()
        }
        guard !prefix.isEmpty else { throw LuaError.message("choose: empty prefix (scoring needs at least one token of context)") }
        // "No context" for calibration: the BOS token, or a newline when the vocabulary has none.
        let empty = model.tokenizer.bos.map { [$0] } ?? model.tokenize("\n", addSpecial: false)
        var fields: [String: Any] = ["by": by, "options": choices]
        if !x.isEmpty { fields["intervene"] = LuaHost.recordFields(x) }
        _ = try recorder.recorded("choose", model, prompt: prefix, options: fields, {
            () throws -> (scores: [Score], index: Int, values: [Double]) in
            var scores: [Score] = [], calibration: [Score] = []
            for c in choices {
                let ids = model.tokenize(c, addSpecial: false)
                scores.append(try model.score(prefix: prefix, continuation: ids, interventions: x))
                if by == "calibrated" { calibration.append(try model.score(prefix: empty, continuation: ids, interventions: x)) }
            }
            // lm.choice.rank(options, scores, by, calibration) -> best, scores, index: left on the stack as the results.
            try callChoice("rank", 3) {
                lua.pushValue(first + 1)
                lua.newTable(array: scores.count) { for (i, s) in scores.enumerated() { lua.element(i + 1) { pushScore(s) } } }
                lua.push(by)
                lua.newTable(array: calibration.count) { for (i, s) in calibration.enumerated() { lua.element(i + 1) { pushScore(s) } } }
            }
            var values: [Double] = []
            for i in 1...choices.count {
                lua.rawGet(-2, i)
                lua.rawGet(-1, "score")
                values.append(lua.number(-1) ?? .nan)
                lua.pop(2)
            }
            return (scores, Int(lua.integer(-1) ?? 1), values)
        }, outputs: { r in
            (r.scores.indices.map { callOutput(r.scores[$0], model, text: choices[$0]) },
             ["chosen": choices[r.index - 1], "index": r.index, "scores": r.values])
        })
        return lua.top - base
    }

    /// Calls `lm.choice[name]` with the arguments `push` pushes, leaving `results` values; its error is raised as is.
    private func callChoice(_ name: String, _ results: Int32, push: () -> Void) throws {
        lua_rawgeti(L, luaRegistry, lua_Integer(lmRef))
        lua.rawGet(-1, "choice")
        lua.rawGet(-1, name)
        lua_rotate(L, -3, 1)
        lua.pop(2)
        let before = lua.top
        push()
        if let err = lua.pcall(lua.top - before, results, traceback: false) { throw LuaError.raw(err) }
    }

    // MARK: - Generation

    /// Runs one generation (`generate`: the engine's call, given the per-token callback) with `o`: streams when
    /// asked, calls `on_token`, stops on interrupt. A callback's error is raised after the engine returns.
    func runGeneration(_ a: Arguments, _ o: LuaGenerationOptions, stream: Bool, sample: Int?, model m: LanguageModel,
                       _ generate: (_ onToken: @escaping (GeneratedToken) -> Bool) throws -> Generation) throws -> Generation {
        let sink: (String) -> Void = streamSink ?? { writeStdout($0) }
        var callbackError: String?
        var index = 0
        lastInterrupted = false
        let lua = a.lua
        let g = try generate { [unowned self] tok in
            index += 1
            self.generatedTokens += 1
            if stream && !tok.text.isEmpty { sink(tok.text) }
            if o.onToken != LUA_NOREF && !self.callOnToken(lua, o.onToken, tok, index, sample, m, &callbackError) {
                return false
            }
            if self.takeInterrupt() || self.timeIsUp || self.tokenLimitReached { self.lastInterrupted = true; return false }
            return true
        }
        if let err = callbackError { throw LuaError.raw(err) }
        if stream {
            let streamed = g.tokens.map { $0.text }.joined()
            if g.text.count > streamed.count { sink(String(g.text.dropFirst(streamed.count))) }
            if streamSink != nil && !g.text.isEmpty && !g.text.hasSuffix("\n") { sink("\n") }
        }
        return g
    }

    /// Calls `on_token(piece, info)`; false when it returns false or raises (its error kept in `error`).
    private func callOnToken(_ lua: Lua, _ ref: Int32, _ tok: GeneratedToken, _ index: Int, _ sample: Int?,
                             _ m: LanguageModel, _ error: inout String?) -> Bool {
        lua_rawgeti(lua.L, luaRegistry, lua_Integer(ref))
        lua.push(tok.text)
        lua.newTable {
            lua.field("id", Int(tok.id))
            lua.field("logprob", Double(tok.logprob))
            lua.field("index", index)
            if let sample { lua.field("sample", sample) }
            if !tok.top.isEmpty { lua.field("top") { pushTop(tok.top, m) } }
            if let h = tok.entropy { lua.field("entropy", Double(h)) }
        }
        if let err = lua.pcall(2, 1, traceback: false) { error = err; return false }
        defer { lua.pop() }
        return !(lua.type(-1) == LUA_TBOOLEAN && lua.boolean(-1) == false)
    }

    func release(_ o: LuaGenerationOptions) {
        if o.onToken != LUA_NOREF { luaL_unref(L, luaRegistry, o.onToken) }
    }

    func pushTop(_ top: [(id: Int32, logprob: Float)], _ m: LanguageModel) {
        lua.newTable(array: top.count) {
            for (j, t) in top.enumerated() {
                lua.element(j + 1) {
                    lua.newTable {
                        lua.field("id", Int(t.id))
                        lua.field("piece", piece(m, t.id))
                        lua.field("logprob", Double(t.logprob))
                    }
                }
            }
        }
    }

    /// A generation as a plain table: text, ids, logprobs, top (when asked), finish, usage, seconds.
    func pushGeneration(_ g: Generation, _ m: LanguageModel) {
        lua.newTable {
            lua.field("text", g.text)
            lua.field("ids") { lua.push(ids: g.ids) }
            lua.field("logprobs") { lua.push(numbers: g.tokens.map { $0.logprob }) }
            if g.tokens.contains(where: { !$0.top.isEmpty }) {
                lua.field("top") {
                    lua.newTable(array: g.tokens.count) {
                        for (i, t) in g.tokens.enumerated() { lua.element(i + 1) { pushTop(t.top, m) } }
                    }
                }
                lua.field("entropy") { lua.push(numbers: g.tokens.map { $0.entropy ?? .nan }) }
            }
            if g.tokens.contains(where: { $0.constrainedLogprob != nil }) {
                // Under a grammar: each token's log-probability in the distribution the grammar left.
                lua.field("constrained_logprobs") { lua.push(numbers: g.tokens.map { $0.constrainedLogprob ?? .nan }) }
            }
            lua.field("finish", g.finish.rawValue)
            lua.field("usage") {
                lua.newTable {
                    lua.field("prompt", g.promptTokens)
                    lua.field("completion", g.ids.count)
                    lua.field("cached", g.cachedTokens)
                }
            }
            lua.field("seconds", g.seconds)
        }
    }
}
