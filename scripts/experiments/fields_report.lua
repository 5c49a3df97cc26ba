-- Accuracy tables for any right/wrong field a strategy records in its result lines' `extra`, where the runner's own
-- table reads only `correct`: HEART's verifier-free read-outs (correct_synthesis, correct_majority, any_correct),
-- RISE's metrics (m1t1, m5t1, m1t5, p1t5), or a field of your own strategy.
--   refrain run scripts/experiments/fields_report.lua DIR FIELD [FIELD ...] [--baseline NAME]
-- For every strategy in DIR/results.jsonl and every FIELD ("correct" is the line's own), the share of items where
-- it is true with a 95% bootstrap interval, and against the baseline strategy's same field (default: the run's
-- baseline, from DIR/run.json) the paired difference with its interval, McNemar's test and won / lost, on the
-- items both have. A line without the field counts as wrong and is counted in a "missing" column. Markdown on
-- standard output.
--   refrain run scripts/experiments/fields_report.lua DIR [FIELD ...] --extract KIND
-- also reads every line's answer again from its final text (`extra.text` where the strategy keeps it, else the
-- last output of its last call) with lm.extract.KIND ("answer": the last \boxed{}, else "####", else "answer is",
-- else the last number) and checks it against the line's gold with lm.verify.numeric: the field
-- `extract.KIND`, to see what a strategy's own extractor missed (e.g. "\boxed{20} years old in 3 years", whose
-- last number is 3). It reads one text per line, so it suits strategies with one final answer; for a vote over
-- samples that keep no `extra.text` it reads the last sample only.
--   FIELD "common" is the common final-answer grader's verdict on the line (experiments.grading: the answer read
-- again from the line's final texts as its strategy forms it), beside "correct", the strategy's own.
-- On arithmetic data the intervals resample templates and the test is a sign-flip test by template
-- (experiments.lines), as run.lua's table.
--   With several seed sets (run.lua --seeds) an item's value of a field is its mean over the sets it has (a
-- deterministic arm's line stands for every set; a set whose line lacks the field counts as wrong), the tests are
-- sign-flip tests on those means, "missing" counts lines, and each table adds the seed-set spread and, under it,
-- each set's own accuracy.
local grading = require "experiments.grading"
local lines = require "experiments.lines"

local function die(msg) io.stderr:write("fields_report: " .. msg .. "\n"); os.exit(2) end

local dir, fields, baseline, extract = nil, {}, nil, nil
local i = 1
while i <= #arg do
  if arg[i] == "--baseline" then baseline = arg[i + 1] or die("--baseline needs a strategy name"); i = i + 2
  elseif arg[i] == "--extract" then
    local kind = arg[i + 1] or die("--extract needs a kind of lm.extract (answer, boxed, number)")
    if type(lm.extract[kind]) ~= "function" then die(("--extract: no lm.extract.%s"):format(kind)) end
    extract = kind
    fields[#fields + 1] = "extract." .. kind
    i = i + 2
  else
    if dir == nil then dir = arg[i] else fields[#fields + 1] = arg[i] end
    i = i + 1
  end
end
if not dir or #fields == 0 then die("usage: fields_report.lua DIR FIELD [FIELD ...] [--baseline NAME] [--extract KIND]") end

local function read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

local run = lines.read(dir, die)
local path, order, K = run.path, run.order, run.K
if #order == 0 then die(path .. " has no lines") end
if not baseline then
  local meta = read(dir .. "/run.json")
  local ok, m = pcall(lm.json.decode, meta or "")
  baseline = ok and type(m) == "table" and m.baseline or order[1]
end
if not run.sets[baseline] then die(("no baseline '%s' in %s (it has: %s)"):format(baseline, path, table.concat(order, ", "))) end

-- The final text of a line: the strategy's `extra.text`, else the last output of its last recorded call.
local function final_text(r)
  if r.extra and type(r.extra.text) == "string" then return r.extra.text end
  local calls = type(r.calls) == "table" and r.calls or {}
  local last = calls[#calls]
  local outs = last and type(last.outputs) == "table" and last.outputs or {}
  local o = outs[#outs]
  return o and type(o.text) == "string" and o.text or nil
end

-- The answer read again from the final text with lm.extract[extract], checked against the gold one; nil when the
-- line has no text or no gold.
local function regraded(r)
  local text = final_text(r)
  if text == nil or r.gold == nil or r.gold == lm.json.null then return nil end
  local answer = lm.extract[extract](text)
  if answer == nil then return false end
  local ok, same = pcall(lm.verify.numeric, answer, r.gold)
  if not ok then
    die(("--extract: item %s of strategy %s has gold %s, not a number (--extract checks numbers)"):format(
      tostring(r.item), tostring(r.strategy), lm.json.encode(r.gold)))
  end
  return same == true
end

-- The field's value on a line: true, false, or nil when the line lacks it.
local function value(r, field)
  local v
  if field == "correct" then v = r.correct
  elseif field == "common" then v = grading.line(r).correct
  elseif extract and field == "extract." .. extract then v = regraded(r)
  else v = r.extra and r.extra[field] end
  if v == nil or v == lm.json.null then return nil end
  return v == true
end

local function fmt_p(p) return p < 0.001 and "<0.001" or ("%.3f"):format(p) end

print(("Fields %s over the lines of %s%s; baseline %s\n"):format(table.concat(fields, ", "), dir,
  K > 1 and (" (%d seed sets)"):format(K) or "", baseline))
-- Each strategy's items over the seed sets, and the baseline's by item id.
local items, base_items = {}, {}
for _, name in ipairs(order) do items[name] = run:items(name) end
for _, it in ipairs(items[baseline]) do base_items[it.item] = it end
for _, field in ipairs(fields) do
  print(("**%s**\n"):format(field))
  print(("| strategy | items | accuracy [95%% CI] |%s Δ vs %s [95%% CI] | p | Holm p | won / lost | missing |"):format(
    K > 1 and " seed-set spread |" or "", baseline))
  print("|---|--:|---|" .. (K > 1 and "---|" or "") .. "---|--:|--:|--:|--:|")
  local clustered, out, ps = nil, {}, {}
  -- The field per item and seed set of every strategy ("missing" counts the lines that lack it).
  local pool, missing = run:pool(), {}
  for _, name in ipairs(order) do
    missing[name] = 0
    for _, it in ipairs(items[name]) do
      for set = 1, K do
        local r = it.sets[set]
        if r then
          local v = value(r, field)
          if v == nil and (set == 1 or r ~= it.sets[1]) then missing[name] = missing[name] + 1 end
          pool:add(name, it.item, set, v == true)
        end
      end
    end
  end
  for _, name in ipairs(order) do
    local rows = items[name]
    local xs, a, b, paired = pool:scores(name, rows), {}, {}, {}
    for k, it in ipairs(rows) do
      if base_items[it.item] then
        a[#a + 1], b[#b + 1], paired[#paired + 1] = xs[k], pool:score(baseline, it.item), it
      end
    end
    local clusters = run:clusters(rows)
    clustered = clustered or clusters
    local lo, hi, acc = lines.accuracy(xs, clusters)
    local row = {name = name, n = rows, acc = acc, lo = lo, hi = hi, missing = missing[name]}
    if K > 1 then row.per_set, row.spread = pool:per_set(name, rows) end
    if name ~= baseline and #a > 0 then
      row.c = lines.compare(a, b, run:clusters(paired))
      ps[#ps + 1] = row.c.p
      row.k = #ps
    end
    out[#out + 1] = row
  end
  local holm = #ps > 0 and lm.stats.holm(ps) or {}
  for _, row in ipairs(out) do
    local c, cmp = row.c, "(baseline) | — | — | —"
    if c then
      cmp = ("%+.3f [%+.3f, %+.3f] | %s | %s | %d / %d"):format(c.diff, c.lo, c.hi, fmt_p(c.p), fmt_p(holm[row.k]),
        c.won, c.lost)
    end
    print(("| %s | %s | %.3f [%.3f, %.3f] |%s %s | %d |"):format(row.name, run:items_label(row.name, row.n), row.acc,
      row.lo, row.hi, K > 1 and (" %s |"):format(lines.spread_text(row.spread)) or "", cmp, row.missing))
  end
  if K > 1 then
    print("\nAccuracy per seed set:\n")
    for _, row in ipairs(out) do print(("- %s: %s"):format(row.name, lines.per_set_text(row.per_set))) end
  end
  print("\n" .. lines.method(clustered, K) .. (" Holm p: adjusted over this table's %d comparison%s.\n"):format(#ps,
    #ps == 1 and "" or "s"))
end
