-- lm.analysis: numbers read off attention, for the "echoes as anchors" measurement and its kind. Attention mass
-- from one span of positions to another per layer (heads averaged), the early/middle/late layer groups, and the
-- comparison of two groups of items (correct vs wrong) per layer and per group with AUC and Cohen's d.
-- Spans are {from, to}: 1-based positions, inclusive, as in the attention matrix's rows and columns.
local lm = require "lm"
local stats = require "lm.stats"
local M, doc = {}, {}

local function check_span(fname, s, what, T)
  if type(s) ~= "table" or not math.tointeger(s[1]) or not math.tointeger(s[2]) then
    error(("lm.analysis.%s: %s must be a span {from, to} of integer positions"):format(fname, what), 3)
  end
  if s[1] < 1 or s[2] > T or s[1] > s[2] then
    error(("lm.analysis.%s: %s {%d, %d} is outside the %d positions (or empty)"):format(fname, what, s[1], s[2], T), 3)
  end
end

doc.groups = {
  usage = "lm.analysis.groups(layer_count) -> {{name=, from=, to=}, ...}",
  text = "The early, middle and late layer groups (0-based, inclusive). For 30 layers they are the paper's "
    .. "0-6, 7-17, 18-29; other depths are cut at the same fractions (7/30 and 18/30 of the depth, rounded), "
    .. "so 24 layers give 0-5, 6-13, 14-23.",
  example = "for _, g in ipairs(lm.analysis.groups(24)) do print(g.name, g.from, g.to) end",
}
function M.groups(n)
  if not math.tointeger(n) or n < 3 then error("lm.analysis.groups: needs a layer count of at least 3, got " .. tostring(n), 2) end
  local a = math.max(1, math.floor(n * 7 / 30 + 0.5))
  local b = math.max(a + 1, math.min(n - 1, math.floor(n * 18 / 30 + 0.5)))
  return {{name = "early", from = 0, to = a - 1}, {name = "middle", from = a, to = b - 1},
          {name = "late", from = b, to = n - 1}}
end

doc.span_mass = {
  usage = "lm.analysis.span_mass(att, rows, cols) -> {per layer}",
  text = "For each layer of an attention matrix (what m:attention returns, layers x heads x T x T, or heads "
    .. "already averaged, layers x T x T): average the heads, then for every query position in rows sum the "
    .. "attention it puts on the key positions in cols, and average over those rows. rows and cols are spans "
    .. "{from, to} (1-based, inclusive). Returns one number per layer, in the order of att.layers.",
  example = "local att = m:attention(ids)\nlocal to_question = lm.analysis.span_mass(att, {40, #ids}, {5, 30})",
}
function M.span_mass(att, rows, cols)
  local shape = att:shape()
  if #shape ~= 3 and #shape ~= 4 then
    error("lm.analysis.span_mass: att must be layers x heads x T x T or layers x T x T, got " .. table.concat(shape, "x"), 2)
  end
  local T = shape[#shape]
  check_span("span_mass", rows, "rows", T)
  check_span("span_mass", cols, "cols", T)
  local out = {}
  for i = 1, shape[1] do
    local a = att[i]
    if #shape == 4 then a = a:mean(1) end                 -- heads averaged: T x T
    local block = a:slice(1, rows[1], rows[2]):slice(2, cols[1], cols[2])
    out[i] = block:sum(2):mean()                          -- each row's mass on cols, averaged over rows
  end
  return out
end

doc.echo = {
  usage = "lm.analysis.echo(m, prompt_ids, answer_ids, question, {k=32, layers=\"all\"}) -> {...}",
  text = "The paper's attention-refocusing measurement for one item: one forward pass over prompt + answer, "
    .. "heads averaged; for every answer token, the attention it puts on the first k answer tokens "
    .. "(answer_to_answer) and on the question (answer_to_question, question a span {from, to} of prompt "
    .. "positions), averaged over the answer tokens, per layer. Returns {layers=, answer_to_answer=, "
    .. "answer_to_question=, tokens=} (lists in the order of layers).",
  example = "local e = lm.analysis.echo(m, prompt, r.ids, {q1, q2}, {k = 32})\nprint(e.answer_to_answer[15])",
}
function M.echo(m, prompt, answer, question, opts)
  opts = opts or {}
  for key in pairs(opts) do
    if key ~= "k" and key ~= "layers" then error(("lm.analysis.echo: unknown option '%s' (k, layers)"):format(tostring(key)), 2) end
  end
  if type(prompt) ~= "table" or type(answer) ~= "table" or #prompt == 0 or #answer == 0 then
    error("lm.analysis.echo: prompt_ids and answer_ids must be non-empty lists of ids", 2)
  end
  local k = opts.k or 32
  local ids = table.move(prompt, 1, #prompt, 1, {})
  table.move(answer, 1, #answer, #ids + 1, ids)
  check_span("echo", question, "question", #prompt)
  local att = m:attention(ids, {layers = opts.layers or "all"})
  local a1, a2 = #prompt + 1, #ids
  local span_k = {a1, math.min(a2, a1 + k - 1)}
  local layers = {}
  for i, l in ipairs(att.layers) do layers[i] = l end
  return {layers = layers, tokens = #ids,
          answer_to_answer = M.span_mass(att, {a1, a2}, span_k),
          answer_to_question = M.span_mass(att, {a1, a2}, question)}
end

doc.by_group = {
  usage = "lm.analysis.by_group(values, layers [, groups]) -> {{name=, from=, to=, value=}, ...}",
  text = "The mean of per-layer values over each layer group (default lm.analysis.groups of the deepest layer "
    .. "+ 1). layers lists the model layer of each value; a group with none of them is left out.",
  example = "local g = lm.analysis.by_group(e.answer_to_answer, e.layers)\nprint(g[2].name, g[2].value)",
}
function M.by_group(values, layers, groups)
  groups = groups or M.groups(layers[#layers] + 1)
  local out = {}
  for _, g in ipairs(groups) do
    local s, n = 0, 0
    for i, l in ipairs(layers) do
      if l >= g.from and l <= g.to then s, n = s + values[i], n + 1 end
    end
    if n > 0 then out[#out + 1] = {name = g.name, from = g.from, to = g.to, value = s / n} end
  end
  return out
end

-- One comparison of two lists of numbers.
local function compare_lists(xs, ys)
  return {mean_a = stats.mean(xs), mean_b = stats.mean(ys), auc = stats.auc(xs, ys),
          d = (#xs + #ys >= 3) and stats.cohens_d(xs, ys) or nil, n_a = #xs, n_b = #ys}
end

doc.compare = {
  usage = "lm.analysis.compare(a, b, layers [, groups]) -> {layers = {...}, groups = {...}}",
  text = "Compares two groups of items (a: e.g. correct, b: wrong), each item a list of per-layer values in the "
    .. "order of layers. Per layer and per layer group (the item's mean over the group's layers): mean_a, mean_b, "
    .. "auc (the probability that an a-item scores above a b-item; 0.5 is chance) and d (Cohen's d, a minus b; "
    .. "nil when both are constant), with n_a, n_b. Each group needs at least one item.",
  example = "local c = lm.analysis.compare(correct, wrong, e.layers)\nprint(lm.analysis.report(c))",
}
function M.compare(a, b, layers, groups)
  if type(a) ~= "table" or type(b) ~= "table" or #a == 0 or #b == 0 then
    error("lm.analysis.compare: both groups need at least one item (a list of per-layer values)", 2)
  end
  local out = {layers = {}, groups = {}}
  for i, l in ipairs(layers) do
    local xs, ys = {}, {}
    for j, item in ipairs(a) do xs[j] = item[i] end
    for j, item in ipairs(b) do ys[j] = item[i] end
    local c = compare_lists(xs, ys)
    c.layer = l
    out.layers[i] = c
  end
  groups = groups or M.groups(layers[#layers] + 1)
  for _, g in ipairs(groups) do
    local xs, ys = {}, {}
    for j, item in ipairs(a) do xs[j] = M.by_group(item, layers, {g})[1] end
    for j, item in ipairs(b) do ys[j] = M.by_group(item, layers, {g})[1] end
    if xs[1] then
      for j = 1, #xs do xs[j] = xs[j].value end
      for j = 1, #ys do ys[j] = ys[j].value end
      local c = compare_lists(xs, ys)
      c.name, c.from, c.to = g.name, g.from, g.to
      out.groups[#out.groups + 1] = c
    end
  end
  return out
end

doc.report = {
  usage = "lm.analysis.report(comparison [, {names = {\"a\", \"b\"}, percent = true}]) -> text",
  text = "A comparison from lm.analysis.compare as a plain-text table: one row per layer group, then one per "
    .. "layer, with the two means (as percentages unless percent = false), AUC and Cohen's d.",
  example = "print(lm.analysis.report(c, {names = {\"correct\", \"wrong\"}}))",
}
function M.report(c, opts)
  opts = opts or {}
  local names = opts.names or {"a", "b"}
  local pct = opts.percent ~= false
  local function v(x) return pct and ("%7.2f%%"):format(100 * x) or ("%8.4f"):format(x) end
  local function d(x) return x and ("%+6.2f"):format(x) or "    --" end
  local lines = {("%-14s %8s %8s %6s %6s"):format("", names[1], names[2], "AUC", "d")}
  for _, g in ipairs(c.groups) do
    lines[#lines + 1] = ("%-14s %s %s %6.3f %s"):format(("%s %d-%d"):format(g.name, g.from, g.to), v(g.mean_a),
      v(g.mean_b), g.auc, d(g.d))
  end
  for _, l in ipairs(c.layers) do
    lines[#lines + 1] = ("%-14s %s %s %6.3f %s"):format("layer " .. l.layer, v(l.mean_a), v(l.mean_b), l.auc, d(l.d))
  end
  return table.concat(lines, "\n")
end

for name, entry in pairs(doc) do
  entry.name = "lm.analysis." .. name
  lm.document(M[name], entry)
end
lm.document(M, {
  name = "lm.analysis",
  usage = "lm.analysis",
  text = "Attention analysis: span_mass (attention from one span of positions to another, per layer), echo (the "
    .. "echoes-as-anchors measurement for one item), groups (early/middle/late layers), by_group, compare (two "
    .. "groups of items per layer and group, with AUC and Cohen's d) and report.",
  example = "local e = lm.analysis.echo(m, prompt, r.ids, {q1, q2})\n"
    .. "for _, g in ipairs(lm.analysis.by_group(e.answer_to_question, e.layers)) do print(g.name, g.value) end",
})
return M
