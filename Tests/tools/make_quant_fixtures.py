#!/usr/bin/env python3
"""Writes Tests/EngineTests/Fixtures/quants/<TYPE>.json: a few blocks of each tensor type and the floats that
llama.cpp's gguf-py (numpy ports of ggml's quantizers and dequantizers) makes of them. TensorTypeTests checks the
engine's reference dequantizers against these.

Blocks come from seeded random data: quantized by gguf-py where it can quantize the type (Q5_1, MXFP4), and in
every case also random raw block bytes with the float scale fields set to finite values (so every bit of the
quantized fields is exercised). Deterministic: rerunning writes the same files.

Run with the gguf-py of the llama.cpp the engine is compared against, e.g.
  PYTHONPATH=/path/to/llama.cpp/gguf-py python3 Tests/tools/make_quant_fixtures.py
"""
import json
import os

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
        doc = {
            "type": name,
            "blocks": data.size // size,
            "note": "raw blocks and gguf-py's dequantization of them; written by Tests/tools/make_quant_fixtures.py",
            "hex": data.tobytes().hex(),
            "values": [float(v) for v in values],
        }
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print(f"{name}: {doc['blocks']} blocks, {values.size} values")


if __name__ == "__main__":
    main()
