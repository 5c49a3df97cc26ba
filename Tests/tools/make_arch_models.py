#!/usr/bin/env python3
"""Writes the random-weight test models of the architectures no registry here carries (Llama 3 RoPE scaling,
Qwen3, Phi-3/Phi-4-mini, Gemma 2), deterministically from a seed, with SmolLM2's real BPE tokenizer; then
llama.cpp's own llama-quantize turns each F32 file into the quant types the tests cover.

Usage (setup.sh --llama-cpp runs it):
  python3 Tests/tools/make_arch_models.py --out DIR --tokenizer SmolLM2-135M-Instruct.Q4_1.gguf \
      --quantize PATH/llama-quantize [--only NAME,...]
Needs numpy and llama.cpp's gguf-py (pip install the gguf-py folder of the llama.cpp source).

Each model is named NAME.TYPE.gguf (TYPE F32, Q8_0, ...). The same script, seed and llama.cpp build give the same
bytes: Tests/EngineTests/Fixtures/arch/manifest.json records each file's sha256 beside llama.cpp's figures for it
(Tests/tools/make_arch_references.py), and the test refuses figures made from a different file.

Shapes are chosen so that no shape is special: head size unequal to width / heads, grouped KV heads, tied and
untied output, partial rotary dimensions; every matrix's input width is a multiple of 256 (K-quants and IQ types
need it). The output projection is scaled up so that greedy choices are clear of near-ties.
"""
import argparse, hashlib, json, math, os, subprocess, sys

import numpy as np
import gguf

# Quant types every model is converted to (F32 is the source), and the rest of the types the engine computes with,
# on one model of each kind of tokenizer-free shape difference (tied Llama 3, Gemma 2).
QUANT_TYPES = ["F16", "Q8_0", "Q4_K"]
EXTRA_TYPES = ["BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"]
EXTRA_MODELS = ["llama3-tied", "gemma2-a"]

def llama3_rope_factors(head_dim, base, factor=8.0, low=1.0, high=4.0, old_ctx=8192):
    """Llama 3's per-dimension RoPE frequency factors, as convert_hf_to_gguf.py computes rope_freqs.weight."""
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    low_wl, high_wl = old_ctx / low, old_ctx / high
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < high_wl:
            out.append(1.0)
        elif wl > low_wl:
            out.append(factor)
        else:
            smooth = (old_ctx / wl - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)

# name: architecture and shape. d: width, L: blocks, h: heads, kv: KV heads, hd: head size, ff: feed-forward width.
MODELS = {
    # Llama 3.x: rope_freqs.weight (the llama3 scaling), tied output, Llama 3's pre-tokenizer and template.
    "llama3-tied": dict(arch="llama", d=256, L=2, h=8, kv=2, hd=32, ff=512, base=500000.0, tied=True,
                        rope_freqs=True, pre="llama-bpe", template="llama3"),
    # Llama with linear RoPE scaling, head size 64 (width / heads is 32), untied output.
    "llama-linear": dict(arch="llama", d=256, L=2, h=8, kv=4, hd=64, ff=512, base=10000.0, tied=False,
                         scaling=("linear", 4.0, None)),
    # Llama with YaRN scaling (factor 4 over an original context of 128), one KV head.
    "llama-yarn": dict(arch="llama", d=256, L=2, h=4, kv=1, hd=64, ff=768, base=10000.0, tied=True,
                       scaling=("yarn", 4.0, 128)),
    # A Mistral-style file: llama with a sliding window of 8 in its metadata, which llama.cpp does not apply to a
    # llama file (full attention), and neither does the engine.
    "mistral-swa": dict(arch="llama", d=256, L=2, h=8, kv=2, hd=32, ff=512, base=1000000.0, tied=False, window=8),
    # Qwen3: q/k RMS norms, head size 64 with 8 heads on width 256, tied output.
    "qwen3-tied": dict(arch="qwen3", d=256, L=2, h=8, kv=4, hd=64, ff=512, base=1000000.0, tied=True,
                       qk_norm=True, eps=1e-6),
    # Qwen3 with head size 128, one KV head, untied output.
    "qwen3-untied": dict(arch="qwen3", d=256, L=2, h=4, kv=1, hd=128, ff=768, base=1000000.0, tied=False,
                         qk_norm=True, eps=1e-6),
    # Qwen3-MoE: eight experts of width 256, two per token, q/k norms, tied output; its expert tensors also in
    # MXFP4 (llama-quantize's MXFP4_MOE: experts MXFP4, the rest Q8_0).
    "qwen3moe": dict(arch="qwen3moe", d=256, L=2, h=8, kv=4, hd=64, ff=256, base=1000000.0, tied=True,
                     qk_norm=True, eps=1e-6, experts=8, used=2, extra_types=["MXFP4_MOE"]),
    # Phi-3-mini: fused QKV and gate-up tensors, no grouped heads, untied output. (No name here says "phi3" or
    # "phi-3": llama.cpp gives such a file's special tokens Phi-3's whitespace stripping, which needs Phi-3's vocabulary.)
    "phi-mini": dict(arch="phi3", d=256, L=2, h=8, kv=8, hd=32, ff=512, base=10000.0, tied=False, fused=True),
    # A Phi-3 by name ("phi-3" in general.name): llama.cpp makes its special tokens swallow the whitespace after
    # them, except <unk>, <s> and <|endoftext|>; three control tokens are renamed </s>, <unk>, <s> as Phi-3's
    # vocabulary has them. F32 only: it is there for the tokenizer.
    "phi3-names": dict(arch="phi3", d=256, L=2, h=8, kv=8, hd=32, ff=512, base=10000.0, tied=False, fused=True,
                       general_name="Phi-3 mini test", rename={6: "</s>", 7: "<unk>", 8: "<s>"}, f32_only=True),
    # Phi-4-mini: fused tensors, grouped heads, partial rotary (24 of 32), LongRoPE with the long factors (the
    # context, 512, exceeds the original 256), tied output.
    "phi4-mini-long": dict(arch="phi3", d=256, L=2, h=8, kv=2, hd=32, ff=512, base=10000.0, tied=True, fused=True,
                           rot=24, longrope=256),
    # The same with the short factors (original context 512 = the context).
    "phi4-mini-short": dict(arch="phi3", d=256, L=2, h=8, kv=2, hd=32, ff=512, base=10000.0, tied=True, fused=True,
                            rot=24, longrope=512),
    # Gemma 2: post-norms, GELU, soft-capped attention and final logits, sliding window of 8 on every other layer.
    "gemma2-a": dict(arch="gemma2", d=256, L=4, h=4, kv=2, hd=64, ff=512, base=10000.0, tied=True, eps=1e-6,
                     window=8, attn_cap=50.0, final_cap=30.0),
    # Gemma 2 with a soft cap that bites (2.0 on scores of about unit size) and head size 32 on 8 heads.
    "gemma2-b": dict(arch="gemma2", d=256, L=4, h=8, kv=4, hd=32, ff=768, base=10000.0, tied=True, eps=1e-6,
                     window=6, attn_cap=2.0, final_cap=20.0),
    # OLMo 2: no pre-norms, q/k norms over all heads, post-norms, untied output.
    "olmo2": dict(arch="olmo2", d=256, L=2, h=8, kv=4, hd=32, ff=512, base=500000.0, tied=False, eps=1e-6),
    # OLMo 3: OLMo 2 with a sliding window of 8 on three layers of four, and YaRN on the global layer only.
    "olmo3-swa": dict(arch="olmo2", d=256, L=4, h=4, kv=4, hd=64, ff=512, base=500000.0, tied=False, eps=1e-6,
                      window=8, scaling=("yarn", 4.0, 128)),
    # Granite 3: Llama's layout with its four multipliers (the 8B's values, logits scaled up to match).
    "granite": dict(arch="granite", d=256, L=2, h=8, kv=2, hd=32, ff=512, base=10000.0, tied=False,
                    granite=dict(embedding_scale=12.0, residual_scale=0.22, attention_scale=0.0078125,
                                 logit_scale=8.0)),
    # SmolLM3: Llama's layout, no RoPE on every fourth layer (layer 3 of 4 here), tied output.
    "smollm3": dict(arch="smollm3", d=256, L=4, h=8, kv=2, hd=32, ff=512, base=2000000.0, tied=True),
}

def copy_tokenizer(w, reader, pre=None, template=None, rename=None):
    for name, field in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        if name == "tokenizer.chat_template" and template is not None:
            continue
        if name == "tokenizer.ggml.pre" and pre is not None:
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            value = field.contents()
            if name == "tokenizer.ggml.tokens" and rename:
                value = [rename.get(i, t) for i, t in enumerate(value)]
            w.add_key_value(name, value, vtype, sub_type=field.types[-1])
        else:
            w.add_key_value(name, field.contents(), vtype)
    if pre is not None:
        w.add_string("tokenizer.ggml.pre", pre)
    if template == "llama3":
        w.add_string("tokenizer.chat_template",
                     "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
                     " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
                     "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")

def write_f32(name, spec, tok_reader, out):
    rng = np.random.default_rng(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
    arch, d, L, h, kv, hd, ff = (spec[k] for k in ("arch", "d", "L", "h", "kv", "hd", "ff"))
    vocab = len(tok_reader.fields["tokenizer.ggml.tokens"].data)
    ctx = 512
    w = gguf.GGUFWriter(out, arch)
    w.add_name(spec.get("general_name", f"refrain test model {name}"))
    w.add_uint32(f"{arch}.context_length", ctx)
    w.add_uint32(f"{arch}.embedding_length", d)
    w.add_uint32(f"{arch}.block_count", L)
    w.add_uint32(f"{arch}.feed_forward_length", ff)
    if "experts" in spec:
        w.add_uint32(f"{arch}.expert_count", spec["experts"])
        w.add_uint32(f"{arch}.expert_used_count", spec["used"])
        w.add_uint32(f"{arch}.expert_feed_forward_length", ff)
    w.add_uint32(f"{arch}.attention.head_count", h)
    w.add_uint32(f"{arch}.attention.head_count_kv", kv)
    if hd != d // h:
        w.add_uint32(f"{arch}.attention.key_length", hd)
        w.add_uint32(f"{arch}.attention.value_length", hd)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", spec.get("eps", 1e-5))
    w.add_float32(f"{arch}.rope.freq_base", spec["base"])
    rot = spec.get("rot", hd)
    w.add_uint32(f"{arch}.rope.dimension_count", rot)
    w.add_uint32(f"{arch}.vocab_size", vocab)
    if "scaling" in spec:
        kind, factor, orig = spec["scaling"]
        w.add_string(f"{arch}.rope.scaling.type", kind)
        w.add_float32(f"{arch}.rope.scaling.factor", factor)
        if orig:
            w.add_uint32(f"{arch}.rope.scaling.original_context_length", orig)
    if "longrope" in spec:
        orig = spec["longrope"]
        w.add_string(f"{arch}.rope.scaling.type", "longrope")
        w.add_uint32(f"{arch}.rope.scaling.original_context_length", orig)
        # As convert_hf_to_gguf.py writes it for Phi-3 (a fraction of the context beyond the original).
        scale = ctx / orig
        w.add_float32(f"{arch}.rope.scaling.attn_factor",
                      1.0 if scale <= 1.0 else math.sqrt(1 + math.log(scale) / math.log(orig)))
    if arch in ("olmo2", "llama") and "window" in spec:
        w.add_uint32(f"{arch}.attention.sliding_window", spec["window"])
    if "granite" in spec:
        g = spec["granite"]
        w.add_float32(f"{arch}.embedding_scale", g["embedding_scale"])
        w.add_float32(f"{arch}.residual_scale", g["residual_scale"])
        w.add_float32(f"{arch}.attention.scale", g["attention_scale"])
        w.add_float32(f"{arch}.logit_scale", g["logit_scale"])
    if arch == "gemma2":
        w.add_uint32(f"{arch}.attention.sliding_window", spec["window"])
        w.add_float32(f"{arch}.attn_logit_softcapping", spec["attn_cap"])
        w.add_float32(f"{arch}.final_logit_softcapping", spec["final_cap"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    copy_tokenizer(w, tok_reader, spec.get("pre"), spec.get("template"), spec.get("rename"))

    def normal(*shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)
    def norm_weight(n):
        # Gemma's files store 1 + w already; either way a weight near 1.
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    # numpy shape (rows, columns) is GGUF's [columns, rows]: rows are output features.
    # Logits have a spread of about 6 either way (tied: the embedding is the output).
    w.add_tensor("token_embd.weight", normal(vocab, d, std=6.0 / math.sqrt(d)))
    w.add_tensor("output_norm.weight", norm_weight(d))
    if not spec["tied"]:
        scale = spec.get("granite", {}).get("logit_scale", 1.0)
        w.add_tensor("output.weight", normal(vocab, d, std=6.0 * scale / math.sqrt(d)))
    if spec.get("rope_freqs"):
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(hd, spec["base"]))
    if "longrope" in spec:
        w.add_tensor("rope_factors_long.weight", (1.0 + 3.0 * rng.random(rot // 2)).astype(np.float32))
        w.add_tensor("rope_factors_short.weight", (1.0 + 0.5 * rng.random(rot // 2)).astype(np.float32))
    for i in range(L):
        p = f"blk.{i}."
        s_in = 1.0 / math.sqrt(d)
        if arch != "olmo2":
            w.add_tensor(p + "attn_norm.weight", norm_weight(d))
        if spec.get("fused"):
            w.add_tensor(p + "attn_qkv.weight", normal(h * hd + 2 * kv * hd, d, std=s_in))
        else:
            w.add_tensor(p + "attn_q.weight", normal(h * hd, d, std=s_in))
            w.add_tensor(p + "attn_k.weight", normal(kv * hd, d, std=s_in))
            w.add_tensor(p + "attn_v.weight", normal(kv * hd, d, std=s_in))
        if spec.get("qk_norm"):
            w.add_tensor(p + "attn_q_norm.weight", norm_weight(hd))
            w.add_tensor(p + "attn_k_norm.weight", norm_weight(hd))
        if arch == "olmo2":
            w.add_tensor(p + "attn_q_norm.weight", norm_weight(h * hd))
            w.add_tensor(p + "attn_k_norm.weight", norm_weight(kv * hd))
        w.add_tensor(p + "attn_output.weight", normal(d, h * hd, std=1.0 / math.sqrt(h * hd)))
        if arch in ("gemma2", "olmo2"):
            w.add_tensor(p + "post_attention_norm.weight", norm_weight(d))
        if arch != "olmo2":
            w.add_tensor(p + "ffn_norm.weight", norm_weight(d))
        if "experts" in spec:
            n = spec["experts"]
            # A router with logits of spread 3.
            w.add_tensor(p + "ffn_gate_inp.weight", normal(n, d, std=3.0 / math.sqrt(d)))
            w.add_tensor(p + "ffn_gate_exps.weight", normal(n, ff, d, std=s_in))
            w.add_tensor(p + "ffn_up_exps.weight", normal(n, ff, d, std=s_in))
            w.add_tensor(p + "ffn_down_exps.weight", normal(n, d, ff, std=1.0 / math.sqrt(ff)))
        elif spec.get("fused"):
            w.add_tensor(p + "ffn_up.weight", normal(2 * ff, d, std=s_in))
        else:
            w.add_tensor(p + "ffn_gate.weight", normal(ff, d, std=s_in))
            w.add_tensor(p + "ffn_up.weight", normal(ff, d, std=s_in))
        if "experts" not in spec:
            w.add_tensor(p + "ffn_down.weight", normal(d, ff, std=1.0 / math.sqrt(ff)))
        if arch in ("gemma2", "olmo2"):
            w.add_tensor(p + "post_ffw_norm.weight", norm_weight(d))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tokenizer", required=True, help="a GGUF file whose tokenizer the models copy (SmolLM2)")
    ap.add_argument("--quantize", required=True, help="llama.cpp's llama-quantize")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    reader = gguf.GGUFReader(a.tokenizer)
    names = [n for n in MODELS if not a.only or n in a.only.split(",")]
    manifest_path = os.path.join(a.out, "manifest.json")
    manifest = json.load(open(manifest_path)) if a.only and os.path.exists(manifest_path) else {}
    for name in names:
        f32 = os.path.join(a.out, f"{name}.F32.gguf")
        write_f32(name, MODELS[name], reader, f32 + ".tmp")
        os.replace(f32 + ".tmp", f32)
        manifest[f"{name}.F32.gguf"] = sha256(f32)
        spec = MODELS[name]
        types = [] if spec.get("f32_only") else \
            QUANT_TYPES + (EXTRA_TYPES if name in EXTRA_MODELS else []) + spec.get("extra_types", [])
        for t in types:
            q = os.path.join(a.out, f"{name}.{t}.gguf")
            # --pure: every matrix in the named type (MXFP4_MOE is by definition a mix: experts MXFP4).
            pure = [] if t == "MXFP4_MOE" else ["--pure"]
            r = subprocess.run([a.quantize] + pure + [f32, q + ".tmp", t, "1"], capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"make_arch_models: llama-quantize {name} {t} failed:\n{r.stderr[-2000:]}")
            os.replace(q + ".tmp", q)
            manifest[f"{name}.{t}.gguf"] = sha256(q)
        print(f"make_arch_models: {name}: F32{''.join(' ' + t for t in types)}", file=sys.stderr)
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)

if __name__ == "__main__":
    main()
