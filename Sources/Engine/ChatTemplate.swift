// Chat templates: recognise a model's `tokenizer.chat_template` by its source text and render conversations natively.
//
// No Jinja interpreter is involved. A template is sorted into a known family by the control tokens its source
// mentions (the approach llama.cpp takes); the family's layout is then written out in Swift. What a template
// contributes beyond its family, such as the default system message a ChatML template inserts, is read out of the
// template source.

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// `"system"`, `"user"` or `"assistant"`.
    public var role: String
    /// The message text.
    public var content: String

    /// Creates a message with the given role and text.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// Why a chat template could not be chosen or a conversation could not be rendered.
public enum ChatTemplateError: Error, Equatable, CustomStringConvertible {
    /// The model file carries no `tokenizer.chat_template`; `file` names it.
    case noTemplate(file: String)
    /// The template source matches no known family; `start` is the beginning of the source.
    case unrecognised(start: String)
    /// A family name given by the user is not one of ``ChatTemplate/Family``.
    case unknownFamily(String)
    /// A message has a role the family cannot render.
    case unknownRole(role: String, index: Int, family: ChatTemplate.Family)
    /// The roles are in an order the family does not allow (e.g. Gemma's strict user/model alternation).
    case badOrder(String)
    /// There are no messages to render.
    case noMessages

    static let familyNames = ChatTemplate.Family.allCases.map(\.rawValue).joined(separator: ", ")

    /// A one-line explanation.
    public var description: String {
        switch self {
        case .noTemplate(let file):
            return "the model \(file) has no chat template (tokenizer.chat_template); pass one by family name"
                + " (\(Self.familyNames)), or send raw text without a template"
        case .unrecognised(let start):
            return "unrecognised chat template (known families: \(Self.familyNames)); it starts: \(start)"
        case .unknownFamily(let name):
            return "unknown chat template family '\(name)'; known: \(Self.familyNames)"
        case .unknownRole(let role, let index, let family):
            return "message \(index) has role '\(role)', which the \(family.rawValue) template cannot render"
                + " (roles: system, user, assistant)"
        case .badOrder(let why):
            return "bad message order: \(why)"
        case .noMessages:
            return "no messages to render"
        }
    }
}

/// A chat template: a known prompt layout, chosen from a model's template source or by name.
///
/// ``render(_:addGenerationPrompt:)`` never writes the beginning-of-sequence token: a template's leading
/// `{{ bos_token }}` is left to the tokenizer, which adds BOS when the model file's `tokenizer.ggml.add_bos_token`
/// says so (so BOS is not doubled). Everything else it writes, including control tokens such as `<|im_start|>`,
/// is text to be tokenized with special tokens parsed.
public struct ChatTemplate: Sendable {
    /// The prompt layouts the renderer knows.
    public enum Family: String, Sendable, CaseIterable {
        /// `<|im_start|>role\ncontent<|im_end|>\n` turns (SmolLM2, Qwen2.5, ...), with an optional default
        /// system message inserted when the conversation does not start with one.
        case chatml
        /// Gemma's `<start_of_turn>user\n...<end_of_turn>\n` turns; the assistant is `model`, a leading
        /// system message is folded into the first user turn, user and model must alternate, content is trimmed.
        case gemma
        /// Llama 3's `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`; content is trimmed. Llama
        /// 3.1–3.3's templates (recognised by their "Cutting Knowledge Date") always open with a system turn holding
        /// the knowledge cut-off and a date, then the system message: see ``ChatTemplate/llama3Date``. (Their tool
        /// layouts are not reproduced.)
        case llama3
        /// Phi-3's `<|role|>\ncontent<|end|>\n` turns (an empty system message is left out); without a generation
        /// prompt the text ends with `<|endoftext|>`.
        case phi3
        /// Zephyr's `<|role|>\ncontent</s>\n` turns.
        case zephyr
        /// Mistral's `[INST] user [/INST]assistant</s>`; a leading system message is prepended to the first user
        /// message, separated by a blank line; user and assistant must alternate.
        case mistral
    }

    /// The layout this template renders.
    public let family: Family
    /// The system message the template inserts when the conversation has none (only ``Family/chatml`` templates
    /// such as SmolLM2's and Qwen2.5's have one); `nil` when it inserts none.
    public let defaultSystem: String?
    /// Llama 3.1–3.3's dated system turn (``Family/llama3`` only): the date it writes, the templates' own fallback
    /// "26 Jul 2024" (llama.cpp's server writes today's date into Llama 3.2's; refrain keeps prompts reproducible);
    /// `nil` for Llama 3.0's template, which has no such turn.
    public var llama3Date: String? = nil
    /// Qwen3's reasoning layout (``Family/chatml``): an assistant message after the last user message is written
    /// with a `<think>` block (empty unless the message has one), earlier ones without theirs.
    public var thinking = false
    /// Whether a system message is allowed (Gemma 2's template refuses one; Gemma 3's folds it into the first turn).
    public var systemAllowed = true

    /// Recognises a template from its Jinja source (a model file's `tokenizer.chat_template`).
    ///
    /// - Throws: ``ChatTemplateError/unrecognised(start:)`` when the source matches no known family.
    public init(source: String) throws {
        func has(_ s: String) -> Bool { source.contains(s) }
        if has("<|im_start|>") {
            family = .chatml
            defaultSystem = ChatTemplate.chatmlDefaultSystem(in: source)
            thinking = has("</think>") && has("last_query_index")
        } else if has("<start_of_turn>") {
            family = .gemma
            defaultSystem = nil
            systemAllowed = !has("System role not supported")
        } else if has("<|start_header_id|>") && has("<|end_header_id|>") {
            family = .llama3
            defaultSystem = nil
            if has("Cutting Knowledge Date") { llama3Date = "26 Jul 2024" }
        } else if has("<|user|>") && has("<|assistant|>") && has("<|end|>") {
            family = .phi3
            defaultSystem = nil
        } else if has("<|user|>") && has("<|assistant|>") && !has("<|end|>") {
            family = .zephyr
            defaultSystem = nil
        } else if has("[INST]") && !has("<<SYS>>") {
            family = .mistral
            defaultSystem = nil
        } else {
            throw ChatTemplateError.unrecognised(start: ChatTemplate.excerpt(source))
        }
    }

    /// A template chosen by the user by family, e.g. for a model file without a template.
    ///
    /// - Parameter defaultSystem: the system message to insert when a conversation has none; honoured by
    ///   ``Family/chatml`` only (the other families have no such convention) and ignored otherwise.
    public init(family: Family, defaultSystem: String? = nil) {
        self.family = family
        self.defaultSystem = family == .chatml ? defaultSystem : nil
    }

    /// A template chosen by family name (one of ``Family``'s raw values, case-insensitive).
    ///
    /// - Throws: ``ChatTemplateError/unknownFamily(_:)`` naming the known families.
    public init(named name: String, defaultSystem: String? = nil) throws {
        guard let family = Family(rawValue: name.lowercased()) else { throw ChatTemplateError.unknownFamily(name) }
        self.init(family: family, defaultSystem: defaultSystem)
    }

    /// The template for a model file, given the file's `tokenizer.chat_template` (or `nil` when it has none).
    ///
    /// - Throws: ``ChatTemplateError/noTemplate(file:)`` when `source` is `nil` or blank, otherwise as
    ///   ``init(source:)``.
    public static func forModel(chatTemplate source: String?, file: String) throws -> ChatTemplate {
        guard let source, source.contains(where: { !$0.isWhitespace }) else {
            throw ChatTemplateError.noTemplate(file: file)
        }
        return try ChatTemplate(source: source)
    }

    /// Renders a conversation as prompt text.
    ///
    /// - Parameters:
    ///   - messages: the conversation; roles `system`, `user`, `assistant`.
    ///   - addGenerationPrompt: end with the opening of an assistant turn, so that the model's continuation is the
    ///     reply. (Mistral's layout has no such opening: the prompt already ends with `[/INST]`.)
    /// - Returns: the prompt text, without BOS (see the type's discussion).
    /// - Throws: ``ChatTemplateError`` for an empty conversation, an unknown role, or an order the family forbids.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> String {
        guard !messages.isEmpty else { throw ChatTemplateError.noMessages }
        for (i, m) in messages.enumerated() where !["system", "user", "assistant"].contains(m.role) {
            throw ChatTemplateError.unknownRole(role: m.role, index: i, family: family)
        }
        var out = ""
        switch family {
        case .chatml:
            if let defaultSystem, messages[0].role != "system" {
                out += "<|im_start|>system\n" + defaultSystem + "<|im_end|>\n"
            }
            let lastUser = messages.lastIndex { $0.role == "user" } ?? -1
            for (i, m) in messages.enumerated() {
                guard thinking, m.role == "assistant" else {
                    out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n"
                    continue
                }
                // Qwen3: the reasoning before `</think>` is split off; it is written back (in a think block) only
                // for an answer after the last user message, when it is the last message or has reasoning.
                var content = m.content, reasoning = ""
                if let end = content.range(of: "</think>", options: .backwards) {
                    let before = String(content[..<end.lowerBound])
                    reasoning = String(before.components(separatedBy: "<think>").last ?? "")
                    let trimmed = String(ChatTemplate.dropLeadingNewlines(reasoning))
                    reasoning = String(ChatTemplate.dropTrailingNewlines(trimmed))
                    content = String(ChatTemplate.dropLeadingNewlines(String(content[end.upperBound...])))
                }
                if i > lastUser && (i == messages.count - 1 || !reasoning.isEmpty) {
                    out += "<|im_start|>assistant\n<think>\n" + reasoning + "\n</think>\n\n" + content + "<|im_end|>\n"
                } else {
                    out += "<|im_start|>assistant\n" + content + "<|im_end|>\n"
                }
            }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }

        case .gemma:
            let (prefix, turns) = try alternatingTurns(messages)
            for (i, m) in turns.enumerated() {
                let role = m.role == "assistant" ? "model" : m.role
                out += "<start_of_turn>" + role + "\n" + (i == 0 ? prefix : "") + ChatTemplate.trim(m.content)
                    + "<end_of_turn>\n"
            }
            if addGenerationPrompt { out += "<start_of_turn>model\n" }

        case .llama3:
            var rest = messages[...]
            if let date = llama3Date {
                var system = ""
                if messages[0].role == "system" {
                    system = ChatTemplate.trim(messages[0].content)
                    rest = messages.dropFirst()
                }
                out += "<|start_header_id|>system<|end_header_id|>\n\n"
                    + "Cutting Knowledge Date: December 2023\nToday Date: " + date + "\n\n" + system + "<|eot_id|>"
            }
            for m in rest {
                out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + ChatTemplate.trim(m.content)
                    + "<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }

        case .phi3:
            for m in messages where !(m.role == "system" && m.content.isEmpty) {
                out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n"
            }
            out += addGenerationPrompt ? "<|assistant|>\n" : "<|endoftext|>"

        case .zephyr:
            for m in messages {
                out += "<|" + m.role + "|>\n" + m.content + "</s>\n"
            }
            if addGenerationPrompt { out += "<|assistant|>\n" }

        case .mistral:
            let (prefix, turns) = try alternatingTurns(messages)
            for (i, m) in turns.enumerated() {
                if m.role == "user" {
                    out += "[INST] " + (i == 0 ? prefix : "") + m.content + " [/INST]"
                } else {
                    out += m.content + "</s>"
                }
            }
        }
        return out
    }

    /// Splits off a leading system message (returned as a prefix for the first user turn, followed by a blank
    /// line) and checks that the rest alternates user, assistant, user, ... starting with user.
    private func alternatingTurns(_ messages: [ChatMessage]) throws -> (prefix: String, turns: ArraySlice<ChatMessage>) {
        var prefix = ""
        var turns = messages[...]
        if messages[0].role == "system" && !systemAllowed {
            throw ChatTemplateError.badOrder("this \(family.rawValue) template does not allow a system message")
        }
        if messages[0].role == "system" {
            prefix = messages[0].content + "\n\n"
            turns = messages.dropFirst()
        }
        for (i, m) in turns.enumerated() {
            let want = i % 2 == 0 ? "user" : "assistant"
            if m.role != want {
                let where_ = m.role == "system" ? "a system message is allowed only first" : "expected \(want)"
                throw ChatTemplateError.badOrder(
                    "the \(family.rawValue) template needs user and assistant turns to alternate, starting with"
                        + " user; message \(turns.startIndex + i) is \(m.role) (\(where_))")
            }
        }
        return (prefix, turns)
    }

    // MARK: - Reading the template source

    /// Finds the default system message in a ChatML template: a string literal that opens a system turn and runs
    /// on to `<|im_end|>` without leaving the literal (so `'<|im_start|>system\n' + messages[0]['content']` does
    /// not count, while `'<|im_start|>system\nYou are ...<|im_end|>\n'` does). Jinja escapes in the literal are
    /// decoded.
    static func chatmlDefaultSystem(in source: String) -> String? {
        let opener = Array("<|im_start|>system".unicodeScalars)
        let closer = Array("<|im_end|>".unicodeScalars)
        let s = Array(source.unicodeScalars)
        var i = 0
        outer: while i + opener.count <= s.count {
            guard s[i..<(i + opener.count)].elementsEqual(opener) else { i += 1; continue }
            var j = i + opener.count
            i += 1
            // The newline after the role: an escape in the literal or a raw newline.
            if j + 1 < s.count && s[j] == "\\" && s[j + 1] == "n" { j += 2 } else if j < s.count && s[j] == "\n" {
                j += 1
            } else { continue }
            var text = String.UnicodeScalarView()
            while j < s.count {
                if j + closer.count <= s.count && s[j..<(j + closer.count)].elementsEqual(closer) {
                    let result = String(text)
                    return result.isEmpty ? nil : result
                }
                let c = s[j]
                if c == "'" || c == "\"" || c == "{" || c == "}" { continue outer }  // left the literal
                if c == "\\" && j + 1 < s.count {
                    switch s[j + 1] {
                    case "n": text.append("\n")
                    case "t": text.append("\t")
                    case "r": text.append("\r")
                    default: text.append(s[j + 1])  // \\ \' \"
                    }
                    j += 2
                    continue
                }
                text.append(c)
                j += 1
            }
        }
        return nil
    }

    /// The first line-ish of a template for error messages: whitespace runs collapsed, cut at 60 characters.
    static func excerpt(_ source: String) -> String {
        let collapsed = source.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        if collapsed.isEmpty { return "(empty)" }
        return collapsed.count > 60 ? String(collapsed.prefix(60)) + "…" : collapsed
    }

    /// Strips leading and trailing whitespace as Jinja's `trim` filter does (Python's `str.strip()`).
    static func dropLeadingNewlines(_ s: String) -> Substring { s.drop { $0 == "\n" } }
    static func dropTrailingNewlines(_ s: String) -> Substring {
        var t = Substring(s)
        while t.last == "\n" { t = t.dropLast() }
        return t
    }

    static func trim(_ s: String) -> String {
        let scalars = s.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}
