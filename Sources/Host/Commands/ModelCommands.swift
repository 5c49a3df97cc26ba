// refrain's command line: `refrain` (the Lua REPL on the default model, in REPL/), `refrain tokenize`,
// `refrain generate`, `refrain score`, `refrain bench`, `refrain info`, `refrain serve`, `refrain run FILE.lua`, `refrain -e CODE`.
import CLua
import Engine
import Foundation

let usage = """
usage: refrain [COMMAND] [OPTIONS] [TEXT | -]

commands:
  (none)      the Lua REPL on the model (history in $REFRAIN_HOME/history)
  tokenize    print the token ids of TEXT (--special parses control tokens, --no-bos adds no BOS)
  generate    continue TEXT (or --ids 1,2,3); --chat wraps TEXT as a user message in the chat template
  score       log-probabilities of --continuation TEXT after --prefix TEXT (or --prefix-ids / --ids)
  bench       prompt processing and decode speed (tokens/s), median of --runs runs, and peak memory
  info        the model's architecture, sizes and metadata
  run         run a Lua script: refrain run [--model PATH] [--threads N] [--no-store] FILE.lua [ARGS...]
              (ARGS in `arg`; every model call is recorded in the run store unless --no-store or REFRAIN_STORE=0)
  log         the run store: runs, calls, --search TEXT, show CALL, export RUN (refrain log --help)
  replay      run a recorded call again: refrain replay CALL (exit 0 when it reproduced token for token)
  serve       an OpenAI-compatible HTTP server over the model: refrain serve [--model PATH] [--host 127.0.0.1]
              [--port 8080] [--threads N] [--name ID] [--read-timeout 30] (/v1/models, /v1/completions,
              /v1/chat/completions, /tokenize, /detokenize, /apply-template; --port 0 picks a free port, printed on
              standard error; a request not received whole in --read-timeout seconds gets a 408)
  -e CODE     run Lua code (also: a Lua script piped to refrain on standard input)
  --version   the program's version

sandbox and limits (run, -e, standard input and the REPL):
\(SandboxOptions.usage)

common options:
  --model PATH    a GGUF file (default: $REFRAIN_HOME/models/SmolLM2-135M-Instruct.Q4_1.gguf,
                  REFRAIN_HOME defaulting to ~/.cache/refrain)
  --threads N     threads (default: the number of cores)
  --json          machine-readable output
  --no-store      (REPL, run, -e) record no model calls in the run store ($REFRAIN_HOME/runs.sqlite, or
                  REFRAIN_STORE=PATH; REFRAIN_STORE=0 turns it off too)
  TEXT or -       the text, or '-' to read it from standard input

generate options:
  --max-tokens N (128)  --temperature T (0.8; 0 is greedy)  --top-k K (40)  --top-p P (0.95)  --min-p P (0.05)
  --repeat-penalty R (1.0)  --repeat-last-n N (64)  --seed S (0)  --stop STRING (repeatable)
  --logprobs K (top-K alternatives per token in --json output)  --ignore-eos  --special  --chat  --system TEXT
  --template NAME (a chat template family when the file has none: chatml, gemma, ...)
  --precision quantized|exact (exact: f32 weights and activations, slow; generate and score)

bench options:
  --threads 1,2 (list)  --runs N (5)  --pp N (128)  --tg N (128)  --context N (decode after N cached tokens)
  --sample N: strategy workloads instead: sample(prompt, N, max_tokens=--tg 64) against N separate generate
  calls on the same --pp-token prompt, and a second call sharing a --prefix N (500) token prefix
"""

func defaultModelPath() -> String {
    let home = ProcessInfo.processInfo.environment["REFRAIN_HOME"]
        ?? (NSHomeDirectory() + "/.cache/refrain")
    return home + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
}

func fail(_ msg: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(("refrain: error: " + msg + "\n").data(using: .utf8)!)
    exit(code)
}

func loadModel(_ o: Options, threads: Int? = nil) throws -> LanguageModel {
    let path = o.value("model") ?? defaultModelPath()
    if o.value("model") == nil && !FileManager.default.fileExists(atPath: path) {
        throw UsageError(description: "the default model is not at \(path): run ./setup.sh first, or give --model PATH")
    }
    return try LanguageModel(path: path, threads: try threads ?? o.int("threads", LanguageModel.defaultThreads, min: 1))
}

/// The text argument: the positional words joined, or standard input for '-'.
func inputText(_ o: Options, required: Bool = true) throws -> String? {
    if o.positional == ["-"] {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        guard let s = String(data: data, encoding: .utf8) else { throw UsageError(description: "standard input is not valid UTF-8") }
        return s
    }
    if o.positional.isEmpty {
        if required { throw UsageError(description: "no text given (pass TEXT, or - to read standard input)") }
        return nil
    }
    return o.positional.joined(separator: " ")
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

func tokenizeCommand(_ args: [String]) throws {
    let o = try Options(args, valued: ["model", "threads"], flags: ["json", "special", "no-bos"])
    let text = try inputText(o)!
    let m = try loadModel(o, threads: 1)
    let ids = m.tokenize(text, special: o.has("special"), addSpecial: o.has("no-bos") ? false : nil)
    if o.has("json") {
        printJSON(["ids": ids.map(Int.init), "pieces": pieces(m, ids)])
    } else {
        print(ids.map(String.init).joined(separator: " "))
    }
}

func generationOptions(_ o: Options) throws -> GenerationOptions {
    var g = GenerationOptions()
    g.maxTokens = try o.int("max-tokens", 128, min: 0)
    g.sampling.temperature = try o.float("temperature", g.sampling.temperature)
    g.sampling.topK = try o.int("top-k", g.sampling.topK, min: 0)
    g.sampling.topP = try o.float("top-p", g.sampling.topP)
    g.sampling.minP = try o.float("min-p", g.sampling.minP)
    g.sampling.repetitionPenalty = try o.float("repeat-penalty", g.sampling.repetitionPenalty)
    g.sampling.penaltyLastN = try o.int("repeat-last-n", g.sampling.penaltyLastN, min: 0)
    if let s = o.value("seed") {
        guard let v = UInt64(s) else { throw UsageError(description: "--seed expects a non-negative integer, got '\(s)'") }
        g.sampling.seed = v
    }
    g.stop = o.all("stop")
    g.topLogprobs = try o.int("logprobs", 0, min: 0)
    g.ignoreEOS = o.has("ignore-eos")
    return g
}

/// `--precision quantized|exact`: how matrix products are computed.
func setPrecision(_ m: LanguageModel, _ o: Options) throws {
    guard let p = o.value("precision") else { return }
    guard let v = Precision(rawValue: p) else {
        throw UsageError(description: "--precision expects quantized or exact, got '\(p)'")
    }
    m.transformer.precision = v
}

func chatTemplate(_ o: Options) throws -> ChatTemplate? {
    guard let name = o.value("template") else { return nil }
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

func generateCommand(_ args: [String]) throws {
    let o = try Options(args, valued: ["model", "threads", "max-tokens", "temperature", "top-k", "top-p", "min-p",
                                       "repeat-penalty", "repeat-last-n", "seed", "stop", "logprobs", "ids", "system", "template", "precision"],
                        flags: ["json", "special", "chat", "ignore-eos", "no-store"])
    let opts = try generationOptions(o)
    let m = try loadModel(o)
    try setPrecision(m, o)
    let prompt: [Int32]
    if let ids = try o.ids("ids") {
        guard o.positional.isEmpty else { throw UsageError(description: "give either --ids or TEXT, not both") }
        prompt = ids
    } else {
        var text = try inputText(o)!
        if o.has("chat") {
            var msgs: [ChatMessage] = []
            if let s = o.value("system") { msgs.append(ChatMessage(role: "system", content: s)) }
            msgs.append(ChatMessage(role: "user", content: text))
            text = try render(m, msgs, template: try chatTemplate(o))
        }
        prompt = m.tokenize(text, special: o.has("special") || o.has("chat"))
    }
    try m.validate(prompt)
    let json = o.has("json")
    let started = Date()
    let r = try m.generate(prompt, options: opts) { tok in
        if !json { emit(tok.text) }
        return true
    }
    recordCommandCall("generate", args: args, off: o.has("no-store"),
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

func scoreCommand(_ args: [String]) throws {
    let o = try Options(args, valued: ["model", "threads", "prefix", "continuation", "prefix-ids", "ids", "precision"],
                        flags: ["json", "special", "no-store"])
    let m = try loadModel(o)
    try setPrecision(m, o)
    let prefix: [Int32], cont: [Int32]
    if let p = try o.ids("prefix-ids") { prefix = p } else if let p = o.value("prefix") {
        prefix = m.tokenize(p, special: o.has("special"))
    } else { throw UsageError(description: "score needs --prefix TEXT or --prefix-ids IDS") }
    let contText = try o.value("continuation") ?? inputText(o, required: false)
    if let c = try o.ids("ids") { cont = c } else if let c = contText {
        cont = m.tokenize(c, special: o.has("special"), addSpecial: false)
    } else { throw UsageError(description: "score needs --continuation TEXT or --ids IDS") }
    let started = Date()
    let s = try m.score(prefix: prefix, continuation: cont)
    recordCommandCall("score", args: args, off: o.has("no-store"),
                      CallRecord(kind: "score", model: m.file.path, prompt: m.detokenize(prefix, special: true), promptIDs: prefix,
                                 options: CallRecord.json(["precision": m.transformer.precision.rawValue]),
                                 outputs: [callOutput(s, m)], result: CallRecord.json(["sum": s.sum, "mean": s.mean]),
                                 started: started, seconds: Date().timeIntervalSince(started)))
    if o.has("json") {
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

func infoCommand(_ args: [String]) throws {
    let o = try Options(args, valued: ["model"], flags: ["json", "all"])
    let m = try loadModel(o, threads: 1)
    let c = m.config
    var types: [String: Int] = [:]
    for t in m.file.tensors { types[t.type.description, default: 0] += 1 }
    var info: [String: Any] = ["path": m.file.path, "architecture": c.architecture.rawValue, "layers": c.layerCount]
    info["embedding"] = c.embeddingLength
    info["heads"] = c.headCount
    info["kv_heads"] = c.kvHeadCount
    info["head_dim"] = c.headDim
    info["feed_forward"] = c.feedForwardLength
    info["vocabulary"] = c.vocabularySize
    info["context"] = c.contextLength
    info["tensor_types"] = types
    info["file_bytes"] = m.file.fileSize
    info["chat_template"] = m.chatTemplate.map { $0.family.rawValue } ?? "none"
    if o.has("json") { printJSON(info); return }
    for k in info.keys.sorted() { print("\(k): \(info[k]!)") }
    if o.has("all") { for k in m.file.metadataKeys { print("  \(k) = \(m.file.metadata[k]!)") } }
}

// MARK: - Entry


var argv = Array(CommandLine.arguments.dropFirst())
if argv == ["--version"] || argv == ["version"] { print(refrainVersion); exit(0) }
requireCPUFeatures()
installBusErrorHandler()

let command = argv.first.flatMap { $0.hasPrefix("-") ? nil : $0 }
if command != nil { argv.removeFirst() }
// Lua without the REPL: `refrain -e CODE`, or a script on standard input when that is not a terminal.
if command == nil, !argv.contains("--help"), !argv.contains("-h"), argv.contains("-e") || isatty(0) == 0 {
    do { exit(try scriptEntry(argv)) } catch let e as UsageError {
        fail(e.description + "\n" + "see: refrain --help", code: 2)
    } catch { fail("\(error)") }
}
do {
    switch command {
    case nil:
        if argv.contains("--help") || argv.contains("-h") { print(usage) } else { try interactive(argv) }
    case "tokenize": try tokenizeCommand(argv)
    case "generate": try generateCommand(argv)
    case "score": try scoreCommand(argv)
    case "bench": try benchCommand(argv)
    case "info": try infoCommand(argv)
    case "run": exit(try runCommand(argv))
    case "serve": try serveCommand(argv)
    case "log": try logCommand(argv)
    case "replay": exit(try replayCommand(argv))
    case "help": print(usage)
    default: throw UsageError(description: "unknown command '\(command!)' (try refrain --help)")
    }
} catch let e as UsageError {
    fail(e.description + "\n" + "see: refrain --help", code: 2)
} catch let e as StoreCommandError {
    fail(e.description, code: 2)
} catch {
    fail("\(error)")
}
