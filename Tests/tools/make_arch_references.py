#!/usr/bin/env python3
"""llama.cpp's figures for the random-weight architecture models (Tests/tools/make_arch_models.py), through its
Python binding (llama-cpp-python, the same llama.cpp as the C tools): per file and prompt, at every position the
log-sum-exp of the logits, the two highest logits, the log-probability of the next prompt token under llama.cpp's
defaults (flash attention, F16 KV cache) and again with flash attention off and an F32 cache (llama.cpp's own
numerical spread), and a greedy continuation with the margin at each step. Also llama.cpp's token ids for the Llama
3 pre-tokenizer file.

Usage: python3 Tests/tools/make_arch_references.py --models DIR [--out Tests/EngineTests/Fixtures/arch] [--only NAME,...]
Writes OUT/manifest.json (the sha256 of each model file the figures belong to), OUT/NAME.TYPE.jsonl and
OUT/tokenizer-llama-bpe.jsonl.
"""
import argparse, json, math, os, sys

import numpy as np
import llama_cpp

PROMPTS = [
    "The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint(fib(10))",
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?\nAnswer:",
]
GREEDY_STEPS = 24

TOKENIZER_TEXTS = [
    "Hello world", " Hello World!", "I'm 12345 years old, aren't you?", "tab\tand  two spaces\n\nnew lines",
    "naïve café — 日本語のテキスト 😀", "3.14159 + 2,718 = 5.85", "<|im_start|>user\nhi<|im_end|>",
    "   leading and trailing   ", "CamelCaseWords and snake_case_words", "'s 't 're 've 'm 'll 'd 'S",
]

PHI3_TEXTS = [
    "<|im_start|>user\n  hello<|im_end|>\n\n<|im_start|>assistant\n",
    "<s> \t\nafter s</s>\n next <unk>  x<|endoftext|>\n y",
    "<|endoftext|>   <|im_end|>   end",
    "no special tokens here \n",
]

def open_model(path, alt):
    kw = dict(n_ctx=0, logits_all=True, verbose=False, n_threads=2, n_batch=512, seed=0)
    if alt:
        kw.update(flash_attn=False, type_k=0, type_v=0)  # GGML_TYPE_F32
    else:
        kw.update(flash_attn=True)
    return llama_cpp.Llama(path, **kw)

def rows(m, ids):
    m.reset()
    m.eval(ids)
    return np.array(m.scores[: len(ids)], dtype=np.float64)

def lse(r):
    mx = r.max()
    return mx + math.log(np.exp(r - mx).sum())

def greedy(m, ids):
    m.reset()
    m.eval(ids)
    out, margins = [], []
    eog = {m.token_eos()}
    for _ in range(GREEDY_STEPS):
        r = np.array(m.scores[m.n_tokens - 1], dtype=np.float64)
        order = np.argsort(-r, kind="stable")
        nxt = int(order[0])
        out.append(nxt)
        margins.append(float(r[order[0]] - r[order[1]]))
        if nxt in eog:
            break
        m.eval([nxt])
    return out, margins

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "EngineTests", "Fixtures", "arch"))
    ap.add_argument("--only", default="", help="model names (comma-separated) whose figures to make again")
    a = ap.parse_args()
    only = [n for n in a.only.split(",") if n]
    os.makedirs(a.out, exist_ok=True)
    manifest = json.load(open(os.path.join(a.models, "manifest.json")))
    for file in sorted(manifest):
        if only and file.rsplit(".", 2)[0] not in only:
            continue
        path = os.path.join(a.models, file)
        base = open_model(path, alt=False)
        alt = open_model(path, alt=True)
        lines = []
        for prompt in PROMPTS:
            ids = base.tokenize(prompt.encode(), add_bos=True, special=False)
            ra, rb = rows(base, ids), rows(alt, ids)
            pos = []
            for p in range(len(ids)):
                r = ra[p]
                order = np.argsort(-r, kind="stable")[:2]
                entry = {"lse": round(lse(r), 5), "top": [[int(i), round(float(r[i]), 5)] for i in order]}
                if p + 1 < len(ids):
                    nxt = ids[p + 1]
                    entry["next_logprob"] = round(float(r[nxt] - lse(r)), 5)
                    entry["next_logprob_alt"] = round(float(rb[p][nxt] - lse(rb[p])), 5)
                pos.append(entry)
            g, margins = greedy(base, ids)
            lines.append({"prompt": prompt, "ids": ids, "positions": pos, "greedy": g,
                          "margins": [round(x, 4) for x in margins]})
        with open(os.path.join(a.out, file.replace(".gguf", ".jsonl")), "w") as f:
            for l in lines:
                f.write(json.dumps(l, separators=(",", ":")) + "\n")
        del base, alt
        print(f"make_arch_references: {file}", file=sys.stderr)
    # llama.cpp's ids for the Llama 3 pre-tokenizer (llama-bpe on SmolLM2's vocabulary), and for a Phi-3 by name.
    for model, out, texts in (("llama3-tied.F32.gguf", "tokenizer-llama-bpe.jsonl", TOKENIZER_TEXTS),
                              ("phi3-names.F32.gguf", "tokenizer-phi3-names.jsonl", PHI3_TEXTS)):
        m = llama_cpp.Llama(os.path.join(a.models, model), n_ctx=64, verbose=False, vocab_only=True)
        with open(os.path.join(a.out, out), "w") as f:
            for text in texts:
                for special in (False, True):
                    ids = m.tokenize(text.encode(), add_bos=False, special=special)
                    f.write(json.dumps({"text": text, "parse_special": special, "ids": ids}, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")

if __name__ == "__main__":
    main()
