#!/usr/bin/env python3
"""llama.cpp's reference figures for a real model file, in the format of Tests/EngineTests/Fixtures/<model>/ (see
../shared/reference/README.md, whose figures for the first three models came from the same binding): the same texts
as an existing fixture folder, tokenized, evaluated and continued greedily by llama.cpp through its Python binding
(llama-cpp-python, CPU, 2 threads). With --f32 FILE, the f32 reading (next_logprob_f32) is llama.cpp itself on
the same model with every weight dequantized to F32 (`llama-quantize --allow-requantize MODEL FILE F32`), flash
attention off and an F32 cache: F32 weights take F32 activations, so it is the model's arithmetic without 8-bit
activations.

Usage: python3 Tests/tools/make_model_references.py MODEL.gguf --like Fixtures/qwen2.5-coder-0.5b-instruct-q4_k_m \
           --out Fixtures/qwen2.5-coder-1.5b-instruct-q4_k_m [--f32 MODEL-F32.gguf]
"""
import argparse, json, math, os, sys

import numpy as np
import llama_cpp

GREEDY_MAX = 48

def read(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]

def open_model(path, alt):
    kw = dict(n_ctx=2048, logits_all=True, verbose=False, n_threads=2, n_batch=512, seed=0)
    kw.update(dict(flash_attn=False, type_k=0, type_v=0) if alt else dict(flash_attn=True))
    return llama_cpp.Llama(path, **kw)

def lse(r):
    mx = r.max()
    return float(mx + math.log(np.exp(r - mx).sum()))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--like", required=True, help="a fixture folder whose texts to use")
    ap.add_argument("--out", required=True)
    ap.add_argument("--f32", help="the model dequantized to F32 by llama-quantize (the f32 reading)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    base, alt = open_model(a.model, False), open_model(a.model, True)
    exact = open_model(a.f32, True) if a.f32 else None
    add_bos = True   # llama.cpp's add_special: BOS exactly when the file's tokenizer.ggml.add_bos_token says so

    with open(os.path.join(a.out, "tokenizer.jsonl"), "w") as f:
        for l in read(os.path.join(a.like, "tokenizer.jsonl")):
            ids = base.tokenize(l["text"].encode(), add_bos=add_bos, special=l["parse_special"])
            f.write(json.dumps({"text": l["text"], "parse_special": l["parse_special"], "ids": ids},
                               ensure_ascii=False) + "\n")

    with open(os.path.join(a.out, "logits.jsonl"), "w") as f:
        for l in read(os.path.join(a.like, "logits.jsonl")):
            ids = base.tokenize(l["text"].encode(), add_bos=add_bos, special=True)
            base.reset(); base.eval(ids); ra = np.array(base.scores[: len(ids)], dtype=np.float64)
            alt.reset(); alt.eval(ids); rb = np.array(alt.scores[: len(ids)], dtype=np.float64)
            if exact:
                exact.reset(); exact.eval(ids); rf = np.array(exact.scores[: len(ids)], dtype=np.float64)
            positions = []
            for p in range(len(ids)):
                r = ra[p]
                order = np.argsort(-r, kind="stable")[:20]
                e = {"pos": p, "lse": lse(r), "top": [[int(i), float(r[i])] for i in order]}
                if p + 1 < len(ids):
                    e["next_id"] = ids[p + 1]
                    e["next_logprob"] = float(r[ids[p + 1]]) - lse(r)
                    e["next_logprob_alt"] = float(rb[p][ids[p + 1]]) - lse(rb[p])
                    if exact:
                        e["next_logprob_f32"] = float(rf[p][ids[p + 1]]) - lse(rf[p])
                positions.append(e)
            f.write(json.dumps({"text": l["text"], "ids": ids, "positions": positions}, ensure_ascii=False) + "\n")

    eog = {base.token_eos()}
    for name in ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|eot_id|>"):
        t = base.tokenize(name.encode(), add_bos=False, special=True)
        if len(t) == 1:
            eog.add(t[0])
    with open(os.path.join(a.out, "greedy.jsonl"), "w") as f:
        for l in read(os.path.join(a.like, "greedy.jsonl")):
            ids = base.tokenize(l["text"].encode(), add_bos=add_bos, special=True)
            base.reset(); base.eval(ids)
            out, margins = [], []
            for _ in range(GREEDY_MAX):
                r = np.array(base.scores[base.n_tokens - 1], dtype=np.float64)
                order = np.argsort(-r, kind="stable")
                out.append(int(order[0])); margins.append(float(r[order[0]] - r[order[1]]))
                if out[-1] in eog:
                    break
                base.eval([out[-1]])
            text = base.detokenize([t for t in out if t not in eog]).decode("utf-8", "replace")
            f.write(json.dumps({"text": l["text"], "ids": ids, "greedy_ids": out, "margins": margins,
                                "greedy_text": text}, ensure_ascii=False) + "\n")
    print(f"make_model_references: wrote {a.out}", file=sys.stderr)

if __name__ == "__main__":
    main()
