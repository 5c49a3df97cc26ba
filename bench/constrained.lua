-- refrain's half of bench/constrained.sh: milliseconds per generated token under a grammar and without one, same
-- prompt, seed and token count (the free run generates as many tokens as the constrained one did, ignoring EOS).
-- Two constrained runs: the first in the process under this grammar ("cold": every matcher state it meets is new,
-- its token mask computed), then one with the next seed ("warm": as an experiment's next item, the states met
-- before have their masks kept; new ones are computed).
--   refrain run --model MODEL --threads N bench/constrained.lua GRAMMAR.gbnf TOKENS TEMPERATURE [PROMPT]
--   -> tokens, ms/token cold, ms/token warm, ms/token free (of the warm run's token count)
local file, tokens, temperature = arg[1], tonumber(arg[2] or "64"), tonumber(arg[3] or "1")
local grammar = assert(io.open(file)):read("a")
local prompt = arg[4] or "A shopping list:\n"
lm.generate(prompt, {max_tokens = 1})   -- the prompt evaluated (and cached) outside the timing
local t0 = lm.clock()
local c = lm.generate(prompt, {grammar = grammar, max_tokens = tokens, temperature = temperature, seed = 7})
local t1 = lm.clock()
local w = lm.generate(prompt, {grammar = grammar, max_tokens = tokens, temperature = temperature, seed = 8})
local t2 = lm.clock()
local f = lm.generate(prompt, {max_tokens = #w.ids, temperature = temperature, seed = 8, ignore_eos = true})
local t3 = lm.clock()
local per = function(dt, n) return 1000 * dt / math.max(n, 1) end
print(("%d %.3f %.3f %.3f"):format(#w.ids, per(t1 - t0, #c.ids), per(t2 - t1, #w.ids), per(t3 - t2, #f.ids)))
