// What `m.info` (Lua) and `refrain info` (the command line) say about a model: one list of fields, so that the two
// use the same keys.
import Engine
import Foundation

/// A model's shape and file, field by field, in the order `refrain info` prints them sorted.
enum ModelInfo {
    /// One field's value.
    enum Value {
        case int(Int), string(String), counts([String: Int])
        var json: Any {
            switch self {
            case .int(let i): i
            case .string(let s): s
            case .counts(let c): c
            }
        }
    }

    /// The fields of `m.info` (and `refrain info`), less `sha256`, which Lua computes on first use.
    static func fields(_ m: LanguageModel) -> [(key: String, value: Value)] {
        let c = m.config
        var types: [String: Int] = [:]
        for t in m.file.tensors { types[t.type.description, default: 0] += 1 }
        var f: [(String, Value)] = [
            ("path", .string(m.file.path)),
            ("name", .string(m.file.string("general.name") ?? URL(fileURLWithPath: m.file.path).lastPathComponent)),
            ("arch", .string(c.architecture.rawValue)), ("layers", .int(c.layerCount)), ("heads", .int(c.headCount)),
            ("kv_heads", .int(c.kvHeadCount)), ("head_dim", .int(c.headDim)), ("embedding", .int(c.embeddingLength)),
            ("feed_forward", .int(c.feedForwardLength)), ("context", .int(c.contextLength)),
            ("vocab", .int(c.vocabularySize)), ("file_bytes", .int(m.file.fileSize)), ("types", .counts(types)),
            ("chat_template", .string(m.chatTemplate?.family.rawValue ?? "none")),
        ]
        if let b = m.tokenizer.bos { f.append(("bos", .int(Int(b)))) }
        if let e = m.tokenizer.eos { f.append(("eos", .int(Int(e)))) }
        return f.map { (key: $0.0, value: $0.1) }
    }
}
