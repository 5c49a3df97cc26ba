-- Echoes as anchors, attention refocusing (STRATEGIES.md section 1): does an answer that turns out right look
-- back at its own beginning, or at the question, more than one that turns out wrong?
--
-- For each item: generate an answer (greedy, bounded), mark it right or wrong, then one forward pass over
-- prompt + answer with attention; per layer, heads averaged, each answer token's attention on the first K answer
-- tokens and on the question, averaged over the answer tokens. Correct vs wrong, per layer and per layer group
-- (early/middle/late), with AUC and Cohen's d; a chart per measure.
--
--   refrain run scripts/experiments/echo_attention.lua --gsm8k PATH [--arith 60] [--gsm 60] [--k 32]
--       [--max-tokens 256] [--model qwen2.5-coder-0.5b-instruct-q4_k_m] [--out DIR] [--seed 1]
--   refrain run scripts/experiments/echo_attention.lua --summarize DIR/records.jsonl [--out DIR]
--
-- Each item's record is appended to DIR/records.jsonl as soon as it is measured (a long run can be read while
-- it goes, and --summarize redoes the statistics and charts from it without the model).
local json = lm.json

local function parse_args(argv)
  local o = {arith = 60, gsm = 60, k = 32, max_tokens = 256, model = "qwen2.5-coder-0.5b-instruct-q4_k_m",
             out = "echo_attention_out", seed = 1}
  local i = 1
  while i <= #argv do
    local a, v = argv[i], argv[i + 1]
    local key = a:match("^%-%-(.+)$")
    if not key or v == nil then error("usage: echo_attention.lua --gsm8k PATH [--arith N] [--gsm N] [--k K] "
      .. "[--max-tokens N] [--model NAME] [--out DIR] [--seed S] | --summarize FILE [--out DIR]") end
    key = key:gsub("%-", "_")
    if o[key] ~= nil and type(o[key]) == "number" then o[key] = math.tointeger(tonumber(v)) or error("--" .. key .. " takes an integer")
    else o[key] = v end
    i = i + 2
  end
  return o
end

local INSTRUCTION = "\nSolve it step by step, then finish with \"The answer is N\"."

-- The prompt ids for a question and the span {from, to} its own tokens take in them.
local function prompt_and_span(m, question)
  local text = m:template({{role = "user", content = question .. INSTRUCTION}})
  local at = text:find(question, 1, true)
  local before = m:tokenize(text:sub(1, at - 1), {special = true})
  local through = m:tokenize(text:sub(1, at - 1 + #question), {special = true})
  local ids = m:tokenize(text, {special = true})
  -- The question's last token may merge with what follows it ("?\n"): the span then ends on the merged token.
  local same = 0
  while same < #through and ids[same + 1] == through[same + 1] do same = same + 1 end
  for j = 1, #before do
    if ids[j] ~= before[j] then error("the prompt's tokens before the question do not line up (" .. question:sub(1, 40) .. ")") end
  end
  if same <= #before then error("the question's tokens do not line up with the prompt's (" .. question:sub(1, 40) .. ")") end
  return ids, {#before + 1, same == #through and same or same + 1}
end

local function measure(m, item, o, out)
  local ids, span = prompt_and_span(m, item.question)
  local t0 = lm.clock()
  local r = m:generate(ids, {temperature = 0, max_tokens = o.max_tokens})
  local t1 = lm.clock()
  local pred = lm.extract.answer(r.text)
  local rec = {id = item.id, source = item.source, gold = item.answer, pred = pred,
               correct = lm.verify.numeric(pred, item.answer), prompt_tokens = #ids, answer_tokens = #r.ids,
               finish = r.finish, question = span, text = r.text}
  if #r.ids >= 2 then
    local e = lm.analysis.echo(m, ids, r.ids, span, {k = o.k})
    rec.layers, rec.answer_to_answer, rec.answer_to_question = e.layers, e.answer_to_answer, e.answer_to_question
  end
  rec.seconds = {generate = t1 - t0, attention = lm.clock() - t1}
  out:write(json.encode(rec), "\n")
  out:flush()
  return rec
end

local function read_records(path)
  local recs = {}
  for line in io.lines(path) do if line:find("%S") then recs[#recs + 1] = json.decode(line) end end
  return recs
end

local function mean_per_layer(items, n)
  local out = {}
  for i = 1, n do
    local s = 0
    for _, v in ipairs(items) do s = s + v[i] end
    out[i] = #items > 0 and s / #items or 0 / 0
  end
  return out
end

-- The statistics, the report and the charts from the records.
local function summarize(recs, o)
  local layers
  local by = {answer_to_answer = {correct = {}, wrong = {}}, answer_to_question = {correct = {}, wrong = {}}}
  local counts = {}
  for _, r in ipairs(recs) do
    local c = counts[r.source] or {n = 0, correct = 0}
    c.n, c.correct = c.n + 1, c.correct + (r.correct and 1 or 0)
    counts[r.source] = c
    if r.layers then
      layers = layers or r.layers
      for measure, groups in pairs(by) do
        local g = r.correct and groups.correct or groups.wrong
        g[#g + 1] = r[measure]
      end
    end
  end
  local lines = {("items: %d"):format(#recs)}
  for src, c in pairs(counts) do
    lines[#lines + 1] = ("  %s: %d items, %d correct (%.1f%%)"):format(src, c.n, c.correct, 100 * c.correct / c.n)
  end
  -- Answer length matters: the first K tokens are a larger share of what a short answer can attend to.
  local len = {correct = {}, wrong = {}}
  for _, r in ipairs(recs) do
    if r.layers then local g = r.correct and len.correct or len.wrong; g[#g + 1] = r.answer_tokens end
  end
  if #len.correct > 0 and #len.wrong > 0 then
    lines[#lines + 1] = ("answer tokens: correct mean %.1f, wrong mean %.1f"):format(lm.stats.mean(len.correct),
      lm.stats.mean(len.wrong))
  end
  local result = {items = #recs, counts = counts, layers = layers, measures = {}}
  for _, measure in ipairs({"answer_to_answer", "answer_to_question"}) do
    local g = by[measure]
    lines[#lines + 1] = ""
    lines[#lines + 1] = ("%s (K = %d for the answer span): correct n = %d, wrong n = %d"):format(measure, o.k, #g.correct, #g.wrong)
    if #g.correct > 0 and #g.wrong > 0 then
      local c = lm.analysis.compare(g.correct, g.wrong, layers)
      result.measures[measure] = c
      lines[#lines + 1] = lm.analysis.report(c, {names = {"correct", "wrong"}})
      if lm.plot and lm.plot.lines then
        local pct = function(xs) local t = {} for i, v in ipairs(xs) do t[i] = 100 * v end return t end
        lm.plot.lines({{name = ("correct (n=%d)"):format(#g.correct), values = pct(mean_per_layer(g.correct, #layers))},
                       {name = ("wrong (n=%d)"):format(#g.wrong), values = pct(mean_per_layer(g.wrong, #layers))}},
                      {xs = layers, xlabel = "layer", ylabel = "attention mass (%)",
                       title = measure:gsub("_", " ") .. ", heads averaged", file = o.out .. "/" .. measure .. ".svg"})
      end
    end
  end
  -- Within each source too: the sources differ in difficulty, so the pooled comparison mixes "correct vs wrong"
  -- with "arithmetic vs GSM8K".
  result.by_source = {}
  local sources = {}
  for src in pairs(counts) do sources[#sources + 1] = src end
  table.sort(sources)
  for _, src in ipairs(sources) do
    for _, measure in ipairs({"answer_to_answer", "answer_to_question"}) do
      local ok, bad = {}, {}
      for _, r in ipairs(recs) do
        if r.source == src and r.layers then
          local g = r.correct and ok or bad
          g[#g + 1] = r[measure]
        end
      end
      if #ok >= 2 and #bad >= 2 then
        local c = lm.analysis.compare(ok, bad, layers)
        result.by_source[src .. "/" .. measure] = c
        lines[#lines + 1] = ""
        lines[#lines + 1] = ("%s only, %s: correct n = %d, wrong n = %d (groups)"):format(src, measure, #ok, #bad)
        local report = lm.analysis.report({groups = c.groups, layers = {}}, {names = {"correct", "wrong"}})
        lines[#lines + 1] = report
      end
    end
  end
  local text = table.concat(lines, "\n")
  local f = assert(io.open(o.out .. "/summary.txt", "w"))
  f:write(text, "\n")
  f:close()
  f = assert(io.open(o.out .. "/summary.json", "w"))
  f:write(json.encode(result), "\n")
  f:close()
  print(text)
end

local o = parse_args(arg)
os.execute("mkdir -p '" .. o.out .. "'")
if o.summarize then
  summarize(read_records(o.summarize), o)
  return
end
if not o.gsm8k and o.gsm > 0 then error("give --gsm8k PATH (the GSM8K test set as JSON Lines), or --gsm 0") end
local m = lm.load(o.model)
local items = {}
for _, it in ipairs(lm.tasks.arithmetic({n = o.arith, seed = o.seed})) do it.source = "arithmetic"; items[#items + 1] = it end
if o.gsm > 0 then
  for _, it in ipairs(lm.data.gsm8k(o.gsm8k, {n = o.gsm})) do it.source = "gsm8k"; items[#items + 1] = it end
end
local out = assert(io.open(o.out .. "/records.jsonl", "a"))
local recs = {}
local bar = lm.progress(#items, "echo")
for _, it in ipairs(items) do
  recs[#recs + 1] = measure(m, it, o, out)
  bar:tick()
end
bar:done()
out:close()
summarize(read_records(o.out .. "/records.jsonl"), o)
