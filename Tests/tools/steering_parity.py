#!/usr/bin/env python3
"""llama.cpp's next-token log-probabilities under a control vector, beside refrain's (SteeringParityTests).

Usage: steering_parity.py REQUEST.json  (run with llama-cpp-python's Python, setup.sh --llama-cpp)

REQUEST: {"model": PATH, "vectors": [[GGUF PATH, SCALE], ...], "layer_start": S, "layer_end": E,
"texts": [[id, ...], ...]}. The vectors are read as llama.cpp's common_control_vector_load reads them (tensors
direction.L, L >= 1, summed with their scales, layer L at offset (L - 1) * n_embd; read here with llama.cpp's own
gguf-py) and applied with llama_set_adapter_cvec (the C API) on layers S..E. Each text is evaluated three ways:
with the vector and flash attention (the reference reading), with the vector and llama.cpp's other attention
settings (f32 KV, no flash attention: its own spread, as the reference fixtures' next_logprob_alt), and without
the vector (to show the vector moves the log-probabilities). Prints JSON: {"n_embd", "texts": [{"next_logprob",
"next_logprob_alt", "next_logprob_plain"}]}, log p(ids[i+1] | ids[..i]) per position.
"""
import ctypes, json, math, sys

import numpy as np

import gguf
import llama_cpp


def load_vectors(pairs):
    n_embd, data = -1, np.zeros(0, dtype=np.float32)
    for path, scale in pairs:
        for t in gguf.GGUFReader(path).tensors:
            name = t.name
            assert name.startswith("direction."), f"{path}: tensor {name} is not a direction"
            layer = int(name.split(".", 1)[1])
            assert layer >= 1, f"{path}: direction for layer {layer}"
            v = np.asarray(t.data, dtype=np.float32).reshape(-1)
            if n_embd == -1:
                n_embd = v.size
            assert v.size == n_embd, f"{path}: {name} has {v.size} values, not {n_embd}"
            need = n_embd * layer
            if data.size < need:
                data = np.concatenate([data, np.zeros(need - data.size, dtype=np.float32)])
            data[n_embd * (layer - 1): n_embd * layer] += v * np.float32(scale)
    return n_embd, data


def lse(r):
    mx = r.max()
    return float(mx + math.log(np.exp(r - mx).sum()))


def readings(model, texts, cvec, alt):
    kw = dict(n_ctx=2048, logits_all=True, verbose=False, n_threads=2, n_batch=512, seed=0)
    kw.update(dict(flash_attn=False, type_k=0, type_v=0) if alt else dict(flash_attn=True))
    llm = llama_cpp.Llama(model, **kw)
    if cvec is not None:
        n_embd, data, start, end = cvec
        ptr = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        err = llama_cpp.llama_set_adapter_cvec(llm._ctx.ctx, ptr, data.size, n_embd, start, end)
        assert err == 0, f"llama_set_adapter_cvec failed ({err})"
    out = []
    for ids in texts:
        llm.reset()
        llm.eval(ids)
        rows = np.array(llm.scores[: len(ids)], dtype=np.float64)
        out.append([float(rows[p][ids[p + 1]]) - lse(rows[p]) for p in range(len(ids) - 1)])
    return out


def main():
    req = json.load(open(sys.argv[1]))
    n_embd, data = load_vectors(req["vectors"])
    cvec = (n_embd, data, req["layer_start"], req["layer_end"])
    ref = readings(req["model"], req["texts"], cvec, alt=False)
    alt = readings(req["model"], req["texts"], cvec, alt=True)
    plain = readings(req["model"], req["texts"], None, alt=False)
    print(json.dumps({"n_embd": n_embd, "texts": [
        {"next_logprob": a, "next_logprob_alt": b, "next_logprob_plain": c} for a, b, c in zip(ref, alt, plain)]}))


if __name__ == "__main__":
    main()
