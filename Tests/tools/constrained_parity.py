#!/usr/bin/env python3
"""llama.cpp's greedy outputs under GBNF grammars, beside refrain's (ConstraintParityTests).

Usage: constrained_parity.py REQUEST.json  (run with llama-cpp-python's Python, setup.sh --llama-cpp)

REQUEST: {"model": PATH, "cases": [{"name", "grammar", "prompt_ids", "max_tokens", "refrain_ids", "refrain_ended"}]}. For each case,
llama.cpp generates greedily under the grammar from the same prompt tokens (llama-cpp-python's generate: the grammar sampler, then greedy; penalties off); where its
tokens part from refrain's, the prompt and the tokens both share are evaluated again and llama.cpp's own
log-probabilities of its token and of refrain's token there give the margin (the near-tie rule of the reference
tests is then applied by the Swift test). Prints a JSON list: {"name", "llama_ids", "llama_text", "diverge" (the
0-based index of the first differing token, or null), "margin" (llama.cpp's log-probability of its token minus that
of refrain's token there, or null)}.
"""
import json, math, sys

import numpy as np

import llama_cpp
from llama_cpp import Llama, LlamaGrammar


def log_softmax(row):
    m = max(row)
    z = m + math.log(sum(math.exp(x - m) for x in row))
    return lambda t: row[t] - z


def main():
    req = json.load(open(sys.argv[1]))
    llm = Llama(model_path=req["model"], n_ctx=2048, n_threads=2, n_batch=512, verbose=False, logits_all=False)
    out = []
    for case in req["cases"]:
        g = LlamaGrammar.from_string(case["grammar"], verbose=False)
        prompt, mine = case["prompt_ids"], case["refrain_ids"]
        ids = []
        for tok in llm.generate(prompt, temp=0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, grammar=g, reset=True):
            ids.append(tok)   # an end-of-generation token too: refrain's list ends with it when it ended there
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
                break
            if len(ids) >= case["max_tokens"]:
                break
        text = llm.detokenize([t for t in ids if not llama_cpp.llama_vocab_is_eog(llm._model.vocab, t)]).decode("utf-8", errors="replace")
        # An end-of-generation token ends both lists or neither: refrain stops without one where the grammar is
        # complete and takes nothing more (llama.cpp then samples the only token left, the end token).
        eog = lambda t: llama_cpp.llama_vocab_is_eog(llm._model.vocab, t)
        llama_ended = bool(ids) and eog(ids[-1])
        if llama_ended and case.get("refrain_ended"):
            ids, mine = ids[:-1], [t for t in mine if not eog(t)]
        diverge, margin = None, None
        for k in range(max(len(ids), len(mine))):
            a = ids[k] if k < len(ids) else None
            b = mine[k] if k < len(mine) else None
            if a != b:
                diverge = k
                break
        if diverge is not None and diverge < len(ids) and diverge < len(mine):
            llm.reset()
            llm.eval(prompt + ids[:diverge])
            # the last position's logits (llama-cpp-python keeps no scores row without logits_all)
            row = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
            lp = log_softmax([float(x) for x in row])
            margin = float(lp(ids[diverge]) - lp(mine[diverge]))
        out.append({"name": case["name"], "llama_ids": ids, "llama_text": text, "diverge": diverge, "margin": margin})
    json.dump(out, sys.stdout)


main()
