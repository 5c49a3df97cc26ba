#!/usr/bin/env python3
"""Renders the chat-template fixtures with Jinja2 to produce the expected strings for ChatTemplateTests.

Usage: python3 Tests/tools/render_chat_fixtures.py  (needs `pip install jinja2`)
Writes Tests/EngineTests/Fixtures/templates/expected.json.

The environment mirrors the one Hugging Face's apply_chat_template uses (trim_blocks, lstrip_blocks,
raise_exception). bos_token is rendered as the empty string: the engine's renderer leaves BOS to the tokenizer
(tokenizer.ggml.add_bos_token), so a template's leading {{ bos_token }} is not part of the expected text.
"""
import json, os
import jinja2

HERE = os.path.join(os.path.dirname(__file__), "..", "EngineTests", "Fixtures", "templates")

def raise_exception(msg):
    raise jinja2.exceptions.TemplateError(msg)

env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
env.globals["raise_exception"] = raise_exception

def m(role, content):
    return {"role": role, "content": content}

SYS = m("system", "You are terse.")
U1 = m("user", "What is the capital of France?")
A1 = m("assistant", "Paris.")
U2 = m("user", "And of Italy?")
PADDED = m("user", "  spaced out \n")
THOUGHT = m("assistant", "<think>\nLet me see.\n</think>\n\nParis.")

conversations = {
    "user": [U1],
    "system_user": [SYS, U1],
    "multi": [U1, A1, U2],
    "system_multi": [SYS, U1, A1, U2],
    "padded": [PADDED],
    "ends_with_assistant": [U1, A1],
    "system_only": [SYS],
    "assistant_first": [A1, U1],
    "system_late": [U1, A1, SYS, U2],
    "two_users": [U1, U2],
    "thought_history": [U1, THOUGHT, U2],
    "thought_last": [U1, THOUGHT],
}

cases = []
# Real templates as llama.cpp's source carries them (models/templates/): Llama 3.1 and 3.2, Phi-3.5-mini, Qwen3-0.6B,
# Gemma 2 2B it.
EOS = {"phi3.5": "<|endoftext|>"}
for name in ["smollm2", "qwen2.5", "gemma3", "llama3", "zephyr", "mistral",
             "llama3.1", "llama3.2", "phi3.5", "qwen3", "gemma2"]:
    src = open(os.path.join(HERE, name + ".jinja")).read()
    tpl = env.from_string(src)
    for conv, msgs in conversations.items():
        for agp in (True, False):
            case = {"template": name, "conversation": conv, "messages": msgs, "add_generation_prompt": agp}
            try:
                case["expected"] = tpl.render(messages=msgs, add_generation_prompt=agp,
                                              bos_token="", eos_token=EOS.get(name, "</s>"))
            except jinja2.exceptions.TemplateError as e:
                case["error"] = str(e)
            cases.append(case)

with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(cases, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(len(cases), "cases")
