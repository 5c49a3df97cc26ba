-- Steering and interventions from Lua, on the default model (SmolLM2, 30 layers, 9 heads, 576 wide): lm.vector,
-- m:steer, the intervene option on every model call, m:patching, and their errors.
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local m = lm.model
local PROMPT = "Tell me about your day."
local HAPPY = {"I am so happy today, everything is wonderful!", "What a joyful, delightful morning!", "I love this, it makes me smile."}
local SAD = {"I am so sad today, everything is hopeless.", "What a gloomy, miserable morning.", "I hate this, it makes me cry."}
local v = m:steer(HAPPY, SAD)
local greedy = {max_tokens = 16, temperature = 0}
local function with(t, extra) local o = {} for k, x in pairs(t) do o[k] = x end for k, x in pairs(extra) do o[k] = x end return o end

T.test("steer: a mean-difference vector for layers 1 to 29, equal to the hidden states' difference", function()
  T.eq(#v, 29); T.eq(v:dimension(), 576)
  T.eq(table.concat(v:layers(), ","), table.concat((function() local l = {} for i = 1, 29 do l[i] = i end return l end)(), ","))
  -- Layer 10 by hand from m:hidden (the last token's residual row).
  local sum = {}
  for i = 1, 576 do sum[i] = 0 end
  for _, set in ipairs{{HAPPY, 1}, {SAD, -1}} do
    for _, text in ipairs(set[1]) do
      local h = m:hidden(text, {layers = 10})
      local row = h[1][#h.ids]
      for i = 1, 576 do sum[i] = sum[i] + set[2] * row[i] / 3 end
    end
  end
  local d = v:get(10)
  for i = 1, 576, 37 do T.ok(math.abs(d[i] - sum[i]) < 1e-3, ("element %d: %g vs %g"):format(i, d[i], sum[i])) end
  T.eq(v:get(0), nil)
end)

T.test("vectors: arithmetic, only, normalized, random of the same norms, save and load", function()
  T.ok(math.abs((v * 2):norm(5) - 2 * v:norm(5)) < 1e-4)
  T.ok(math.abs((2 * v):norm(5) - (v + v):norm(5)) < 1e-4)
  T.ok((v - v):norm(5) == 0 and (-v + v):norm(7) == 0)
  T.ok(math.abs((v / 4):norm(3) - v:norm(3) / 4) < 1e-4)
  T.eq(#v:only({3, 4}), 2)
  T.ok(math.abs(v:normalized():norm(8) - 1) < 1e-5)
  local r = lm.vector.random(v, {seed = 7})
  T.ok(math.abs(r:norm(12) - v:norm(12)) < 1e-3, "same norm")
  T.eq(lm.vector.random(v, {seed = 7}):get(12)[5], r:get(12)[5], "seeded")
  local dot = 0
  local a, b = r:get(12), v:get(12)
  for i = 1, 576 do dot = dot + a[i] * b[i] end
  T.ok(math.abs(dot) / (r:norm(12) * v:norm(12)) < 0.2, "a random direction is nearly orthogonal")
  local dir = T.tmpdir()
  v:save(dir .. "/v.gguf")
  local w = lm.vector.load(dir .. "/v.gguf")
  T.eq(#w, 29); T.eq((w - v):norm(20), 0)
  T.ok(tostring(w):find("29 directions of 576", 1, true))
  local n = lm.vector.new{[3] = {1, 2, 3}, [5] = lm.matrix{4, 5, 6}}
  T.eq(#n, 2); T.eq(n:get(5)[2], 5)
  T.err(function() v:only({0}):save(dir .. "/zero.gguf") end, "nothing") -- v has no layer 0: an empty vector
end)

T.test("intervene on generate: a scale of 0 changes nothing, steering changes the text and is seeded", function()
  local plain = m:generate(PROMPT, greedy)
  T.eq(m:generate(PROMPT, with(greedy, {intervene = {add = v, scale = 0}})).text, plain.text)
  local sad = m:generate(PROMPT, with(greedy, {intervene = {add = v, scale = -1, layers = {8, 9, 10, 11, 12}}}))
  T.ok(sad.text ~= plain.text, "steering changes the text")
  T.eq(m:generate(PROMPT, with(greedy, {intervene = {add = v, scale = -1, layers = {8, 9, 10, 11, 12}}})).text, sad.text)
  -- and the plain call after it is plain again (the prefix cache keeps them apart)
  T.eq(m:generate(PROMPT, greedy).text, plain.text)
  -- a random direction of the same norms is the control
  local rnd = m:generate(PROMPT, with(greedy, {intervene = {add = lm.vector.random(v, {seed = 1}), scale = -1, layers = {8, 9, 10, 11, 12}}}))
  T.ok(type(rnd.text) == "string")
end)

T.test("intervene on sample, generate_batch and states equals generate's", function()
  local x = {add = v, scale = -1, layers = {10, 11}}
  local o = {max_tokens = 10, temperature = 0.8, seed = 5, intervene = x}
  local g = m:generate(PROMPT, o)
  local s = m:sample(PROMPT, 2, o)
  T.eq(s[1].text, g.text)
  local b = m:generate_batch({{prompt = PROMPT, opts = o}, {prompt = PROMPT, opts = {max_tokens = 10, temperature = 0.8, seed = 5}}})
  T.eq(b[1].text, g.text)
  T.eq(b[2].text, m:generate(PROMPT, {max_tokens = 10, temperature = 0.8, seed = 5}).text)
  local st = m:state(PROMPT, {intervene = x})
  T.eq(st:generate({max_tokens = 10, temperature = 0.8, seed = 5}).text, g.text)
  T.err(function() st:generate({max_tokens = 2, intervene = v}) end, "a state's interventions are set when it is made")
end)

T.test("intervene on score, choose, hidden, attention and logit_lens", function()
  local x = {add = v, scale = 2, layers = {5, 6, 7}}
  local a, b = m:score(PROMPT, " I am happy"), m:score(PROMPT, " I am happy", {intervene = x})
  T.ok(a.sum ~= b.sum)
  T.eq(m:score(PROMPT, " I am happy", {intervene = {add = v, scale = 0}}).sum, a.sum)
  local _, scores = m:choose(PROMPT, {" good", " bad"}, {intervene = x})
  T.eq(scores[1].sum, m:score(PROMPT, " good", {intervene = x}).sum)
  -- Ablating the direction leaves no component along it at that layer.
  local h = m:hidden(PROMPT, {layers = 10, intervene = {ablate = v, layers = 10}})
  local u, row = v:normalized():get(10), h[1][3]
  local dot = 0
  for i = 1, 576 do dot = dot + u[i] * row[i] end
  T.ok(math.abs(dot) < 1e-2, "ablated: " .. dot)
  local c = m:hidden(PROMPT, {layers = 10, intervene = {clamp = v, value = 3, layers = 10}})[1][3]
  dot = 0
  for i = 1, 576 do dot = dot + u[i] * c[i] end
  T.ok(math.abs(dot - 3) < 1e-2, "clamped: " .. dot)
  local att = m:attention(PROMPT, {layers = 3, heads = 0, intervene = x})
  T.eq(att:dim(), 4)
  local lens = m:logit_lens(PROMPT, {layers = 29, intervene = x})
  T.ok(lens.logprob[1][1] ~= m:logit_lens(PROMPT, {layers = 29}).logprob[1][1])
end)

T.test("heads: every head zeroed equals the attention removed; mean ablation over texts", function()
  local a = m:score(PROMPT, " I am fine", {intervene = {heads = "all", layers = 4}})
  local b = m:score(PROMPT, " I am fine", {intervene = {attention = 0, layers = 4}})
  T.eq(a.sum, b.sum)
  T.ok(a.sum ~= m:score(PROMPT, " I am fine").sum)
  local mean = m:score(PROMPT, " I am fine", {intervene = {heads = {1, 2}, layer = 4, mode = "mean", over = HAPPY}})
  T.ok(mean.sum ~= a.sum)
  T.eq(m:score(PROMPT, " I am fine", {intervene = {heads = {1, 2}, layer = 4, scale = 1}}).sum, m:score(PROMPT, " I am fine").sum)
end)

T.test("patch: a run's own hidden states change nothing; patching finds the position that matters", function()
  local h = m:hidden(PROMPT, {layers = {6}})
  local plain = m:score(PROMPT, " I am fine")
  T.eq(m:score(PROMPT, " I am fine", {intervene = {patch = h}}).sum, plain.sum)
  local sw = m:patching("The capital of France is the city of", "The capital of Italy is the city of",
    {target = " Paris", foil = " Rome", layers = {0, 29}})
  T.ok(sw.clean > sw.corrupted)
  local r = sw.restored
  T.eq(table.concat(r:shape(), "x"), "2x" .. #sw.tokens)
  local best, at = -1, 0
  for p = 1, #sw.tokens do if r[1][p] > best then best, at = r[1][p], p end end
  T.eq(sw.tokens[at], " Italy"); T.eq(sw.clean_tokens[at], " France")
  T.ok(math.abs(r[2][#sw.tokens] - 1) < 1e-4, "the last layer at the last position restores all")
end)

T.test("intervene: errors name the problem", function()
  T.err(function() m:generate("x", {intervene = {add = v, scael = 3}}) end, "unknown key 'scael' (did you mean 'scale'?)")
  T.err(function() m:generate("x", {intervene = {add = {1, 2}, layers = 3}}) end, "the vector has 2 values, the model's embedding has 576")
  T.err(function() m:generate("x", {intervene = {add = v, layers = 40}}) end, "layer 40 is out of range")
  T.err(function() m:generate("x", {intervene = {heads = {12}, layers = 2}}) end, "head 12 is out of range (the model has heads 0 to 8)")
  T.err(function() m:generate("x", {intervene = {add = v, ablate = v}}) end, "an intervention does one thing, got add and ablate")
  T.err(function() m:generate("x", {intervene = {clamp = v}}) end, "'clamp' needs a value")
  T.err(function() m:generate("x", {intervene = {v, {add = v, positions = "later"}}}) end, "item 2: positions must be")
  T.err(function() m:generate("x", {intervene = 3}) end, "must be a vector, an intervention table or a list of them")
  T.err(function() m:steer({"a"}, {"b", "c"}, {method = "pca"}) end, "pairs the prompts")
  T.err(function() m:patching("a b c", "a b", {target = " d"}) end, "same length")
  T.err(function() lm.vector.load("/nonexistent.gguf") end, "lm.vector.load:")
end)

T.done()
