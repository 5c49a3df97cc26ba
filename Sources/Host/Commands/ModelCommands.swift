// The commands over one model: `refrain tokenize`, `refrain generate`, `refrain score` and `refrain info`, with
// the helpers the other commands share (loading the model, reading TEXT or standard input, printing JSON).
import CLua
import Engine
import Foundation

func fail(_ msg: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(("refrain: error: " + msg + "\n").data(using: .utf8)!)
    exit(code)
}

/// A usage mistake: one line on standard error after "refrain: error:", then "see: refrain --help"; exit status 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
}

/// The text argument: the positional words joined, or standard input for '-'.
func inputText(_ words: [String], required: Bool = true) throws -> String? {
    if words == ["-"] {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        guard let s = String(data: data, encoding: .utf8) else { throw UsageError(description: "standard input is not valid UTF-8") }
        return s
    }
    if words.isEmpty {
        if required { throw UsageError(description: "no text given (pass TEXT, or - to read standard input)") }
        return nil
    }
    return words.joined(separator: " ")
}

/// A comma-separated list of token ids, the value of `--flag`.
func tokenIDs(_ text: String?, flag: String) throws -> [Int32]? {
    guard let text else { return nil }
    return try text.split(separator: ",", omittingEmptySubsequences: false).map { p in
        guard let v = Int32(p.trimmingCharacters(in: .whitespaces)) else {
            throw UsageError(description: "--\(flag) expects comma-separated token ids, got '\(p)'")
        }
        return v
    }
}

/// Writes to standard output unbuffered, so that streamed tokens, prompts and messages keep their order.
func emit(_ s: String) {
    FileHandle.standardOutput.write(Data(s.utf8))
}

func printJSON(_ obj: Any) {
    let data = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
    print(String(data: data, encoding: .utf8)!)
}

func pieces(_ m: LanguageModel, _ ids: [Int32]) -> [String] {
    ids.map { String(decoding: m.tokenizer.piece($0, special: true), as: UTF8.self) }
}

// MARK: - Commands

func tokenizeCommand(_ o: TokenizeCommand) throws {
    let text = try inputText(o.text)!
    let m = try o.model.load(threads: 1)
    let ids = m.tokenize(text, special: o.special, addSpecial: o.noBOS ? false : nil)
    if o.json {
        printJSON(["ids": ids.map(Int.init), "pieces": pieces(m, ids)])
    } else {
        print(ids.map(String.init).joined(separator: " "))
    }
}

/// `--precision quantized|exact`: how matrix products are computed.
func setPrecision(_ m: LanguageModel, _ precision: String?) throws {
    guard let p = precision else { return }
    guard let v = Precision(rawValue: p) else {
        throw UsageError(description: "--precision expects quantized or exact, got '\(p)'")
    }
    m.transformer.precision = v
}

func chatTemplate(_ template: String?) throws -> ChatTemplate? {
    guard let name = template else { return nil }
    guard let fam = ChatTemplate.Family(rawValue: name) else {
        throw UsageError(description: "unknown --template '\(name)' (known: \(ChatTemplate.Family.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    return ChatTemplate(family: fam)
}

/// The chat prompt for `messages`; a model without a template gets the command-line way to name one.
func render(_ m: LanguageModel, _ messages: [ChatMessage], template: ChatTemplate?) throws -> String {
    do { return try m.renderChat(messages, template: template) } catch let e as ChatTemplateError {
        if case .noTemplate = e { throw UsageError(description: "\(e) (on the command line: --template NAME)") }
        throw e
    }
}

func generateCommand(_ o: GenerateCommand) throws {
    var opts = try o.generation.options()
    let m = try o.model.load()
    opts.interventions = try o.controlVectors.interventions(for: m)
    try setPrecision(m, o.precision)
    let prompt: [Int32]
    if let ids = try tokenIDs(o.ids, flag: "ids") {
        guard o.text.isEmpty else { throw UsageError(description: "give either --ids or TEXT, not both") }
        prompt = ids
    } else {
        var text = try inputText(o.text)!
        if o.chat {
            var msgs: [ChatMessage] = []
            if let s = o.system { msgs.append(ChatMessage(role: "system", content: s)) }
            msgs.append(ChatMessage(role: "user", content: text))
            text = try render(m, msgs, template: try chatTemplate(o.template))
        }
        prompt = m.tokenize(text, special: o.special || o.chat)
    }
    try m.validate(prompt)
    let json = o.json
    let started = Date()
    let r = try m.generate(prompt, options: opts) { tok in
        if !json { emit(tok.text) }
        return true
    }
    recordCommandCall("generate", args: Array(CommandLine.arguments.dropFirst(2)), off: o.noStore,
                      CallRecord(kind: "generate", model: m.file.path, prompt: m.detokenize(prompt, special: true), promptIDs: prompt,
                                 options: CallRecord.json(opts.recordFields.merging(["precision": m.transformer.precision.rawValue]) { $1 }),
                                 outputs: [callOutput(r, m)], started: started,
                                 seconds: Date().timeIntervalSince(started)))
    if json {
        let top: [[[String: Any]]] = r.tokens.map { tok in
            tok.top.map { alt -> [String: Any] in
                ["id": Int(alt.id), "piece": pieces(m, [alt.id])[0], "logprob": Double(alt.logprob)]
            }
        }
        var out: [String: Any] = ["prompt_ids": prompt.map(Int.init), "ids": r.ids.map(Int.init), "text": r.text]
        out["logprobs"] = r.tokens.map { Double($0.logprob) }
        out["top"] = top
        out["finish"] = r.finish.rawValue
        if let e = r.endToken { out["end_token"] = Int(e) }
        out["usage"] = ["prompt": r.promptTokens, "completion": r.ids.count, "cached": r.cachedTokens]
        out["seconds"] = r.seconds
        printJSON(out)
    } else {
        // The stop matcher may hold back text until the end: what the stream did not print is printed now.
        emit(unstreamed(r) + "\n")
    }
}

/// What the stop matcher held back until the end (printed after the streamed tokens).
func unstreamed(_ r: Generation) -> String {
    let streamed = r.tokens.map(\.text).joined()
    return r.text.count > streamed.count ? String(r.text.dropFirst(streamed.count)) : ""
}

func scoreCommand(_ o: ScoreCommand) throws {
    let m = try o.model.load()
    try setPrecision(m, o.precision)
    let prefix: [Int32], cont: [Int32]
    if let p = try tokenIDs(o.prefixIDs, flag: "prefix-ids") { prefix = p } else if let p = o.prefix {
        prefix = m.tokenize(p, special: o.special)
    } else { throw UsageError(description: "score needs --prefix TEXT or --prefix-ids IDS") }
    let contText = try o.continuation ?? inputText(o.text, required: false)
    if let c = try tokenIDs(o.ids, flag: "ids") { cont = c } else if let c = contText {
        cont = m.tokenize(c, special: o.special, addSpecial: false)
    } else { throw UsageError(description: "score needs --continuation TEXT or --ids IDS") }
    let started = Date()
    let x = try o.controlVectors.interventions(for: m)
    let s = try m.score(prefix: prefix, continuation: cont, interventions: x)
    recordCommandCall("score", args: Array(CommandLine.arguments.dropFirst(2)), off: o.noStore,
                      CallRecord(kind: "score", model: m.file.path, prompt: m.detokenize(prefix, special: true), promptIDs: prefix,
                                 options: CallRecord.json(["precision": m.transformer.precision.rawValue].merging(x.isEmpty ? [:] : ["intervene": LuaHost.recordFields(x)]) { $1 }),
                                 outputs: [callOutput(s, m)], result: CallRecord.json(["sum": s.sum, "mean": s.mean]),
                                 started: started, seconds: Date().timeIntervalSince(started)))
    if o.json {
        var out: [String: Any] = ["prefix_ids": prefix.map(Int.init), "ids": s.ids.map(Int.init)]
        out["pieces"] = pieces(m, s.ids)
        out["logprobs"] = s.logprobs.map(Double.init)
        out["sum"] = s.sum
        out["mean"] = s.mean
        printJSON(out)
    } else {
        for (id, lp) in zip(s.ids, s.logprobs) {
            print(String(format: "%8d  %10.4f  %@", id, lp, pieces(m, [id])[0].debugDescription))
        }
        print(String(format: "sum %.4f  mean %.4f  (%d tokens)", s.sum, s.mean, s.ids.count))
    }
}

func infoCommand(_ o: InfoCommand) throws {
    let m = try o.model.load(threads: 1)
    var info: [String: Any] = [:]
    for (key, value) in ModelInfo.fields(m) { info[key] = value.json }
    if o.json { printJSON(info); return }
    for k in info.keys.sorted() { print("\(k): \(info[k]!)") }
    if o.all { for k in m.file.metadataKeys { print("  \(k) = \(m.file.metadata[k]!)") } }
}
