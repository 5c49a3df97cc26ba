-- refrain's half of bench/constrained.sh: milliseconds per generated token under a grammar and without one, same
-- prompt, seed and token count (the free run generates as many tokens as the constrained one did, ignoring EOS).
--   refrain run --model MODEL --threads N bench/constrained.lua GRAMMAR.gbnf TOKENS TEMPERATURE [PROMPT]
local file, tokens, temperature = arg[1], tonumber(arg[2] or "64"), tonumber(arg[3] or "1")
local grammar = assert(io.open(file)):read("a")
local prompt = arg[4] or "A shopping list:\n"
local opts = {grammar = grammar, max_tokens = tokens, temperature = temperature, seed = 7}
lm.generate(prompt, {grammar = grammar, max_tokens = 1})   -- the trie and the first state, outside the timing
local t0 = lm.clock()
local c = lm.generate(prompt, opts)
local t1 = lm.clock()
local f = lm.generate(prompt, {max_tokens = #c.ids, temperature = temperature, seed = 7, ignore_eos = true})
local t2 = lm.clock()
print(("%d %.3f %.3f"):format(#c.ids, 1000 * (t1 - t0) / math.max(#c.ids, 1), 1000 * (t2 - t1) / math.max(#f.ids, 1)))
