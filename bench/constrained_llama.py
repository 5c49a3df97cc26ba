# llama.cpp's half of bench/constrained.sh, through llama-cpp-python (the same path for both readings, so the
# ratio is llama.cpp's own): milliseconds per generated token under the grammar and without it.
#   python bench/constrained_llama.py MODEL GRAMMAR.gbnf TOKENS TEMPERATURE THREADS SAMPLING [PROMPT]
# SAMPLING as in bench/constrained.lua: top-k (40, top-p 0.95, min-p 0.05) or whole.
import sys, time
from llama_cpp import Llama, LlamaGrammar
model, gfile, tokens, temperature, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
llm = Llama(model_path=model, n_ctx=1024, n_threads=threads, verbose=False, seed=7)
grammar = LlamaGrammar.from_file(gfile, verbose=False)
sampling = sys.argv[6] if len(sys.argv) > 6 else "top-k"
prompt = sys.argv[7] if len(sys.argv) > 7 else "A shopping list:\n"
truncation = {"top-k": dict(top_k=40, top_p=0.95, min_p=0.05), "whole": dict(top_k=0, top_p=1.0, min_p=0.0)}[sampling]
plain = dict(temperature=temperature, repeat_penalty=1.0, seed=7, **truncation)
llm.create_completion(prompt, max_tokens=1, grammar=grammar, **plain)
t0 = time.perf_counter()
c = llm.create_completion(prompt, max_tokens=tokens, grammar=grammar, **plain)
t1 = time.perf_counter()
n = c["usage"]["completion_tokens"]
llm.reset()
t2 = time.perf_counter()
f = llm.create_completion(prompt, max_tokens=n, logit_bias={llm.token_eos(): -1e9}, **plain)
t3 = time.perf_counter()
m = f["usage"]["completion_tokens"]
print("%d %.3f %.3f" % (n, 1000 * (t1 - t0) / max(n, 1), 1000 * (t3 - t2) / max(m, 1)))
