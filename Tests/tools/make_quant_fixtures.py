#!/usr/bin/env python3
"""Writes Tests/EngineTests/Fixtures/quants/<TYPE>.json: a few blocks of each tensor type and the floats that
llama.cpp's gguf-py (numpy ports of ggml's quantizers and dequantizers) makes of them. TensorTypeTests checks the
engine's reference dequantizers against these.

Blocks come from seeded random data: quantized by gguf-py where it can quantize the type (Q5_1, MXFP4), and in
every case also random raw block bytes with the float scale fields set to finite values (so every bit of the
quantized fields is exercised). Deterministic: rerunning writes the same files.

Each fixture also holds a seeded activation vector x, ggml's own CPU quantization of it into the type's vec-dot
format (quantize_row_q8_0/q8_1/q8_K) and ggml's CPU vec_dot of the blocks (as one row) with it, from the
libggml-cpu.so built with that llama.cpp (called through ctypes), so that KernelTests can hold the fast kernels to
llama.cpp's own dot products.

Run with the gguf-py of the llama.cpp the engine is compared against, and its libggml-cpu.so, e.g.
  PYTHONPATH=/path/to/llama.cpp/gguf-py python3 Tests/tools/make_quant_fixtures.py /path/to/libggml-cpu.so
(default library: llama-cpp-python's in ~/.cache/refrain/venv-llamacpp).
"""
import ctypes
import glob
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "EngineTests", "Fixtures", "quants")

# Per type: block size, bytes per block, and the f16 scale fields (byte offset, low, high) of a raw block.
TYPES = {
    "Q5_1": (T.Q5_1, 32, 24, [(0, 0.001, 0.05), (2, -0.5, 0.1)]),
    "Q2_K": (T.Q2_K, 256, 84, [(80, 0.0005, 0.05), (82, 0.0005, 0.05)]),
    "Q3_K": (T.Q3_K, 256, 110, [(108, -0.05, 0.05)]),
    "IQ4_NL": (T.IQ4_NL, 32, 18, [(0, -0.05, 0.05)]),
    "IQ4_XS": (T.IQ4_XS, 256, 136, [(0, -0.05, 0.05)]),
    "MXFP4": (T.MXFP4, 32, 17, []),
}
QUANTIZABLE = {"Q5_1", "MXFP4"}
RAW_BLOCKS = 4
# ggml's vec_dot_type per type (type_traits_cpu in ggml-cpu.c): the activation format, its block size and bytes.
VEC_DOT = {
    "Q5_1": ("q8_1", 32, 36), "Q2_K": ("q8_K", 256, 292), "Q3_K": ("q8_K", 256, 292),
    "IQ4_NL": ("q8_0", 32, 34), "IQ4_XS": ("q8_K", 256, 292), "MXFP4": ("q8_0", 32, 34),
}


def load_ggml_cpu():
    if len(sys.argv) > 1:
        path = sys.argv[1]
    else:
        found = glob.glob(os.path.expanduser(
            "~/.cache/refrain/venv-llamacpp/lib/python3*/site-packages/llama_cpp/lib/libggml-cpu.so"))
        if not found:
            sys.exit("libggml-cpu.so not found: pass its path")
        path = found[0]
    lib = ctypes.CDLL(path)
    lib.ggml_cpu_init()
    return lib


def ggml_dot(lib, name, blocks, x):
    """ggml's CPU quantization of x into `name`'s vec-dot format, and its vec_dot of the blocks with that."""
    fmt, bs, size = VEC_DOT[name]
    n = x.size
    xq = np.zeros(n // bs * size, dtype=np.uint8)
    quant = getattr(lib, "quantize_row_" + fmt)
    quant.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    quant(x.ctypes.data, xq.ctypes.data, n)
    dot = getattr(lib, f"ggml_vec_dot_{name.lower().replace('_k', '_K')}_{fmt}")
    dot.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    out = np.zeros(1, dtype=np.float32)
    dot(n, out.ctypes.data, 0, blocks.ctypes.data, 0, xq.ctypes.data, 0, 1)
    return xq, float(out[0])


def raw_blocks(name, rng):
    qtype, bs, size, scales = TYPES[name]
    b = rng.integers(0, 256, size=(RAW_BLOCKS, size), dtype=np.uint8)
    for off, lo, hi in scales:
        h = rng.uniform(lo, hi, size=RAW_BLOCKS).astype(np.float16)
        b[:, off:off + 2] = h.view(np.uint8).reshape(RAW_BLOCKS, 2)
    if name == "MXFP4":
        # E8M0 exponents: the two subnormal scales, the smallest normal one, and typical weight scales.
        b[:, 0] = [0, 1, 2, 120]
    return b.reshape(-1)


def main():
    lib = load_ggml_cpu()
    os.makedirs(OUT, exist_ok=True)
    for i, (name, (qtype, bs, size, _)) in enumerate(TYPES.items()):
        rng = np.random.default_rng(1000 + i)
        parts = []
        if name in QUANTIZABLE:
            x = (rng.standard_normal(4 * bs) * 0.05).astype(np.float32)
            x[::37] *= 8  # a few outliers
            parts.append(np.asarray(quants.quantize(x.reshape(1, -1), qtype), dtype=np.uint8).reshape(-1))
        parts.append(raw_blocks(name, rng))
        data = np.concatenate(parts)
        assert data.size % size == 0
        values = quants.dequantize(data.reshape(1, -1), qtype).astype(np.float32).reshape(-1)
        assert values.size == data.size // size * bs and np.all(np.isfinite(values))
        x = rng.uniform(-1, 1, size=values.size).astype(np.float32)
        xq, dot = ggml_dot(lib, name, np.ascontiguousarray(data), x)
        doc = {
            "type": name,
            "blocks": data.size // size,
            "note": "raw blocks, gguf-py's dequantization of them, an activation x, ggml's CPU quantization of x "
                    "(xq) and ggml's CPU vec_dot of the blocks with it; written by Tests/tools/make_quant_fixtures.py",
            "hex": data.tobytes().hex(),
            "values": [float(v) for v in values],
            "x": [float(v) for v in x],
            "xq": xq.tobytes().hex(),
            "dot": dot,
        }
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print(f"{name}: {doc['blocks']} blocks, {values.size} values, ggml dot {dot}")


if __name__ == "__main__":
    main()
