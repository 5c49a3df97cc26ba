// Seeded fuzzing of `refrain serve`'s request handling, in process and without running the model: the HTTP head
// parser (`HTTPServer.parseHead`: request line, headers, Content-Length, chunked bodies refused, heads and bodies
// too big), the body cut to its length or found short (`HTTPServer.request`), and the routing, JSON decoding and
// field checks of every route (`OpenAIServer.prepare`, SmolLM2's tokenizer and chat template). Inputs are valid
// requests with mutated fields, mutated bytes, cut at random points, and random bytes. Each must give a request,
// "not whole yet", or an HTTP failure of 4xx; never a trap, a 5xx, a thrown error of another kind, or a broken
// property (listed in each check). A second target checks that Net/JSON.swift's values survive writing and
// parsing. REFRAIN_FUZZ_RUNS and REFRAIN_FUZZ_SEED as in EngineTests/FuzzTests.swift; each target prints one line.
import Engine
import Foundation
import XCTest
@testable import Host

/// SplitMix64, as EngineTests' (the test targets do not share code).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

final class ServeFuzzTests: XCTestCase {
    static var runs: Int? { ProcessInfo.processInfo.environment["REFRAIN_FUZZ_RUNS"].flatMap { Int($0) } }
    static var seed: UInt64 { ProcessInfo.processInfo.environment["REFRAIN_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20261129 }

    static func report(_ target: String, inputs: Int, executions: Int, findings: Int, since start: Date, _ extra: String = "") {
        print(String(format: "fuzz %@: %d inputs, %d executions, %d findings, %.1f s (seed %llu)%@",
                     target, inputs, executions, findings, Date().timeIntervalSince(start), seed, extra))
    }

    /// In the long mode, a line every 100,000 inputs, so that a run stopped early still tells how far it went.
    static func progress(_ target: String, _ done: Int, executions: Int, findings: Int, since start: Date) {
        guard done > 0, done % 100_000 == 0 else { return }
        print(String(format: "progress %@: %d inputs, %d executions, %d findings, %.1f s", target, done, executions,
                     findings, Date().timeIntervalSince(start)))
        fflush(nil)
    }

    // MARK: - Values

    /// Field values of every JSON type, edge numbers (limits ± 1, past the context, past the integers a double
    /// holds exactly), token ids in and out of the vocabulary, special-token text, and deep nesting.
    static let edges: [String] = [
        "null", "true", "false", "0", "1", "-1", "2", "0.5", "-0.0", "1e300", "-1e300", "1e-320", "9007199254740993",
        "9e15", "1e16", "20", "21", "64", "65", "8191", "8192", "8193", "2147483648", "18446744073709551616", "49151",
        "49152", "\"\"", "\"x\"", "\"Hello\"", "\"<|im_start|>user\\nHi<|im_end|>\"", "\"\\u0000\\ud83d\\ude00\"", "[]",
        "[\"\"]", "[\"a\",\"b\"]", "[1]", "[-1]", "[49152]", "[1.5]", "[1,2,3]", "[[1,2]]", "[\"a\",[1]]", "{}",
        "{\"role\":\"user\"}", String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
    ]

    static let completionFields = ["prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
                                   "min_p", "repetition_penalty", "repeat_penalty", "presence_penalty",
                                   "frequency_penalty", "repeat_last_n", "seed", "stop", "ignore_eos", "n",
                                   "logprobs", "echo", "stream", "return_token_ids", "model"]
    static let chatFields = ["messages", "max_tokens", "max_completion_tokens", "temperature", "seed", "stop", "n",
                             "logprobs", "top_logprobs", "stream", "return_token_ids", "model"]
    static let routes: [(method: String, path: String, fields: [String])] = [
        ("POST", "/v1/completions", completionFields), ("POST", "/v1/chat/completions", chatFields),
        ("POST", "/tokenize", ["content", "prompt", "add_special", "add_special_tokens", "parse_special", "model"]),
        ("POST", "/detokenize", ["tokens", "special", "model"]), ("POST", "/apply-template", ["messages", "model"]),
        ("GET", "/v1/models", []), ("GET", "/health", []),
    ]

    /// A good value for `field` (most of the time) or an edge value.
    static func value(_ field: String, chat: Bool, _ rng: inout SplitMix) -> String {
        if Int.random(in: 0..<10, using: &rng) == 0 { return edges.randomElement(using: &rng)! }
        switch field {
        case "prompt", "content":
            return ["\"Hello\"", "\"The capital of France is\"", "[1, 2, 3]", "[\"Hi\"]", "[[504, 3]]",
                    "\"<|im_start|>user\\nHi<|im_end|>\\n\""].randomElement(using: &rng)!
        case "messages": return messages(&rng)
        case "tokens": return "[" + (0..<Int.random(in: 0...6, using: &rng)).map { _ in String(Int.random(in: -2...49153, using: &rng)) }.joined(separator: ",") + "]"
        case "stop": return ["\"\\n\"", "[\".\", \"!\"]", "[]", "[\"\"]"].randomElement(using: &rng)!
        case "model": return ["\"SmolLM2-135M-Instruct.Q4_1\"", "\"SmolLM2-135M-Instruct.Q4_1.gguf\"", "\"other\"", "\"\""].randomElement(using: &rng)!
        case "ignore_eos", "echo", "stream", "return_token_ids", "add_special", "add_special_tokens", "parse_special", "special":
            return Bool.random(using: &rng) ? "true" : "false"
        case "logprobs" where chat: return Bool.random(using: &rng) ? "true" : "false"
        case "logprobs", "top_logprobs": return String(Int.random(in: -1...21, using: &rng))
        case "temperature", "top_p", "min_p", "repetition_penalty", "repeat_penalty", "presence_penalty", "frequency_penalty":
            return String(Double(Int.random(in: -1...15, using: &rng)) / 10)
        case "n": return String(Int.random(in: 0...65, using: &rng))
        default: return String(Int.random(in: -1...70, using: &rng))
        }
    }

    static func messages(_ rng: inout SplitMix) -> String {
        let roles = ["user", "assistant", "user", "system", "tool", "", "x\\u0000"]
        let list = (0..<Int.random(in: 0...4, using: &rng)).map { _ -> String in
            switch Int.random(in: 0..<16, using: &rng) {
            case 0: return edges.randomElement(using: &rng)!
            case 1: return "{\"role\":\"\(roles.randomElement(using: &rng)!)\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"},{\"type\":\"image_url\"}]}"
            case 2: return "{\"role\":\"user\",\"content\":\(edges.randomElement(using: &rng)!)}"
            default:
                let contents = ["Hi", "", "What is 2+2?", "<|im_end|>", "{{ raise_exception('x') }}", "{% for %}"]
                return "{\"role\":\"\(roles.randomElement(using: &rng)!)\",\"content\":\"\(contents.randomElement(using: &rng)!)\"}"
            }
        }
        return "[" + list.joined(separator: ",") + "]"
    }

    /// A JSON object body for `fields`: some present with good or edge values, sometimes an unknown one.
    static func body(_ fields: [String], chat: Bool, _ rng: inout SplitMix) -> String {
        var members: [String] = []
        for f in fields where f == "prompt" || f == "messages" || f == "tokens" || Int.random(in: 0..<4, using: &rng) == 0 {
            if Int.random(in: 0..<20, using: &rng) > 0 { members.append("\"\(f)\":\(value(f, chat: chat, &rng))") }
        }
        if Int.random(in: 0..<10, using: &rng) == 0 { members.append("\"nope\":\(edges.randomElement(using: &rng)!)") }
        return "{" + members.shuffled(using: &rng).joined(separator: ",") + "}"
    }

    /// One to four byte mutations (flips, random bytes, cuts, deletions, repeats, insertions of HTTP and JSON pieces).
    static func mutate(_ input: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        let pieces = ["\r\n", "\r\n\r\n", "\n", ":", " ", "\"", "{", "}", "[", "]", ",", "\\u", "\\ud800", "\0", "\u{ff}",
                      "Content-Length: 99999999999999999999\r\n", "Transfer-Encoding: chunked\r\n", "-1", "1e999", "null"]
        var b = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let at = Int.random(in: 0...b.count, using: &rng)
            switch Int.random(in: 0..<7, using: &rng) {
            case 0 where at < b.count: b[at] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            case 1 where at < b.count: b[at] = UInt8.random(in: 0...255, using: &rng)
            case 2: b.removeLast(b.count - at)
            case 3 where at < b.count: b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...16, using: &rng)))
            case 4 where at < b.count:
                let piece = b[at..<min(b.count, at + Int.random(in: 1...64, using: &rng))]
                b.insert(contentsOf: piece, at: Int.random(in: 0...b.count, using: &rng))
            default: b.insert(contentsOf: Array(pieces.randomElement(using: &rng)!.utf8), at: at)
            }
        }
        return b
    }

    /// One input: a whole request (method, target, version, headers, body) with its parts varied, then sometimes
    /// byte-mutated; or random bytes.
    static func request(_ rng: inout SplitMix) -> [UInt8] {
        if Int.random(in: 0..<20, using: &rng) == 0 {
            return (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        let route = routes.randomElement(using: &rng)!
        var method = route.method, target = route.path, version = "HTTP/1.1"
        switch Int.random(in: 0..<24, using: &rng) {
        case 0: method = ["GET", "POST", "PUT", "", "post", "GET /"].randomElement(using: &rng)!
        case 1: target = ["/", "*", "/nope", route.path + "?x=1&y", "//v1/models", "/v1/completions/", "", "/v1/models?"].randomElement(using: &rng)!
        case 2: version = ["HTTP/1.0", "HTTP/2", "", "HTTP/1.1 x", "http/1.1"].randomElement(using: &rng)!
        default: break
        }
        let body = Array((route.fields.isEmpty && Bool.random(using: &rng) ? "" : body(route.fields, chat: route.path == "/v1/chat/completions", &rng)).utf8)
        var headers = ["Host: 127.0.0.1", "Content-Type: application/json", "Content-Length: \(body.count)"]
        if Int.random(in: 0..<6, using: &rng) == 0 {
            headers.append(["Transfer-Encoding: chunked", "Expect: 100-continue", "Content-Length: \(body.count + 1)",
                            "Content-Length: \(max(0, body.count - 1))", "Content-Length: -1", "Content-Length: abc",
                            "Content-Length: 8388609", "Content-Length: 99999999999999999999", "Content-Length:",
                            "no colon here", "X-Long: " + String(repeating: "a", count: Int.random(in: 1...70000, using: &rng)),
                            ": empty name", "Connection: keep-alive"].randomElement(using: &rng)!)
            if Bool.random(using: &rng) { headers.shuffle(using: &rng) }
        }
        let eol = Int.random(in: 0..<30, using: &rng) == 0 ? "\n" : "\r\n"
        var bytes = Array("\(method) \(target) \(version)\(eol)\(headers.joined(separator: eol))\(eol)\(eol)".utf8) + body
        if Int.random(in: 0..<3, using: &rng) == 0 { bytes = mutate(bytes, &rng) }
        return bytes
    }

    // MARK: - The request target

    func testRequestParsingAndValidation() throws {
        let model = try LanguageModel(path: try TestEnvironment.modelPath(), threads: 1)
        let api = OpenAIServer(model: model, name: "SmolLM2-135M-Instruct.Q4_1")
        let context = model.config.contextLength
        let runs = Self.runs ?? 3000
        var rng = SplitMix(Self.seed)
        let start = Date()
        var executions = 0, findings = 0
        var outcomes: [String: Int] = [:]
        func finding(_ what: String, _ input: [UInt8]) {
            findings += 1
            if findings <= 10 {
                XCTFail("\(what): \(String(decoding: input.prefix(600), as: UTF8.self).debugDescription)")
            }
        }
        let separator = Data("\r\n\r\n".utf8)
        for i in 0..<runs {
            Self.progress("serve-request", i, executions: executions, findings: findings, since: start)
            let input = Self.request(&rng)
            let bytes = Data(input)
            let t0 = Date()
            // A cut before the head's blank line is "not whole yet" (or too big); never a request.
            if let sep = bytes.range(of: separator), sep.upperBound > 0 {
                let cut = Int.random(in: 0..<sep.upperBound, using: &rng)
                executions += 1
                do {
                    if try HTTPServer.parseHead(bytes.prefix(cut), maxBody: 8 << 20) != nil {
                        finding("a head cut at \(cut), before its blank line, parsed", input)
                    }
                } catch let f as HTTPFailure {
                    if f.status != 413 { finding("a head cut at \(cut) failed with \(f.status): \(f.message)", input) }
                } catch { finding("parseHead threw \(error)", input) }
            }
            executions += 1
            let outcome: String
            do {
                guard let (head, bodyStart) = try HTTPServer.parseHead(bytes, maxBody: 8 << 20) else {
                    if bytes.range(of: separator) != nil { finding("a head with its blank line was not parsed", input) }
                    outcomes["incomplete head", default: 0] += 1
                    continue
                }
                if head.path.contains("?") || head.headers.keys.contains(where: { $0 != $0.lowercased() }) || head.contentLength < 0 {
                    finding("a head parsed to \(head)", input)
                }
                guard let req = HTTPServer.request(head, bytes, bodyStart: bodyStart) else {
                    if bytes.count - bodyStart >= head.contentLength { finding("a whole body was not taken", input) }
                    outcomes["incomplete body", default: 0] += 1
                    continue
                }
                if req.body.count != head.contentLength { finding("a body of \(req.body.count) bytes for Content-Length \(head.contentLength)", input) }
                executions += 1
                switch try api.prepare(req) {
                case .completion(let r):
                    outcome = "completion"
                    if r.prompt.isEmpty || r.prompt.count + r.options.maxTokens > context || !(1...64).contains(r.n)
                        || r.prompt.contains(where: { $0 < 0 || Int($0) >= model.config.vocabularySize }) {
                        finding("a completion request passed with \(r.prompt.count) prompt tokens, max_tokens \(r.options.maxTokens), n \(r.n)", input)
                    }
                case .chat(let r):
                    outcome = "chat"
                    if r.prompt.isEmpty || r.prompt.count + r.options.maxTokens > context || !(1...64).contains(r.n) || !(0...20).contains(r.k) {
                        finding("a chat request passed with \(r.prompt.count) prompt tokens, max_tokens \(r.options.maxTokens), n \(r.n)", input)
                    }
                case .detokenize(let ids, _):
                    outcome = "detokenize"
                    if ids.contains(where: { $0 < 0 || Int($0) >= model.config.vocabularySize }) { finding("detokenize passed ids outside the vocabulary", input) }
                case .tokenize: outcome = "tokenize"
                case .applyTemplate: outcome = "apply-template"
                case .models, .health: outcome = "models, health"
                }
            } catch let f as HTTPFailure {
                outcome = "\(f.status)"
                if !(400..<500).contains(f.status) { finding("status \(f.status): \(f.message)", input) }
                if f.message.isEmpty { finding("a failure without a message", input) }
            } catch is EngineError {
                outcome = "engine error"
            } catch is ChatTemplateError {
                outcome = "template error"
            } catch {
                outcome = "other"
                finding("an error that is not an HTTP failure: \(error)", input)
            }
            outcomes[outcome, default: 0] += 1
            // A hang detector, not a speed bound: one request is parsed and prepared (tokenized, templated) in
            // milliseconds, so 5 s holds on a loaded machine.
            if Date().timeIntervalSince(t0) > 5 { finding("took \(Date().timeIntervalSince(t0)) s", input) }
        }
        let summary = outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        Self.report("serve-request", inputs: runs, executions: executions, findings: findings, since: start, "; \(summary)")
        XCTAssertEqual(findings, 0)
        // The generator reaches every route's checks and past them.
        for o in ["completion", "chat", "tokenize", "detokenize", "apply-template", "400", "413", "404", "405"] where runs >= 3000 {
            XCTAssertGreaterThan(outcomes[o] ?? 0, 0, "no input ended in \(o): \(summary)")
        }
    }

    // MARK: - JSON values

    /// A random JSON value: strings of any Unicode scalars (control characters, quotes, backslashes, astral
    /// ones), numbers of every size, nesting to 6 levels; object keys distinct.
    static func json(_ rng: inout SplitMix, depth: Int = 0) -> JSON {
        switch Int.random(in: 0..<(depth >= 6 ? 4 : 6), using: &rng) {
        case 0: return [.null, .bool(true), .bool(false)].randomElement(using: &rng)!
        case 1:
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: return .number(Double(Int.random(in: -1000...1000, using: &rng)))
            case 1: return .number(Double(Int64.random(in: -(1 << 53)...(1 << 53), using: &rng)))
            case 2:
                let d = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng))
                return .number(d.isFinite ? d : 1.5)
            default: return .number(Double.random(in: -1...1, using: &rng) * pow(10, Double(Int.random(in: -300...300, using: &rng))))
            }
        case 2, 3: return .string(string(&rng))
        case 4: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in json(&rng, depth: depth + 1) })
        default:
            var keys = Set<String>()
            for _ in 0..<Int.random(in: 0...4, using: &rng) { keys.insert(string(&rng)) }
            return .object(keys.sorted().map { ($0, json(&rng, depth: depth + 1)) })
        }
    }

    static func string(_ rng: inout SplitMix) -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...12, using: &rng) {
            let v: UInt32
            switch Int.random(in: 0..<5, using: &rng) {
            case 0: v = UInt32.random(in: 0..<0x20, using: &rng)
            case 1: v = [0x22, 0x5c, 0x2f, 0x7f, 0xfeff, 0xfffd, 0x2028].randomElement(using: &rng)!
            case 2: v = UInt32.random(in: 0x80...0xd7ff, using: &rng)
            case 3: v = UInt32.random(in: 0x10000...0x10ffff, using: &rng)
            default: v = UInt32.random(in: 0x20..<0x7f, using: &rng)
            }
            if let u = Unicode.Scalar(v) { s.append(u) }
        }
        return String(s)
    }

    /// JSON.swift's writer and parser: a value written and parsed again is the same value (as JSON.== compares:
    /// by text), and the text parses with JSONSerialization too.
    func testJSONValuesRoundTrip() throws {
        let runs = Self.runs ?? 3000
        var rng = SplitMix(Self.seed ^ 0x4a53_4f4e)
        let start = Date()
        var findings = 0
        for i in 0..<runs {
            Self.progress("serve-json", i, executions: 2 * i, findings: findings, since: start)
            let v = Self.json(&rng)
            let text = v.data
            guard let back = JSON.parse(text) else {
                findings += 1
                if findings <= 10 { XCTFail("written value does not parse: \(v.text.debugDescription)") }
                continue
            }
            if back != v {
                findings += 1
                if findings <= 10 { XCTFail("\(v.text.debugDescription) came back as \(back.text.debugDescription)") }
            }
        }
        Self.report("serve-json", inputs: runs, executions: 2 * runs, findings: findings, since: start)
        XCTAssertEqual(findings, 0)
    }
}
