-- refrain's half of bench/constrained.sh: milliseconds per generated token under a grammar and without one, same
-- prompt, seed and token count (the free run generates as many tokens as the constrained one did, ignoring EOS).
-- Two constrained runs: the first in the process under this grammar ("cold": every matcher state it meets is new),
-- then one with the next seed ("warm": as an experiment's next item, the states met before are known).
-- SAMPLING: "top-k" (top-k 40, top-p 0.95, min-p 0.05: llama.cpp's and refrain's defaults) or "whole" (top-k 0,
-- top-p 1, min-p 0: the whole distribution).
--   refrain run --model MODEL --threads N bench/constrained.lua GRAMMAR.gbnf TOKENS TEMPERATURE SAMPLING [PROMPT]
--   -> tokens (warm run), ms/token cold, ms/token warm, ms/token free after cold, ms/token free after warm, ms to
--      build the trie
local file, tokens, temperature = arg[1], tonumber(arg[2] or "64"), tonumber(arg[3] or "1")
local grammar = assert(io.open(file)):read("a")
local sampling = ({["top-k"] = {top_k = 40, top_p = 0.95, min_p = 0.05}, whole = {top_k = 0, top_p = 1, min_p = 0}})[arg[4] or "top-k"]
  or error("sampling: top-k or whole, got " .. tostring(arg[4]))
local prompt = arg[5] or "A shopping list:\n"
local function opts(t)
  for k, v in pairs(sampling) do t[k] = v end
  t.temperature = temperature
  return t
end
lm.generate(prompt, {max_tokens = 1})   -- the prompt evaluated (and cached) outside the timing
-- The vocabulary's byte trie, built once per model by the first constrained call in the process, timed apart: a
-- cost per process, not per token (a one-token generation under a one-string grammar, less a free one).
local b0 = lm.clock()
lm.generate(prompt, {max_tokens = 1, grammar = 'root ::= "-"'})
local b1 = lm.clock()
lm.generate(prompt, {max_tokens = 1})
local b2 = lm.clock()
-- Each constrained run is followed by a free one of as many tokens (EOS ignored), so that the machine's drift
-- falls on both sides of each ratio.
local t0 = lm.clock()
local c = lm.generate(prompt, opts{grammar = grammar, max_tokens = tokens, seed = 7})
local t1 = lm.clock()
local fc = lm.generate(prompt, opts{max_tokens = #c.ids, seed = 7, ignore_eos = true})
local t2 = lm.clock()
local w = lm.generate(prompt, opts{grammar = grammar, max_tokens = tokens, seed = 8})
local t3 = lm.clock()
local fw = lm.generate(prompt, opts{max_tokens = #w.ids, seed = 8, ignore_eos = true})
local t4 = lm.clock()
local per = function(dt, n) return 1000 * dt / math.max(n, 1) end
print(("%d %.3f %.3f %.3f %.3f %.1f"):format(#w.ids, per(t1 - t0, #c.ids), per(t3 - t2, #w.ids), per(t2 - t1, #fc.ids),
  per(t4 - t3, #fw.ids), 1000 * math.max(0, (b1 - b0) - (b2 - b1))))
