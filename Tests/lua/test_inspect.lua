-- Looking inside the model from Lua, on the default model (SmolLM2, 30 layers, 9 heads): m:attention, m:hidden,
-- m:logit_lens and their matrices; lm.matrix; lm.analysis; lm.view; per-token entropy of a generation.
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local m = lm.model
local TEXT = "The cat sat on the mat because it was warm."

local function near(a, b, tol, msg)
  if math.abs(a - b) > (tol or 1e-5) then error(("%s: expected %.6g, got %.6g"):format(msg or "value", b, a), 2) end
end

local att = m:attention(TEXT, {layers = {0, 7, 29}, heads = {0, 4, 8}})
local n = #att.ids

T.test("attention: shape, fields and the dimensions' names", function()
  T.eq(table.concat(att:shape(), "x"), ("3x3x%dx%d"):format(n, n))
  T.eq(#att, 3); T.eq(att:dim(), 4)
  T.eq(table.concat(att.layers, ","), "0,7,29"); T.eq(table.concat(att.heads, ","), "0,4,8")
  T.eq(table.concat(att.dims, ","), "layer,head,query,key")
  T.eq(#att.tokens, n); T.eq(att.tokens[2], m:token(att.ids[2]))
  T.eq(table.concat(att.ids, ","), table.concat(m:tokenize(TEXT, {special = true}), ","))
end)

T.test("attention: every row sums to 1 and nothing is above the diagonal", function()
  for li = 1, 3 do
    for h = 1, 3 do
      local a = att[li][h]
      for q = 1, n do
        near(a[q]:sum(), 1, 1e-5, ("row sum, layer %d head %d row %d"):format(att.layers[li], att.heads[h], q))
        if q < n then T.eq(a[q]:slice(1, q + 1):max(), 0, "above the diagonal") end
      end
    end
  end
  T.eq(att:min() >= 0, true)
end)

T.test("attention: one head asked alone equals the same head among others; the default is every layer and head", function()
  local one = m:attention(TEXT, {layers = 7, heads = 4})
  T.eq(table.concat(one:shape(), "x"), ("1x1x%dx%d"):format(n, n))
  for q = 1, n do for k = 1, q do near(one:get(1, 1, q, k), att:get(2, 2, q, k), 1e-6, "same head") end end
  local all = m:attention("Hi there")
  T.eq(table.concat(all:shape(), "x"), ("30x9x%dx%d"):format(#all.ids, #all.ids))
  T.eq(all.layers[30], 29); T.eq(all.heads[9], 8)
end)

T.test("matrix: index, get, negative positions, layer(), select and slice agree", function()
  local v = att:get(2, 3, 5, 2)
  T.eq(att[2][3][5][2], v); T.eq(att[-2][-1][5][2], v)
  T.eq(att:layer(7, 8):get(5, 2), v); T.eq(att:layer(7)[3][5][2], v)
  T.eq(att:select(2, 3):get(2, 5, 2), v)
  T.eq(att:slice(3, 4, 6):get(2, 3, 2, 2), v)
  T.eq(att[2][3]:slice(2, 2, 2):totable()[5][1], v)
  local t = att[1][1]:totable()
  T.eq(#t, n); T.eq(#t[1], n); T.eq(t[3][2], att:get(1, 1, 3, 2))
end)

T.test("matrix: mean over heads is the heads' average; sum, max and min", function()
  local avg = att:mean(2)
  T.eq(table.concat(avg:shape(), "x"), ("3x%dx%d"):format(n, n))
  for q = 1, n, 3 do
    for k = 1, q do
      local s = 0
      for h = 1, 3 do s = s + att:get(3, h, q, k) end
      near(avg:get(3, q, k), s / 3, 1e-6, "mean over heads")
    end
  end
  local x = lm.matrix({{1, 2, 3}, {4, 5, 6}})
  T.eq(x:sum(), 21.0); T.eq(x:mean(), 3.5); T.eq(x:max(), 6.0); T.eq(x:min(), 1.0)
  T.eq(table.concat(x:sum(1):totable(), ","), "5.0,7.0,9.0")
  T.eq(table.concat(x:mean(2):totable(), ","), "2.0,5.0")
  T.eq(table.concat(x:max(-1):totable(), ","), "3.0,6.0")
  T.eq(tostring(x), "matrix 2×3 {{1, 2, 3}, {4, 5, 6}}")
  T.eq(tostring(lm.matrix(x:slice(2, 2))), "matrix 2×2 {{2, 3}, {5, 6}}")
end)

T.test("matrix: errors name the problem", function()
  local x = lm.matrix({{1, 2}, {3, 4}})
  T.err(function() return x[3] end, "index 3 is out of range (1..2)")
  T.err(function() return x:get(1) end, "get: the matrix has 2 dimensions (2×2), got 1 indices")
  T.err(function() return x:slice(3, 1) end, "dimension 3 is out of range (1..2)")
  T.err(function() return x:slice(1, 2, 1) end, "is before from")
  T.err(function() return lm.matrix({{1, 2}, {3}}) end, "not rectangular: t[2] has 1 elements, expected 2")
  T.err(function() return lm.matrix({{1, "a"}}) end, "t[1][2] is a string, not a number")
  T.err(function() return att:layer(3) end, "layer 3 was not asked for (this matrix has layers 0, 7, 29)")
  T.err(function() return att:layer(7, 1) end, "head 1 was not asked for")
  T.err(function() return x:layer(0) end, "this matrix has no 'layers' field")
end)

T.test("attention: bad layers, heads, options and too-large requests are errors from the engine", function()
  T.err(function() m:attention("x", {layers = 30}) end, "attention: layer 30 is out of range (the model has layers 0 to 29)")
  T.err(function() m:attention("x", {heads = {0, 9}}) end, "attention: head 9 is out of range (the model has heads 0 to 8)")
  T.err(function() m:attention("x", {layer = 3}) end, "unknown option 'layer' (did you mean 'layers'?)")
  T.err(function() m:attention("x", {layers = {}}) end, "option 'layers' is an empty list")
  T.err(function() m:hidden("x", {layers = -1}) end, "hidden: layer -1 is out of range")
  local long = {}
  for i = 1, 2100 do long[i] = 28 end
  T.err(function() m:attention(long) end, "over the 4.0 GiB limit: ask for fewer layers or heads, or a shorter text")
end)

T.test("hidden: layers x T x embedding; logit lens at the last layer is the model's own prediction", function()
  local h = m:hidden(TEXT, {layers = {0, 29}})
  T.eq(table.concat(h:shape(), "x"), ("2x%dx%d"):format(n, m.info.embedding))
  T.eq(table.concat(h.dims, ","), "layer,position,embedding")
  local lens = m:logit_lens(TEXT, {layers = {3, 29}, top = 3})
  T.eq(table.concat(lens.logprob:shape(), "x"), ("2x%d"):format(n - 1))
  T.eq(table.concat(lens.entropy:shape(), "x"), ("2x%d"):format(n))
  T.eq(#lens.top, 2); T.eq(#lens.top[2], n); T.eq(#lens.top[2][1], 3)
  -- The last layer's lens is the model's distribution: score gives the same log-probabilities.
  local ids = att.ids
  local cont = {}
  for i = 2, #ids do cont[i - 1] = ids[i] end
  local s = m:score({ids[1]}, cont)
  local worst = 0
  for t = 1, n - 1 do worst = math.max(worst, math.abs(lens.logprob:get(2, t) - s.logprobs[t])) end
  print(("logit lens at layer 29 vs score: max |difference| %.2e nats over %d tokens"):format(worst, n - 1))
  T.ok(worst < 2e-3, "lens at the last layer differs from score by " .. worst)
  near(lens.top[2][n - 1][1].logprob, lens.top[2][n - 1][1].logprob, 0)
  T.ok(lens.top[2][1][1].logprob >= lens.top[2][1][2].logprob, "top sorted")
  T.ok(lens.entropy:min() >= 0, "entropy is not negative")
end)

T.test("generate: per-token entropy with logprobs, consistent with the alternatives", function()
  local r = m:generate("The capital of France is", {max_tokens = 6, temperature = 0, logprobs = 5})
  T.eq(#r.entropy, #r.ids)
  for i, h in ipairs(r.entropy) do
    T.ok(h >= 0 and h <= math.log(m.info.vocab), "entropy in range")
    -- The entropy is at least the part the alternatives shown contribute.
    local part = 0
    for _, alt in ipairs(r.top[i]) do part = part - math.exp(alt.logprob) * alt.logprob end
    T.ok(h >= part - 1e-4, ("entropy %.4f below the top-5 part %.4f"):format(h, part))
  end
  local seen
  m:generate("Hi", {max_tokens = 1, logprobs = 2, on_token = function(_, info) seen = info.entropy end})
  T.ok(type(seen) == "number", "on_token info has entropy")
  T.eq(m:generate("Hi", {max_tokens = 2}).entropy, nil)
end)

T.test("lm.analysis: layer groups, span mass, compare and report", function()
  local g = lm.analysis.groups(30)
  T.eq(("%d-%d %d-%d %d-%d"):format(g[1].from, g[1].to, g[2].from, g[2].to, g[3].from, g[3].to), "0-6 7-17 18-29")
  g = lm.analysis.groups(24)
  T.eq(("%d-%d %d-%d %d-%d"):format(g[1].from, g[1].to, g[2].from, g[2].to, g[3].from, g[3].to), "0-5 6-13 14-23")
  g = lm.analysis.groups(18)
  T.eq(("%s %d-%d"):format(g[3].name, g[3].from, g[3].to), "late 11-17")
  -- A hand-made attention (1 layer x 2 heads x 3 x 3): mass of rows 2..3 on column 1, heads averaged.
  local a = lm.matrix({{{{1, 0, 0}, {0.5, 0.5, 0}, {0.2, 0.3, 0.5}}, {{1, 0, 0}, {0.1, 0.9, 0}, {0.6, 0.2, 0.2}}}})
  near(lm.analysis.span_mass(a, {2, 3}, {1, 1})[1], ((0.5 + 0.1) / 2 + (0.2 + 0.6) / 2) / 2, 1e-6, "span mass")
  near(lm.analysis.span_mass(a:mean(2), {2, 3}, {1, 2})[1], ((1.0 + 1.0) / 2 + (0.5 + 0.8) / 2) / 2, 1e-6, "span mass, 3-D")
  T.err(function() lm.analysis.span_mass(a, {2, 4}, {1, 1}) end, "rows {2, 4} is outside the 3 positions")
  -- Compare: per layer and per group, against lm.stats.
  local A = {{1, 2, 3}, {2, 3, 4}, {3, 4, 5}}
  local B = {{0, 1, 1}, {1, 1, 2}, {2, 2, 2}}
  local c = lm.analysis.compare(A, B, {0, 1, 2}, {{name = "all", from = 0, to = 2}})
  T.eq(c.layers[2].layer, 1)
  near(c.layers[2].auc, lm.stats.auc({2, 3, 4}, {1, 1, 2}), 1e-12, "auc")
  near(c.layers[2].d, lm.stats.cohens_d({2, 3, 4}, {1, 1, 2}), 1e-12, "d")
  near(c.groups[1].mean_a, 3, 1e-12, "group mean"); near(c.groups[1].auc, lm.stats.auc({2, 3, 4}, {2 / 3, 4 / 3, 2}), 1e-12)
  local text = lm.analysis.report(c, {names = {"correct", "wrong"}})
  T.ok(text:find("correct", 1, true) and text:find("all 0-2", 1, true) and text:find("layer 2", 1, true), text)
  local bg = lm.analysis.by_group({1, 2, 3, 4}, {0, 1, 2, 3}, lm.analysis.groups(4))
  T.eq(#bg, 3)
end)

T.test("lm.analysis.echo: answer->answer and answer->question mass per layer on a real pass", function()
  local prompt = m:tokenize("Question: what is 2 + 3? Answer:")
  local answer = m:tokenize(" 2 + 3 = 5, so the answer is 5.", {bos = false})
  local e = lm.analysis.echo(m, prompt, answer, {1, 8}, {k = 4, layers = {0, 15, 29}})
  T.eq(#e.answer_to_answer, 3); T.eq(e.layers[3], 29); T.eq(e.tokens, #prompt + #answer)
  for i = 1, 3 do
    T.ok(e.answer_to_answer[i] > 0 and e.answer_to_answer[i] <= 1, "a mass")
    T.ok(e.answer_to_question[i] > 0 and e.answer_to_question[i] + e.answer_to_answer[i] <= 1 + 1e-5, "masses")
  end
  -- The same number by hand for one layer: answer rows, first 4 answer columns, heads averaged.
  local ids = {}
  for _, v in ipairs(prompt) do ids[#ids + 1] = v end
  for _, v in ipairs(answer) do ids[#ids + 1] = v end
  local a = m:attention(ids, {layers = 15}):layer(15):mean(1)
  local s = 0
  for q = #prompt + 1, #ids do for k = #prompt + 1, #prompt + 4 do s = s + a:get(q, k) end end
  near(e.answer_to_answer[2], s / #answer, 1e-5, "by hand")
end)

T.test("lm.view: tokens coloured by probability, a position's alternatives and entropy; a terminal heatmap", function()
  local r = m:generate("The capital of France is", {max_tokens = 8, temperature = 0, logprobs = 3})
  local plain = lm.view.render_tokens(r, {color = false, position = 2})
  T.ok(plain:find("[[", 1, true), plain)
  T.ok(plain:find("position 2:", 1, true) and plain:find("entropy = ", 1, true), plain)
  T.ok(plain:find("   1. ", 1, true), plain)
  local colored = lm.view.render_tokens(r, {color = true})
  T.ok(colored:find("\27[32m", 1, true) or colored:find("\27[36m", 1, true), "ANSI colours")
  T.err(function() lm.view.render_tokens(r, {position = 99}) end, "position 99 is not a token of the result")
  local bare = lm.view.render_tokens(m:generate("Hi", {max_tokens = 2, temperature = 0}), {color = false, position = 1})
  T.ok(bare:find("generate with {logprobs = k}", 1, true), bare)
  local hm = lm.view.render_heatmap(lm.matrix({{0, 1}, {0.5, 0.25}}), {labels = {"a", "b"}, color = false})
  T.eq(hm, "a  █\nb ▒░\nscale: 0 .. 1 (' ░▒▓█')")
  local big = lm.view.render_heatmap(att:layer(0):mean(1), {color = false, width = 8, height = 4})
  T.ok(big:find("each cell the mean of", 1, true), big)
  local c = lm.view.render_heatmap(att:layer(0):mean(1), {color = true, labels = att.tokens})
  T.ok(c:find("\27[48;5;", 1, true), "256-colour backgrounds")
  T.err(function() lm.view.heatmap(att) end, "expects a 2-D matrix")
end)

T.done()
