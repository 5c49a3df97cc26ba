// `refrain serve`: an OpenAI-compatible HTTP server over the local engine. Routes: GET /v1/models, POST
// /v1/completions (a prompt string or token ids; n, logprobs with top-k, echo with the prompt's log-probabilities,
// stream), POST /v1/chat/completions (messages through the model's chat template; logprobs in the chat shape;
// stream), and llama.cpp's POST /tokenize, /detokenize and /apply-template. The engine is not thread-safe: every
// model call holds one lock, while connections are still accepted. A bad request is a 400 with OpenAI's
// `{"error": {"message", "type", "param"}}` naming the problem.
import Engine
import Foundation

/// A request's fields, read with checks that name the field and what was wrong with it.
struct RequestFields {
    let json: JSON
    /// The body as parsed, numbers' integer-ness kept (a JSON schema's constants are written back from it).
    let raw: JSONValue

    init(_ body: Data) throws {
        do { raw = try JSONValue.parse(String(decoding: body, as: UTF8.self)) } catch {
            throw HTTPFailure(status: 400, message: "the request body is not valid JSON: \(error)")
        }
        let j = JSON(raw)
        guard case .object = j else { throw HTTPFailure(status: 400, message: "the request body must be a JSON object, got \(j.typeName)") }
        json = j
    }

    static func bad(_ field: String, _ msg: String) -> HTTPFailure { HTTPFailure(status: 400, message: "'\(field)' \(msg)") }

    /// A present, non-null field.
    func value(_ k: String) -> JSON? { json[k].flatMap { $0.isNull ? nil : $0 } }

    func int(_ k: String, min lo: Int, max hi: Int = Int.max) throws -> Int? {
        guard let v = value(k) else { return nil }
        guard let i = v.integer else { throw RequestFields.bad(k, "must be an integer, got \(v.typeName == "number" ? v.text : v.typeName)") }
        guard i >= lo, i <= hi else { throw RequestFields.bad(k, hi == Int.max ? "must be at least \(lo), got \(i)" : "must be between \(lo) and \(hi), got \(i)") }
        return i
    }

    func number(_ k: String, min lo: Double = -.infinity, max hi: Double = .infinity) throws -> Double? {
        guard let v = value(k) else { return nil }
        guard let d = v.number else { throw RequestFields.bad(k, "must be a number, got \(v.typeName)") }
        guard d >= lo, d <= hi else { throw RequestFields.bad(k, "must be between \(lo) and \(hi), got \(d)") }
        return d
    }

    func bool(_ k: String) throws -> Bool? {
        guard let v = value(k) else { return nil }
        guard let b = v.bool else { throw RequestFields.bad(k, "must be a boolean, got \(v.typeName)") }
        return b
    }

    func string(_ k: String) throws -> String? {
        guard let v = value(k) else { return nil }
        guard let s = v.string else { throw RequestFields.bad(k, "must be a string, got \(v.typeName)") }
        return s
    }

    /// A generation option's value of `kind`, nil when absent (the range is the schema's to check).
    func option(_ k: String, kind: OptionSpec.Kind) throws -> OptionValue? {
        guard let v = value(k) else { return nil }
        switch kind {
        case .integer:
            guard let i = v.integer else { throw RequestFields.bad(k, "must be an integer, got \(v.typeName == "number" ? v.text : v.typeName)") }
            return .integer(i)
        case .number:
            guard let d = v.number else { throw RequestFields.bad(k, "must be a number, got \(v.typeName)") }
            return .number(d)
        case .boolean:
            guard let b = v.bool else { throw RequestFields.bad(k, "must be a boolean, got \(v.typeName)") }
            return .boolean(b)
        case .strings:
            return .strings(try strings(k))
        case .text:
            guard case .string(let s) = v else { throw RequestFields.bad(k, "must be a string, got \(v.typeName)") }
            return .text(s)
        case .function, .interventions:
            throw RequestFields.bad(k, "cannot be given over HTTP")
        case .json:
            return .text(try schemaText(raw[k]!, field: k))
        }
    }

    /// A JSON schema given as an object (or as JSON text), as JSON text; an empty object is any object (llama.cpp's
    /// reading). The conversion is tried here, so that a bad schema is a 400 that names the field.
    func schemaText(_ v: JSONValue, field: String) throws -> String {
        var text: String
        switch v {
        case .object(let m): text = m.isEmpty ? #"{"type":"object"}"# : v.dump()
        case .string(let s): text = s
        default: throw RequestFields.bad(field, "must be a JSON schema (an object), got \(JSON(v).typeName)")
        }
        if text.trimmingCharacters(in: .whitespacesAndNewlines) == "{}" { text = #"{"type":"object"}"# }
        do { _ = try ConstraintGrammar.cachedJSONSchema(text) } catch {
            throw RequestFields.bad(field, "\(error)".replacingOccurrences(of: "json_schema: ", with: ""))
        }
        return text
    }

    /// A string or a list of strings.
    func strings(_ k: String) throws -> [String] {
        guard let v = value(k) else { return [] }
        if let s = v.string { return [s] }
        guard let a = v.array else { throw RequestFields.bad(k, "must be a string or a list of strings, got \(v.typeName)") }
        return try a.enumerated().map { i, e in
            guard let s = e.string, !s.isEmpty else { throw RequestFields.bad(k, "item \(i) must be a non-empty string") }
            return s
        }
    }
}

/// The OpenAI-compatible API over one model.
final class OpenAIServer: @unchecked Sendable {
    let model: LanguageModel
    /// The model's id in requests and responses.
    let name: String
    /// Runs every evaluation of the model, one at a time (requests arrive on many threads; see ModelScheduler).
    private let scheduler: ModelScheduler

    init(model: LanguageModel, name: String) {
        self.model = model
        self.name = name
        scheduler = ModelScheduler(model, label: "refrain.serve")
    }

    var context: Int { model.config.contextLength }

    // MARK: - Routing

    /// A request read, routed and checked: what is left to do is the work itself.
    enum Prepared {
        case models, health
        case completion(CompletionRequest)
        case chat(ChatRequest)
        case tokenize(text: String, addSpecial: Bool, special: Bool)
        case detokenize([Int32], special: Bool)
        case applyTemplate(String)
    }

    /// Routes `req` and reads and checks its body (JSON, fields, prompt, options) without running the model; throws
    /// the `HTTPFailure` (or `EngineError`, `ChatTemplateError`) to answer with. Everything `refrain serve` does with
    /// a request's bytes before any work, in one function the fuzz tests call directly.
    func prepare(_ req: HTTPRequest) throws -> Prepared {
        let routes: [String: String] = ["/v1/completions": "POST", "/v1/chat/completions": "POST", "/tokenize": "POST",
                                        "/detokenize": "POST", "/apply-template": "POST"]
        switch req.path {
        case "/v1/models", "/models":
            guard req.method == "GET" else { throw HTTPFailure(status: 405, message: "\(req.path) takes GET") }
            return .models
        case "/health", "/v1/health":
            return .health
        default:
            guard let method = routes[req.path] else {
                throw HTTPFailure(status: 404, message: "no route \(req.method) \(req.path) (this server has GET /v1/models, POST /v1/completions, POST /v1/chat/completions, POST /tokenize, /detokenize, /apply-template)", type: "not_found_error")
            }
            guard req.method == method else { throw HTTPFailure(status: 405, message: "\(req.path) takes \(method), not \(req.method)") }
            let f = try RequestFields(req.body)
            try checkModel(f)
            switch req.path {
            case "/v1/completions": return .completion(try completionRequest(f))
            case "/v1/chat/completions": return .chat(try chatRequest(f))
            case "/tokenize": return try tokenizeRequest(f)
            case "/detokenize": return try detokenizeRequest(f)
            default: return .applyTemplate(try renderedChat(f))
            }
        }
    }

    func handle(_ req: HTTPRequest, _ conn: HTTPConnection) {
        do {
            switch try prepare(req) {
            case .models: conn.respond(200, modelList().data)
            case .health: conn.respond(200, JSON.object([("status", .string("ok"))]).data)
            case .completion(let r): try completions(r, conn)
            case .chat(let r): try chat(r, conn)
            case .tokenize(let text, let add, let special):
                let ids = model.tokenize(text, special: special, addSpecial: add ? nil : false)
                conn.respond(200, JSON.object([("tokens", .ints(ids)), ("count", .int(ids.count)), ("max_model_len", .int(context))]).data)
            case .detokenize(let ids, let special):
                conn.respond(200, JSON.object([("content", .string(model.detokenize(ids, special: special)))]).data)
            case .applyTemplate(let text):
                conn.respond(200, JSON.object([("prompt", .string(text))]).data)
            }
        } catch let f as HTTPFailure {
            conn.respond(f.status, OpenAIServer.errorBody(f).data)
        } catch let e as EngineError {
            conn.respond(400, OpenAIServer.errorBody(HTTPFailure(status: 400, message: e.description)).data)
        } catch let e as ChatTemplateError {
            conn.respond(400, OpenAIServer.errorBody(HTTPFailure(status: 400, message: "chat template: \(e)")).data)
        } catch {
            conn.respond(500, OpenAIServer.errorBody(HTTPFailure(status: 500, message: "\(error)", type: "server_error")).data)
        }
    }

    static func errorBody(_ f: HTTPFailure) -> JSON {
        .object([("error", .object([("message", .string(f.message)), ("type", .string(f.type)), ("code", .int(f.status))]))])
    }

    /// A request naming another model is refused (the file name with or without .gguf is this one).
    private func checkModel(_ f: RequestFields) throws {
        guard let m = try f.string("model"), !m.isEmpty else { return }
        let file = URL(fileURLWithPath: model.file.path).lastPathComponent
        guard m == name || m == file else {
            throw HTTPFailure(status: 400, message: "unknown model '\(m)': this server serves '\(name)'", type: "invalid_request_error")
        }
    }

    private func modelList() -> JSON {
        var entry: [(String, JSON)] = [("id", .string(name)), ("object", .string("model")), ("created", .int(0)),
                                       ("owned_by", .string("refrain")), ("context_length", .int(context)),
                                       ("vocab", .int(model.config.vocabularySize))]
        if let b = model.tokenizer.bos { entry.append(("bos", .int(Int(b)))) }
        if let e = model.tokenizer.eos { entry.append(("eos", .int(Int(e)))) }
        return .object([("object", .string("list")), ("data", .array([.object(entry)]))])
    }

    // MARK: - Shared pieces

    /// The engine's options from a request: every server option of GenerationSchema, by its key or its alias,
    /// checked by the schema's types and ranges. OpenAI's defaults apply to what is absent: temperature 1, top_p 1,
    /// no top_k or min_p, no penalties, a random seed. `top_k` -1 (llama.cpp's "off") is taken as 0.
    static func options(_ f: RequestFields, maxTokens: Int) throws -> GenerationOptions {
        var g = GenerationOptions()
        g.maxTokens = maxTokens
        g.sampling.temperature = 1
        g.sampling.topP = 1
        g.sampling.topK = 0
        g.sampling.minP = 0
        g.sampling.seed = UInt64(Int.random(in: 0...Int(Int32.max)))
        for spec in GenerationSchema.options where spec.surfaces.contains(.server) {
            guard let field = spec.field else { continue }
            let key = spec.serverAlias.flatMap { f.value($0) != nil ? $0 : nil } ?? spec.key
            guard var v = try f.option(key, kind: spec.kind) else { continue }
            if spec.key == "top_k", v == .integer(-1) { v = .integer(0) }
            if let message = spec.check(v) { throw RequestFields.bad(key, message) }
            field.set(&g, v)
        }
        // OpenAI's response_format, read as llama.cpp's server reads it: json_object is the schema it carries or any
        // object; json_schema is json_schema.schema.
        if let rf = f.value("response_format") {
            guard let type = rf["type"]?.string else {
                throw RequestFields.bad("response_format", "must be an object with a 'type' (text, json_object or json_schema)")
            }
            let raw = f.raw["response_format"]!
            var schema: String? = nil
            switch type {
            case "text": break
            case "json_object":
                schema = try raw["schema"].map { try f.schemaText($0, field: "response_format.schema") } ?? #"{"type":"object"}"#
            case "json_schema":
                guard let s = raw["json_schema"]?["schema"] else {
                    throw RequestFields.bad("response_format", "json_schema needs json_schema.schema (the JSON schema)")
                }
                schema = try f.schemaText(s, field: "response_format.json_schema.schema")
            default:
                throw RequestFields.bad("response_format", "type must be text, json_object or json_schema, got '\(type)'")
            }
            if let schema {
                guard g.grammar == nil && g.regex == nil && g.choices.isEmpty && g.jsonSchema == nil else {
                    throw RequestFields.bad("response_format", "\(type) cannot be combined with grammar, regex, choices or json_schema")
                }
                g.jsonSchema = schema
            }
        }
        do { try g.check() } catch let e as EngineError { throw HTTPFailure(status: 400, message: "\(e)") }
        return g
    }

    /// `max_tokens` (or chat's `max_completion_tokens`), checked against the room the prompt leaves.
    private func maxTokens(_ f: RequestFields, prompt: Int, default def: Int?) throws -> Int {
        let room = context - prompt
        let asked = try f.int("max_completion_tokens", min: 0) ?? f.int("max_tokens", min: 0)
        guard let n = asked else { return max(0, def.map { min($0, room) } ?? room) }
        guard n <= room else {
            throw HTTPFailure(status: 400, message: "the prompt (\(prompt) tokens) and max_tokens (\(n)) exceed the model's context of \(context) tokens")
        }
        return n
    }

    /// Checks a prompt's ids: some, in the vocabulary, inside the context.
    private func check(_ ids: [Int32]) throws {
        guard !ids.isEmpty else { throw RequestFields.bad("prompt", "is empty (it makes no tokens)") }
        try model.validate(ids)
        guard ids.count <= context else {
            throw HTTPFailure(status: 400, message: "the prompt is too long: \(ids.count) tokens, the model's context holds \(context)")
        }
    }

    /// Runs `n` generations on the scheduler, after the work asked for before. Streamed ones run one after another
    /// (`each` sees their tokens and stops them by returning false); the others decode together. Choice `i` samples
    /// with seed + i.
    private func generate(_ prompt: [Int32], _ g: GenerationOptions, n: Int,
                          each: ((Int, GeneratedToken) -> Bool)?) throws -> [Generation] {
        try scheduler.perform { model in
        if let each {
            return try (0..<n).map { i in
                var o = g
                o.sampling.seed = g.sampling.seed &+ UInt64(i)
                return try model.generate(prompt, options: o) { each(i, $0) }
            }
        }
        if n == 1 { return [try model.generate(prompt, options: g)] }
        return try model.sample(prompt: prompt, n: n, options: g)
        }
    }

    private func piece(_ id: Int32) -> String { String(decoding: model.tokenizer.piece(id, special: true), as: UTF8.self) }

    /// Characters (Unicode scalars, as Python counts them) in UTF-8 bytes: the bytes that start one.
    private static func scalars(_ bytes: [UInt8]) -> Int { bytes.reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) } }

    private static func finishReason(_ g: Generation) -> String { g.finish == .length ? "length" : "stop" }

    /// vLLM's `stop_reason`: the stop string that ended the text, or the end token; null otherwise.
    private static func stopReason(_ g: Generation, _ stops: [String]) -> JSON {
        switch g.finish {
        case .eos: return g.endToken.map { .int(Int($0)) } ?? .null
        case .stop:
            let full = g.tokens.map(\.text).joined()
            let rest = full.count >= g.text.count ? String(full.dropFirst(g.text.count)) : ""
            return stops.first { rest.hasPrefix($0) }.map { .string($0) } ?? .null
        default: return .null
        }
    }

    private func usage(_ prompt: Int, _ gens: [Generation]) -> JSON {
        let completion = gens.reduce(0) { $0 + $1.ids.count }
        return .object([("prompt_tokens", .int(prompt)), ("completion_tokens", .int(completion)),
                        ("total_tokens", .int(prompt + completion)),
                        ("prompt_tokens_details", .object([("cached_tokens", .int(gens.first?.cachedTokens ?? 0))]))])
    }

    private func header(_ object: String, _ id: String) -> [(String, JSON)] {
        [("id", .string(id)), ("object", .string(object)), ("created", .int(Int(Date().timeIntervalSince1970))),
         ("model", .string(name))]
    }

    private static func newID(_ prefix: String) -> String {
        prefix + String((0..<24).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
    }

    // MARK: - /v1/completions

    /// The prompt's ids and text: a string (control tokens parsed, BOS as the model says), token ids, or a list of
    /// one of those.
    private func completionPrompt(_ f: RequestFields) throws -> (ids: [Int32], text: String, implicitBOS: Bool) {
        guard var v = f.value("prompt") else { throw RequestFields.bad("prompt", "is required") }
        if let a = v.array, a.count == 1, a[0].string != nil || a[0].array != nil { v = a[0] }
        if let s = v.string {
            let ids = model.tokenize(s, special: true)
            try check(ids)
            let bos = model.tokenizer.bos.map { ids.first == $0 && !s.hasPrefix(piece($0)) } ?? false
            return (ids, s, bos)
        }
        guard let a = v.array else { throw RequestFields.bad("prompt", "must be a string or a list of token ids, got \(v.typeName)") }
        if a.contains(where: { $0.string != nil || $0.array != nil }) {
            throw RequestFields.bad("prompt", "holds \(a.count) prompts: send one prompt per request")
        }
        let ids = try a.enumerated().map { i, e -> Int32 in
            guard let t = e.integer else { throw RequestFields.bad("prompt", "item \(i) is not a token id (\(e.typeName))") }
            guard t >= 0, t < model.config.vocabularySize else {
                throw RequestFields.bad("prompt", "token id \(t) at item \(i) is outside the vocabulary (0..<\(model.config.vocabularySize))")
            }
            return Int32(t)
        }
        try check(ids)
        return (ids, model.detokenize(ids, special: true), false)
    }

    /// OpenAI's legacy logprobs object for `ids` (offsets count from `offset` characters).
    private func legacyLogprobs(_ ids: [Int32], _ lps: [Float?], _ tops: [[(id: Int32, logprob: Float)]?],
                                offset: Int, skipText: Int = 0) -> JSON {
        var tokens: [JSON] = [], lp: [JSON] = [], top: [JSON] = [], offs: [JSON] = []
        var at = offset
        for (i, id) in ids.enumerated() {
            let bytes = model.tokenizer.piece(id, special: true)
            tokens.append(.string(String(decoding: bytes, as: UTF8.self)))
            lp.append(lps[i].map { .number(Double($0)) } ?? .null)
            if let t = tops[i] {
                var seen = Set<String>(), members: [(String, JSON)] = []
                for alt in t {
                    let p = piece(alt.id)
                    if seen.insert(p).inserted { members.append((p, .number(Double(alt.logprob)))) }
                }
                top.append(.object(members))
            } else { top.append(.null) }
            offs.append(.int(at))
            if i >= skipText { at += OpenAIServer.scalars(bytes) }
        }
        return .object([("tokens", .array(tokens)), ("token_logprobs", .array(lp)), ("top_logprobs", .array(top)),
                        ("text_offset", .array(offs))])
    }

    /// The prompt's own log-probabilities (the first is null) and, with `k` > 0, its top-k alternatives: a forward
    /// pass over the prompt with every position's logits, 256 positions at a time (so that a long prompt's rows,
    /// positions × vocabulary floats, are never all held at once).
    private func promptLogprobs(_ ids: [Int32], k: Int) -> ([Float?], [[(id: Int32, logprob: Float)]?]) {
        scheduler.perform { model in
        let cache = model.transformer.makeCache(maxPositions: ids.count)
        let V = model.config.vocabularySize
        var lps: [Float?] = [nil], tops: [[(id: Int32, logprob: Float)]?] = [nil]
        var start = 0
        while start < ids.count - 1 {
            // Rows for positions start..<end predict tokens start+1...end.
            let end = min(ids.count - 1, start + 256)
            let rows = model.transformer.forward(Array(ids[start..<end]), cache: cache, logits: .all)
            rows.withUnsafeBufferPointer { b in
                for (r, i) in ((start + 1)...end).enumerated() {
                    let row = UnsafeBufferPointer(rebasing: b[(r * V)..<((r + 1) * V)])
                    lps.append(Float(LogProbs.logProb(row, ids[i])))
                    tops.append(k > 0 ? LogProbs.topK(row, k) : nil)
                }
            }
            start = end
        }
        return (lps, tops)
        }
    }

    /// A /v1/completions request, checked.
    struct CompletionRequest {
        let prompt: [Int32], promptText: String, implicitBOS: Bool
        let n: Int, logprobs: Int?, echo: Bool, stream: Bool, withIDs: Bool
        let options: GenerationOptions
    }

    private func completionRequest(_ f: RequestFields) throws -> CompletionRequest {
        let (prompt, promptText, implicitBOS) = try completionPrompt(f)
        let n = try f.int("n", min: 1, max: 64) ?? 1
        let logprobs = try f.int("logprobs", min: 0, max: 20)
        let echo = try f.bool("echo") ?? false
        let stream = try f.bool("stream") ?? false
        let withIDs = try f.bool("return_token_ids") ?? false
        var g = try OpenAIServer.options(f, maxTokens: try maxTokens(f, prompt: prompt.count, default: 16))
        g.topLogprobs = logprobs ?? 0
        return CompletionRequest(prompt: prompt, promptText: promptText, implicitBOS: implicitBOS, n: n, logprobs: logprobs,
                                 echo: echo, stream: stream, withIDs: withIDs, options: g)
    }

    private func completions(_ r: CompletionRequest, _ conn: HTTPConnection) throws {
        let (prompt, promptText, implicitBOS) = (r.prompt, r.promptText, r.implicitBOS)
        let (n, logprobs, echo, stream, withIDs, g) = (r.n, r.logprobs, r.echo, r.stream, r.withIDs, r.options)
        let id = OpenAIServer.newID("cmpl-")
        let promptChars = promptText.unicodeScalars.count
        // The echoed prompt's log-probabilities, computed before generating.
        var echoed: JSON? = nil
        if echo, let k = logprobs {
            let (lps, tops) = promptLogprobs(prompt, k: k)
            echoed = legacyLogprobs(prompt, lps, tops, offset: 0, skipText: implicitBOS ? 1 : 0)
        }
        func choiceLogprobs(_ gen: Generation) -> JSON {
            guard logprobs != nil else { return .null }
            let own = legacyLogprobs(gen.ids, gen.tokens.map { $0.logprob }, gen.tokens.map { logprobs! > 0 ? $0.top : nil },
                                     offset: promptChars)
            guard let e = echoed else { return own }
            var merged: [(String, JSON)] = []
            for key in ["tokens", "token_logprobs", "top_logprobs", "text_offset"] {
                merged.append((key, .array((e[key]?.array ?? []) + (own[key]?.array ?? []))))
            }
            return .object(merged)
        }
        if stream {
            guard conn.startEvents() else { return }
            var sent = [Int](repeating: 0, count: n)       // characters streamed per choice
            func chunk(_ i: Int, _ text: String, _ lp: JSON, _ finish: JSON) -> Bool {
                conn.event(JSON.object(header("text_completion", id) + [("choices", .array([.object([
                    ("index", .int(i)), ("text", .string(text)), ("logprobs", lp), ("finish_reason", finish)])]))]).text)
            }
            if echo { for i in 0..<n { _ = chunk(i, promptText, echoed ?? .null, .null) } }
            let gens = try generate(prompt, g, n: n) { i, tok in
                sent[i] += tok.text.count
                let lp: JSON = logprobs == nil ? .null
                    : self.legacyLogprobs([tok.id], [tok.logprob], [logprobs! > 0 ? tok.top : nil], offset: promptChars)
                return chunk(i, tok.text, lp, .null)
            }
            for (i, gen) in gens.enumerated() {
                let rest = gen.text.count > sent[i] ? String(gen.text.dropFirst(sent[i])) : ""
                _ = chunk(i, rest, .null, .string(OpenAIServer.finishReason(gen)))
            }
            _ = conn.event(JSON.object(header("text_completion", id) + [("choices", .array([])), ("usage", usage(prompt.count, gens))]).text)
            _ = conn.event("[DONE]")
            return
        }
        let gens = try generate(prompt, g, n: n, each: nil)
        let choices: [JSON] = gens.enumerated().map { i, gen in
            var c: [(String, JSON)] = [("index", .int(i)), ("text", .string((echo ? promptText : "") + gen.text)),
                                       ("logprobs", choiceLogprobs(gen)),
                                       ("finish_reason", .string(OpenAIServer.finishReason(gen))),
                                       ("stop_reason", OpenAIServer.stopReason(gen, g.stop))]
            if withIDs { c += [("token_ids", .ints(gen.ids)), ("prompt_token_ids", .ints(prompt))] }
            return .object(c)
        }
        conn.respond(200, JSON.object(header("text_completion", id) + [("choices", .array(choices)),
                                                                        ("usage", usage(prompt.count, gens))]).data)
    }

    // MARK: - /v1/chat/completions

    private func messages(_ f: RequestFields) throws -> [ChatMessage] {
        guard let v = f.value("messages") else { throw RequestFields.bad("messages", "is required") }
        guard let a = v.array, !a.isEmpty else { throw RequestFields.bad("messages", "must be a non-empty list of messages") }
        return try a.enumerated().map { i, m in
            guard case .object = m else { throw RequestFields.bad("messages", "item \(i) must be an object, got \(m.typeName)") }
            guard let role = m["role"]?.string else { throw RequestFields.bad("messages", "item \(i) has no 'role' string") }
            if let s = m["content"]?.string { return ChatMessage(role: role, content: s) }
            if let parts = m["content"]?.array {
                let texts = try parts.map { p -> String in
                    guard p["type"]?.string == "text", let t = p["text"]?.string else {
                        throw RequestFields.bad("messages", "item \(i): only text content parts are supported")
                    }
                    return t
                }
                return ChatMessage(role: role, content: texts.joined())
            }
            throw RequestFields.bad("messages", "item \(i) has no 'content' string")
        }
    }

    /// The request's messages through the model's chat template.
    private func renderedChat(_ f: RequestFields) throws -> String {
        do { return try model.renderChat(try messages(f)) } catch let e as ChatTemplateError {
            throw HTTPFailure(status: 400, message: "the model's chat template cannot render these messages: \(e)")
        }
    }

    private func chatPrompt(_ f: RequestFields) throws -> [Int32] {
        let ids = model.tokenize(try renderedChat(f), special: true)
        try check(ids)
        return ids
    }

    private func chatLogprob(_ tok: GeneratedToken, k: Int) -> JSON {
        func entry(_ id: Int32, _ lp: Float) -> [(String, JSON)] {
            let bytes = model.tokenizer.piece(id, special: true)
            return [("token", .string(String(decoding: bytes, as: UTF8.self))), ("logprob", .number(Double(lp))),
                    ("bytes", .array(bytes.map { .int(Int($0)) }))]
        }
        return .object(entry(tok.id, tok.logprob) + [("top_logprobs", .array(k > 0 ? tok.top.map { .object(entry($0.id, $0.logprob)) } : []))])
    }

    /// A /v1/chat/completions request, checked.
    struct ChatRequest {
        let prompt: [Int32]
        let n: Int, wantLogprobs: Bool, k: Int, stream: Bool, withIDs: Bool
        let options: GenerationOptions
    }

    private func chatRequest(_ f: RequestFields) throws -> ChatRequest {
        let prompt = try chatPrompt(f)
        let n = try f.int("n", min: 1, max: 64) ?? 1
        let wantLogprobs = try f.bool("logprobs") ?? false
        let k = try f.int("top_logprobs", min: 0, max: 20) ?? 0
        if k > 0 && !wantLogprobs { throw RequestFields.bad("top_logprobs", "needs 'logprobs': true") }
        let stream = try f.bool("stream") ?? false
        let withIDs = try f.bool("return_token_ids") ?? false
        var g = try OpenAIServer.options(f, maxTokens: try maxTokens(f, prompt: prompt.count, default: nil))
        g.topLogprobs = k
        return ChatRequest(prompt: prompt, n: n, wantLogprobs: wantLogprobs, k: k, stream: stream, withIDs: withIDs, options: g)
    }

    private func chat(_ r: ChatRequest, _ conn: HTTPConnection) throws {
        let (prompt, n, wantLogprobs, k, stream, withIDs, g) = (r.prompt, r.n, r.wantLogprobs, r.k, r.stream, r.withIDs, r.options)
        let id = OpenAIServer.newID("chatcmpl-")
        if stream {
            guard conn.startEvents() else { return }
            var sent = [Int](repeating: 0, count: n)
            func chunk(_ i: Int, _ delta: [(String, JSON)], _ lp: JSON, _ finish: JSON) -> Bool {
                conn.event(JSON.object(header("chat.completion.chunk", id) + [("choices", .array([.object([
                    ("index", .int(i)), ("delta", .object(delta)), ("logprobs", lp), ("finish_reason", finish)])]))]).text)
            }
            for i in 0..<n { _ = chunk(i, [("role", .string("assistant")), ("content", .string(""))], .null, .null) }
            let gens = try generate(prompt, g, n: n) { i, tok in
                sent[i] += tok.text.count
                let lp: JSON = wantLogprobs ? .object([("content", .array([self.chatLogprob(tok, k: k)]))]) : .null
                return chunk(i, [("content", .string(tok.text))], lp, .null)
            }
            for (i, gen) in gens.enumerated() {
                let rest = gen.text.count > sent[i] ? String(gen.text.dropFirst(sent[i])) : ""
                _ = chunk(i, rest.isEmpty ? [] : [("content", .string(rest))], .null, .string(OpenAIServer.finishReason(gen)))
            }
            _ = conn.event(JSON.object(header("chat.completion.chunk", id) + [("choices", .array([])), ("usage", usage(prompt.count, gens))]).text)
            _ = conn.event("[DONE]")
            return
        }
        let gens = try generate(prompt, g, n: n, each: nil)
        let choices: [JSON] = gens.enumerated().map { i, gen in
            var c: [(String, JSON)] = [
                ("index", .int(i)),
                ("message", .object([("role", .string("assistant")), ("content", .string(gen.text))])),
                ("logprobs", wantLogprobs ? .object([("content", .array(gen.tokens.map { chatLogprob($0, k: k) }))]) : .null),
                ("finish_reason", .string(OpenAIServer.finishReason(gen))),
                ("stop_reason", OpenAIServer.stopReason(gen, g.stop)),
            ]
            if withIDs { c += [("token_ids", .ints(gen.ids)), ("prompt_token_ids", .ints(prompt))] }
            return .object(c)
        }
        conn.respond(200, JSON.object(header("chat.completion", id) + [("choices", .array(choices)),
                                                                        ("usage", usage(prompt.count, gens))]).data)
    }

    // MARK: - llama.cpp's extras

    /// POST /tokenize {content (or vLLM's prompt), add_special, parse_special} -> {tokens}.
    private func tokenizeRequest(_ f: RequestFields) throws -> Prepared {
        guard let text = try f.string("content") ?? f.string("prompt") else { throw RequestFields.bad("content", "is required (the text to tokenize)") }
        let add = try f.bool("add_special") ?? f.bool("add_special_tokens") ?? false
        return .tokenize(text: text, addSpecial: add, special: try f.bool("parse_special") ?? true)
    }

    /// POST /detokenize {tokens, special} -> {content}.
    private func detokenizeRequest(_ f: RequestFields) throws -> Prepared {
        guard let a = f.value("tokens")?.array else { throw RequestFields.bad("tokens", "is required (a list of token ids)") }
        let ids = try a.enumerated().map { i, e -> Int32 in
            guard let t = e.integer, t >= 0, t < model.config.vocabularySize else {
                throw RequestFields.bad("tokens", "item \(i) is not a token id in the vocabulary (0..<\(model.config.vocabularySize))")
            }
            return Int32(t)
        }
        return .detokenize(ids, special: try f.bool("special") ?? false)
    }
}
