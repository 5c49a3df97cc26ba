import Foundation
import XCTest
@testable import Engine

/// Expected renderings come from Jinja2 (Tests/tools/render_chat_fixtures.py) run over the fixture templates:
/// SmolLM2's and Qwen2.5's templates as their GGUF files carry them, small templates written for this project
/// in the Gemma 3, Llama 3, Zephyr and Mistral layouts, and Llama 3.1's, Llama 3.2's, Phi-3.5-mini's, Qwen3's and
/// Gemma 2's templates as llama.cpp's source carries them.
final class ChatTemplateTests: XCTestCase {
    struct Case: Decodable {
        struct Message: Decodable { var role: String; var content: String }
        var template: String
        var conversation: String
        var messages: [Message]
        var add_generation_prompt: Bool
        var expected: String?
        var error: String?
    }

    func fixture(_ name: String, _ ext: String) throws -> String {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: ext,
                                                  subdirectory: "Fixtures/templates"), "missing fixture \(name).\(ext)")
        return try String(contentsOf: url, encoding: .utf8)
    }

    func testFixtureTemplatesAreRecognised() throws {
        let want: [String: ChatTemplate.Family] = ["smollm2": .chatml, "qwen2.5": .chatml, "gemma3": .gemma,
                                                   "llama3": .llama3, "zephyr": .zephyr, "mistral": .mistral,
                                                   "llama3.1": .llama3, "llama3.2": .llama3, "phi3.5": .phi3,
                                                   "qwen3": .chatml, "gemma2": .gemma]
        for (name, family) in want {
            XCTAssertEqual(try ChatTemplate(source: fixture(name, "jinja")).family, family, name)
        }
        XCTAssertEqual(try ChatTemplate(source: fixture("llama3.2", "jinja")).llama3Date, "26 Jul 2024")
        XCTAssertNil(try ChatTemplate(source: fixture("llama3", "jinja")).llama3Date)
        XCTAssertTrue(try ChatTemplate(source: fixture("qwen3", "jinja")).thinking)
        XCTAssertFalse(try ChatTemplate(source: fixture("qwen2.5", "jinja")).thinking)
        XCTAssertFalse(try ChatTemplate(source: fixture("gemma2", "jinja")).systemAllowed)
    }

    func testDefaultSystemIsReadFromTheTemplate() throws {
        XCTAssertEqual(try ChatTemplate(source: fixture("smollm2", "jinja")).defaultSystem,
                       "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        XCTAssertEqual(try ChatTemplate(source: fixture("qwen2.5", "jinja")).defaultSystem,
                       "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        // Plain ChatML: no default system message.
        let plain = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
            + " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        XCTAssertNil(try ChatTemplate(source: plain).defaultSystem)
        XCTAssertEqual(try ChatTemplate(source: plain).family, .chatml)
        // Escapes inside the literal are decoded.
        let escaped = "{{ '<|im_start|>system\\nSay \\'hi\\'\\tplease<|im_end|>\\n' }}"
        XCTAssertEqual(try ChatTemplate(source: escaped).defaultSystem, "Say 'hi'\tplease")
    }

    func testRenderingMatchesJinja() throws {
        let data = try fixture("expected", "json").data(using: .utf8)!
        let cases = try JSONDecoder().decode([Case].self, from: data)
        XCTAssertGreaterThanOrEqual(cases.count, 100)
        var templates: [String: ChatTemplate] = [:]
        for c in cases {
            let t = try templates[c.template] ?? ChatTemplate(source: fixture(c.template, "jinja"))
            templates[c.template] = t
            let messages = c.messages.map { ChatMessage(role: $0.role, content: $0.content) }
            let label = "\(c.template)/\(c.conversation)/gen=\(c.add_generation_prompt)"
            if let expected = c.expected {
                XCTAssertEqual(try t.render(messages, addGenerationPrompt: c.add_generation_prompt), expected, label)
            } else {
                XCTAssertThrowsError(try t.render(messages, addGenerationPrompt: c.add_generation_prompt), label) {
                    guard case ChatTemplateError.badOrder = $0 else { return XCTFail("\(label): \($0)") }
                }
            }
        }
    }

    func testReferencePromptLayout() throws {
        // The hand-written reference prompts have no system message: plain ChatML renders them exactly.
        let t = ChatTemplate(family: .chatml)
        XCTAssertEqual(try t.render([ChatMessage(role: "user", content: "What is the capital of France?")]),
                       "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
        let g = ChatTemplate(family: .gemma)
        XCTAssertEqual(try g.render([ChatMessage(role: "user", content: "Hi")]),
                       "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")
    }

    func testUnrecognisedTemplate() {
        let source = "{% for m in messages %}\n  ### {{ m.role }}: {{ m.content }}\n{% endfor %}"
        XCTAssertThrowsError(try ChatTemplate(source: source)) { error in
            guard case ChatTemplateError.unrecognised(let start) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(start.hasPrefix("{% for m in messages %} ### {{ m.role }}"), start)
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"))
            XCTAssertTrue(text.contains("unrecognised chat template"))
            XCTAssertTrue(text.contains("chatml"))
        }
        XCTAssertThrowsError(try ChatTemplate(source: String(repeating: "x", count: 500))) { error in
            XCTAssertLessThan("\(error)".count, 200)
        }
    }

    func testModelWithoutTemplate() {
        for source in [nil, "", "  \n"] as [String?] {
            XCTAssertThrowsError(try ChatTemplate.forModel(chatTemplate: source, file: "gemma-3-270m-q4_k_m.gguf")) {
                XCTAssertEqual($0 as? ChatTemplateError, .noTemplate(file: "gemma-3-270m-q4_k_m.gguf"))
                let text = "\($0)"
                XCTAssertTrue(text.contains("has no chat template"), text)
                XCTAssertTrue(text.contains("gemma-3-270m-q4_k_m.gguf"), text)
                XCTAssertTrue(text.contains("gemma"), text)
            }
        }
        XCTAssertEqual(try ChatTemplate.forModel(chatTemplate: "<start_of_turn>", file: "x").family, .gemma)
    }

    func testChoosingByName() throws {
        XCTAssertEqual(try ChatTemplate(named: "Gemma").family, .gemma)
        XCTAssertEqual(try ChatTemplate(named: "chatml", defaultSystem: "Be brief.").defaultSystem, "Be brief.")
        XCTAssertNil(ChatTemplate(family: .llama3, defaultSystem: "ignored").defaultSystem)
        XCTAssertThrowsError(try ChatTemplate(named: "alpaca")) {
            XCTAssertEqual($0 as? ChatTemplateError, .unknownFamily("alpaca"))
        }
        let t = ChatTemplate(family: .chatml, defaultSystem: "Be brief.")
        XCTAssertEqual(try t.render([ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: false),
                       "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
    }

    func testBadRolesAndOrder() {
        for family in ChatTemplate.Family.allCases {
            let t = ChatTemplate(family: family)
            XCTAssertThrowsError(try t.render([ChatMessage(role: "user", content: "a"), ChatMessage(role: "tool", content: "b")])) {
                XCTAssertEqual($0 as? ChatTemplateError, .unknownRole(role: "tool", index: 1, family: family))
            }
            XCTAssertThrowsError(try t.render([])) { XCTAssertEqual($0 as? ChatTemplateError, .noMessages) }
        }
        let g = ChatTemplate(family: .gemma)
        XCTAssertThrowsError(try g.render([ChatMessage(role: "user", content: "a"), ChatMessage(role: "system", content: "b")])) {
            XCTAssertTrue("\($0)".contains("system message is allowed only first"), "\($0)")
        }
    }
}
