-- Echoes as anchors, attention refocusing (STRATEGIES.md section 1): does an answer that turns out right look
-- back at its own beginning, or at the question, more than one that turns out wrong?
--
-- For each item: generate an answer (greedy, bounded), mark it right or wrong, then one forward pass over
-- prompt + answer with attention; per layer, heads averaged, each answer token's attention on the first K answer
-- tokens and on the question, averaged over the answer tokens. Correct vs wrong, per layer and per layer group
-- (early/middle/late), with AUC and Cohen's d; a chart per measure. The measure goes about as 1/answer length by
-- construction and the task decides much of correctness, so the summary also takes both out: the correlations with
-- 1/length, and the AUC of what is left after a line on 1/length, fit within each task and compared within a task
-- (the primary figure, with bootstrap intervals), beside other controls; a chart of the AUCs per layer.
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

-- Answer length is a confound the measure carries by construction: each of the first K answer tokens puts on the
-- first K tokens all the answer it can see, so the mean over an answer of L tokens goes about as a + b/L, and the
-- wrong answers are the long ones. The task is a second confound (arithmetic answers are short and mostly right,
-- GSM8K ones long and mostly wrong). The helpers below take both out before correct and wrong are compared.

local ranks, pearson, spearman = lm.stats.ranks, lm.stats.pearson, lm.stats.spearman


-- What is left of ys[i] after a least-squares line on xs[i], fit separately within each stratum (strata[i] names
-- item i's; nil: one line through all items).
local function residuals(ys, xs, strata)
  local fit = {}
  for i = 1, #ys do
    local k = strata and strata[i] or 1
    local f = fit[k] or {n = 0, x = 0, y = 0, xx = 0, xy = 0}
    fit[k] = f
    f.n, f.x, f.y, f.xx, f.xy = f.n + 1, f.x + xs[i], f.y + ys[i], f.xx + xs[i] ^ 2, f.xy + xs[i] * ys[i]
  end
  for _, f in pairs(fit) do
    local sxx = f.xx - f.x ^ 2 / f.n
    f.slope = sxx > 0 and (f.xy - f.x * f.y / f.n) / sxx or 0
    f.intercept = (f.y - f.slope * f.x) / f.n
  end
  local out = {}
  for i = 1, #ys do
    local f = fit[strata and strata[i] or 1]
    out[i] = ys[i] - f.intercept - f.slope * xs[i]
  end
  return out
end

-- The AUC (a correct item's score above a wrong one's, ties 1/2) over the correct-wrong pairs within the same
-- stratum only, summed over strata in the Mann-Whitney form; nil strata: all pairs. Returns the AUC (nil with no
-- pair) and the number of pairs.
local function pair_auc(scores, correct, strata)
  local by, keys = {}, {}
  for i = 1, #scores do
    local k = strata and strata[i] or 1
    if not by[k] then by[k] = {pos = {}, neg = {}}; keys[#keys + 1] = k end
    local g = correct[i] and by[k].pos or by[k].neg
    g[#g + 1] = scores[i]
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local u, n = 0, 0
  for _, k in ipairs(keys) do
    local s = by[k]
    if #s.pos > 0 and #s.neg > 0 then
      u, n = u + lm.stats.auc(s.pos, s.neg) * #s.pos * #s.neg, n + #s.pos * #s.neg
    end
  end
  if n == 0 then return nil, 0 end
  return u / n, n
end

-- The bin (0 to q - 1) of each value among q equal-count bins by rank; tied values share a bin.
local function quantile_bins(xs, q)
  local r, out = ranks(xs), {}
  for i = 1, #xs do out[i] = math.min(q - 1, math.floor(q * (r[i] - 1) / #xs)) end
  return out
end

-- The p-quantile of a sorted list, interpolated linearly (as lm.stats.bootstrap_ci does).
local function quantile(sorted, p)
  local h = (#sorted - 1) * p
  local lo = math.floor(h)
  return sorted[lo + 1] + (h - lo) * (sorted[math.min(lo + 2, #sorted)] - sorted[lo + 1])
end

-- The measured items as columns: task, correct, len (answer tokens), and per measure a row per item holding its
-- per-layer values (row[i] for layers[i]) and its layer-group means (row["g" .. j] for group j).
local function columns(recs, layers, groups)
  local c = {task = {}, correct = {}, len = {}, value = {answer_to_answer = {}, answer_to_question = {}}}
  for _, r in ipairs(recs) do
    if r.layers then
      c.task[#c.task + 1], c.correct[#c.correct + 1], c.len[#c.len + 1] = r.source, r.correct, r.answer_tokens
      for measure, rows in pairs(c.value) do
        local row = table.move(r[measure], 1, #layers, 1, {})
        for j, g in ipairs(lm.analysis.by_group(r[measure], layers, groups)) do row["g" .. j] = g.value end
        rows[#rows + 1] = row
      end
    end
  end
  return c
end

-- The items of c numbered in idx (repeats allowed), as columns again.
local function pick(c, idx)
  local out = {task = {}, correct = {}, len = {}, value = {answer_to_answer = {}, answer_to_question = {}}}
  for j, i in ipairs(idx) do
    out.task[j], out.correct[j], out.len[j] = c.task[i], c.correct[i], c.len[i]
    for measure, rows in pairs(c.value) do out.value[measure][j] = rows[i] end
  end
  return out
end

-- The items of one task (all for nil).
local function of_task(c, task)
  local idx = {}
  for i = 1, #c.task do if task == nil or c.task[i] == task then idx[#idx + 1] = i end end
  return pick(c, idx)
end

-- One measure's values (a layer index or a group key) and f(length), as two lists.
local function values_and(c, measure, key, f)
  local ys, xs = {}, {}
  for i, row in ipairs(c.value[measure]) do ys[i], xs[i] = row[key], f(c.len[i]) end
  return ys, xs
end

local function inverse(x) return 1 / x end

-- The AUCs that get an interval. raw: the measure itself, all items. length: its residual after one line on
-- 1/length through all items. primary, length and task controlled: the residual after a line on 1/length fit
-- within each task, pairs within a task only. Within each task t: raw/t (the measure) and t (that residual).
local function aucs(c, measure, key, tasks)
  local ys, xs = values_and(c, measure, key, inverse)
  local within = residuals(ys, xs, c.task)
  local f = {raw = pair_auc(ys, c.correct), length = pair_auc(residuals(ys, xs), c.correct),
             primary = pair_auc(within, c.correct, c.task)}
  for _, t in ipairs(tasks) do
    local res, raw, ok = {}, {}, {}
    for i = 1, #ys do
      if c.task[i] == t then res[#res + 1], raw[#raw + 1], ok[#ok + 1] = within[i], ys[i], c.correct[i] end
    end
    f[t], f["raw/" .. t] = pair_auc(res, ok), pair_auc(raw, ok)
  end
  return f
end

-- Other ways to take length out, beside the primary figure: the residual on log length (one line; a line per task
-- with pairs within a task; within each task t, "log/t"), and the measure compared only within length quintiles
-- (of all items; of each task's items).
local function other_aucs(c, measure, key, tasks)
  local ys, logs = values_and(c, measure, key, math.log)
  local within = residuals(ys, logs, c.task)
  local task_quintile, quintile = {}, quantile_bins(c.len, 5)
  for _, t in ipairs(tasks) do
    local idx, lens = {}, {}
    for i = 1, #ys do if c.task[i] == t then idx[#idx + 1], lens[#lens + 1] = i, c.len[i] end end
    for j, b in ipairs(quantile_bins(lens, 5)) do task_quintile[idx[j]] = t .. "/" .. b end
  end
  local f = {log = pair_auc(residuals(ys, logs), c.correct), log_task = pair_auc(within, c.correct, c.task),
             quintiles = pair_auc(ys, c.correct, quintile), task_quintiles = pair_auc(ys, c.correct, task_quintile)}
  for _, t in ipairs(tasks) do
    local res, ok = {}, {}
    for i = 1, #ys do if c.task[i] == t then res[#res + 1], ok[#ok + 1] = within[i], c.correct[i] end end
    f["log/" .. t] = pair_auc(res, ok)
  end
  return f
end

-- Percentile bootstrap intervals for aucs, per measure and layer group ("measure/gJ"): items drawn with replacement
-- within each cell of task x correct (every resample keeps the counts), the lines fit again on each resample.
local function bootstrap_aucs(c, groups, tasks, opts)
  local cells, names = {}, {}
  for i = 1, #c.task do
    local k = c.task[i] .. (c.correct[i] and "/correct" or "/wrong")
    if not cells[k] then cells[k] = {}; names[#names + 1] = k end
    table.insert(cells[k], i)
  end
  table.sort(names)
  local rng, draws = lm.random(opts.seed), {}
  for _ = 1, opts.iters do
    local idx = {}
    for _, k in ipairs(names) do
      local cell = cells[k]
      for _ = 1, #cell do idx[#idx + 1] = cell[rng:int(1, #cell)] end
    end
    local s = pick(c, idx)
    for _, measure in ipairs({"answer_to_answer", "answer_to_question"}) do
      for j in ipairs(groups) do
        local id = measure .. "/g" .. j
        draws[id] = draws[id] or {}
        for name, v in pairs(aucs(s, measure, "g" .. j, tasks)) do
          draws[id][name] = draws[id][name] or {}
          table.insert(draws[id][name], v)
        end
      end
    end
  end
  local out = {}
  for id, by in pairs(draws) do
    out[id] = {}
    for name, vs in pairs(by) do
      table.sort(vs)
      out[id][name] = {quantile(vs, (1 - opts.level) / 2), quantile(vs, (1 + opts.level) / 2)}
    end
  end
  return out
end

-- The length and task controls, computed: for each measure and layer group the correlations with 1/length (all
-- items and per task), aucs with their intervals and other_aucs; per layer raw, length and primary (for the
-- charts); and 1/length alone as a score.
local function length_controls(recs, layers, tasks)
  local groups = lm.analysis.groups(layers[#layers] + 1)
  local c = columns(recs, layers, groups)
  local opts = {iters = 2000, level = 0.95, seed = 1}
  local ci = bootstrap_aucs(c, groups, tasks, opts)
  local out = {primary = "AUC of the residual after a least-squares line on 1/answer length fit within each task, "
    .. "over the correct-wrong pairs within a task (Mann-Whitney form)", bootstrap = opts, length_alone = {},
    measures = {}}
  for _, t in ipairs({"all", table.unpack(tasks)}) do
    local s = of_task(c, t ~= "all" and t or nil)
    local inv = {}
    for i, l in ipairs(s.len) do inv[i] = 1 / l end
    out.length_alone[t] = pair_auc(inv, s.correct)
  end
  for _, measure in ipairs({"answer_to_answer", "answer_to_question"}) do
    local m = {groups = {}, layers = {}}
    out.measures[measure] = m
    for j, g in ipairs(groups) do
      local key = "g" .. j
      local e = {name = g.name, from = g.from, to = g.to, pearson = {}, spearman = {},
                 auc = aucs(c, measure, key, tasks), interval = ci[measure .. "/" .. key],
                 other = other_aucs(c, measure, key, tasks)}
      for _, t in ipairs({"all", table.unpack(tasks)}) do
        local ys, xs = values_and(of_task(c, t ~= "all" and t or nil), measure, key, inverse)
        e.pearson[t], e.spearman[t] = pearson(ys, xs), spearman(ys, xs)
      end
      m.groups[j] = e
    end
    for i, l in ipairs(layers) do
      local f = aucs(c, measure, i, tasks)
      m.layers[i] = {layer = l, raw = f.raw, length = f.length, primary = f.primary}
    end
  end
  return out
end

-- A table cell: a label, "--" for a missing number, a number, or a number with its interval; w wide.
local function cell(v, iv, w)
  local text = type(v) == "string" and v or not v and "--"
    or iv and ("%.3f [%.3f, %.3f]"):format(v, iv[1], iv[2]) or ("%.3f"):format(v)
  return w > 0 and ("%-" .. w .. "s"):format(text) or text
end

local function row_of(cells) return (table.concat(cells, " "):gsub("%s+$", "")) end

-- length_controls as text: the legend, then per measure the correlations, the AUC tables and the other controls.
local function report_controls(lc, tasks)
  local alone = {}
  for _, t in ipairs({"all", table.unpack(tasks)}) do
    alone[#alone + 1] = t .. " " .. cell(lc.length_alone[t], nil, 0)
  end
  local lines = {"", "Answer length and task, the confounds: correct vs wrong with them taken out",
    "1/answer length alone as the score (shorter above longer), AUC: " .. table.concat(alone, ", "), "",
    ("AUC columns, correct vs wrong [95%% bootstrap interval: %d resamples within task x correct]:"):format(
      lc.bootstrap.iters),
    "  uncontrolled   the measure itself, all items",
    "  length         the residual after one least-squares line on 1/length through all items",
    "  length+task    PRIMARY: the residual after a line on 1/length fit within each task, over the pairs",
    "                 within a task only (Mann-Whitney form)",
    "  then within each task: the measure itself, and the residual after the task's own line on 1/length",
    "Other controls, AUC (no intervals):",
    "  log            the residual after one line on log length through all items",
    "  log/task       the same within each task, pairs within a task",
    "  quintiles      the measure, pairs within length quintiles (all items)",
    "  task x quint   the measure, pairs within the length quintiles of each task",
    "  log " .. table.concat(tasks, ", log ") .. ": the log-length residual within one task"}
  local function add(row) lines[#lines + 1] = row_of(row) end
  for _, measure in ipairs({"answer_to_answer", "answer_to_question"}) do
    local groups = lc.measures[measure].groups
    local function name(g) return cell(("%s %d-%d"):format(g.name, g.from, g.to), nil, 13) end
    lines[#lines + 1] = ""
    lines[#lines + 1] = measure .. ": correlation with 1/answer length, Pearson r / Spearman rho"
    local head = {cell("", nil, 13), cell("all", nil, 15)}
    for _, t in ipairs(tasks) do head[#head + 1] = cell(t, nil, 15) end
    add(head)
    for _, g in ipairs(groups) do
      local row = {name(g)}
      for _, t in ipairs({"all", table.unpack(tasks)}) do
        row[#row + 1] = cell(("%+.2f / %+.2f"):format(g.pearson[t], g.spearman[t]), nil, 15)
      end
      add(row)
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = measure .. ": AUC, correct vs wrong, with and without the controls"
    add({cell("", nil, 13), cell("uncontrolled", nil, 20), cell("length", nil, 20),
         cell("length+task (PRIMARY)", nil, 20)})
    for _, g in ipairs(groups) do
      local f, iv = g.auc, g.interval
      add({name(g), cell(f.raw, iv.raw, 20), cell(f.length, iv.length, 20), cell(f.primary, iv.primary, 20)})
    end
    head = {cell("", nil, 13)}
    for _, t in ipairs(tasks) do
      head[#head + 1] = cell(t .. ", uncontrolled", nil, 24)
      head[#head + 1] = cell(t .. ", length", nil, 24)
    end
    add(head)
    for _, g in ipairs(groups) do
      local row = {name(g)}
      for _, t in ipairs(tasks) do
        row[#row + 1] = cell(g.auc["raw/" .. t], g.interval["raw/" .. t], 24)
        row[#row + 1] = cell(g.auc[t], g.interval[t], 24)
      end
      add(row)
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = measure .. ": other controls, AUC"
    head = {cell("", nil, 13), cell("log", nil, 8), cell("log/task", nil, 8), cell("quintiles", nil, 9),
            cell("task x quint", nil, 12)}
    for _, t in ipairs(tasks) do head[#head + 1] = cell("log " .. t, nil, 14) end
    add(head)
    for _, g in ipairs(groups) do
      local o = g.other
      local row = {name(g), cell(o.log, nil, 8), cell(o.log_task, nil, 8), cell(o.quintiles, nil, 9),
                   cell(o.task_quintiles, nil, 12)}
      for _, t in ipairs(tasks) do row[#row + 1] = cell(o["log/" .. t], nil, 14) end
      add(row)
    end
  end
  return lines
end

-- The per-layer AUCs, uncontrolled and controlled, as one chart per measure.
local function chart_controls(lc, layers, title, out)
  for measure, m in pairs(lc.measures) do
    local series = {{name = "uncontrolled", values = {}}, {name = "length-controlled", values = {}},
                    {name = "length+task-controlled (primary)", values = {}}, {name = "chance", values = {}}}
    for i, l in ipairs(m.layers) do
      series[1].values[i], series[2].values[i], series[3].values[i], series[4].values[i] = l.raw, l.length,
        l.primary, 0.5
    end
    lm.plot.lines(series, {xs = layers, xlabel = "layer", ylabel = "AUC, correct vs wrong", ymin = 0, ymax = 1,
                           title = measure:gsub("_", " ") .. ", AUC: " .. title, width = 720,
                           file = out .. "/" .. measure .. "_auc.svg"})
  end
end

-- The data set in words, for chart titles: "50 arithmetic + 50 GSM8K test items".
local function data_set(counts)
  local names, parts = {}, {}
  for src in pairs(counts) do names[#names + 1] = src end
  table.sort(names)
  for _, src in ipairs(names) do
    parts[#parts + 1] = ("%d %s"):format(counts[src].n, src == "gsm8k" and "GSM8K test" or src)
  end
  return table.concat(parts, " + ") .. " items"
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
  local sources = {}
  for src in pairs(counts) do sources[#sources + 1] = src end
  table.sort(sources)
  local lines = {("items: %d"):format(#recs)}
  for _, src in ipairs(sources) do
    local c = counts[src]
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
  local title = data_set(counts)
  if #len.correct > 0 and #len.wrong > 0 then
    local lc = length_controls(recs, layers, sources)
    result.length_controlled = lc
    local more = report_controls(lc, sources)
    table.move(more, 1, #more, #lines + 1, lines)
    if lm.plot and lm.plot.lines then chart_controls(lc, layers, title, o.out) end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Uncontrolled comparisons (confounded by answer length and by task; see above)"
  end
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
                       title = measure:gsub("_", " ") .. ", uncontrolled: " .. title, width = 720,
                       file = o.out .. "/" .. measure .. ".svg"})
      end
    end
  end
  -- Within each source too: the sources differ in difficulty, so the pooled comparison mixes "correct vs wrong"
  -- with "arithmetic vs GSM8K".
  result.by_source = {}
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
