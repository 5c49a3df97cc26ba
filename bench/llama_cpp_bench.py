#!/usr/bin/env python3
"""llama.cpp's speed on a GGUF file, measured the way `refrain bench` measures refrain's: pp = one batch of N
tokens into an empty context, tg = N tokens decoded one at a time from an empty context; median of --runs runs.
Runs under the virtual environment that `./setup.sh --llama-cpp` builds. Prints one JSON object."""
import argparse, json, statistics, sys, time

import llama_cpp


def bench_tokens(n, vocab):
    # The same deterministic ids as refrain's bench (an LCG over the first 32000 ids).
    x, out = 0x9E3779B97F4A7C15, []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append((x >> 33) % min(vocab, 32000))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pp", type=int, default=128)
    ap.add_argument("--tg", type=int, default=128)
    ap.add_argument("--context", type=int, default=0,
                    help="decode after this many tokens already in the cache (filled once, then rewound per run)")
    a = ap.parse_args()
    results = []
    for t in [int(x) for x in a.threads.split(",")]:
        llm = llama_cpp.Llama(model_path=a.model, n_ctx=max(a.pp, a.context + a.tg) + 8,
                              n_batch=max(a.pp, 512 if a.context else 8),
                              n_threads=t, n_threads_batch=t, verbose=False, logits_all=False)
        toks = bench_tokens(max(a.pp, a.tg, a.context), llm.n_vocab())
        llm.reset(); llm.eval(toks[:16])  # warm-up
        pp, tg = [], []
        fill = 0.0
        if a.context and a.tg:
            llm.reset()
            t0 = time.perf_counter(); llm.eval(toks[:a.context]); fill = time.perf_counter() - t0
        for _ in range(a.runs):
            if a.pp:
                llm.reset(); llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
                t0 = time.perf_counter(); llm.eval(toks[:a.pp]); pp.append(a.pp / (time.perf_counter() - t0))
            if a.tg and a.context:
                llm.n_tokens = a.context  # eval drops the cache beyond n_tokens: a rewind to the filled context
                t0 = time.perf_counter()
                for i in range(a.tg):
                    llm.eval([toks[i]])
                tg.append(a.tg / (time.perf_counter() - t0))
            elif a.tg:
                llm.reset(); llm._ctx.kv_cache_clear() if hasattr(llm._ctx, "kv_cache_clear") else None
                t0 = time.perf_counter()
                for i in range(a.tg):
                    llm.eval([toks[i]])
                tg.append(a.tg / (time.perf_counter() - t0))
        results.append({"threads": t, "pp_tps": statistics.median(pp) if pp else 0,
                        "tg_tps": statistics.median(tg) if tg else 0, "pp_runs": pp, "tg_runs": tg,
                        "context": a.context, "context_fill_seconds": fill})
        del llm
    json.dump({"model": a.model, "llama_cpp_python": llama_cpp.__version__, "results": results}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
