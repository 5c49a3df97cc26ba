-- The RISE protocol's four metrics from the runner's lines (lines of rise.run, strategy STRATEGY, default "rise"):
--   refrain run scripts/experiments/rise_report.lua DIR [STRATEGY]
-- m1@t1 (the first turn), m5@t1 (majority of 5 independent first turns: parallel sampling), m1@t5 (majority over
-- the 5 sequential turns, without an oracle) and p1@t5 (some turn right: with an oracle), each with its 95%
-- bootstrap interval; then the two comparisons the paper makes at equal compute, as paired differences with
-- McNemar's test: sequential against parallel (m1@t5 − m5@t1) and what the turns add over the first (m1@t5 − m1@t1,
-- p1@t5 − m1@t1). Also the completion tokens per item of each condition. Markdown on standard output.
-- On arithmetic data the intervals resample templates and the test is a sign-flip test by template
-- (experiments.lines). The metrics are graded as the lines record them (the strategy's \boxed{}, else last-number
-- reading); then by the common final-answer grader (experiments.grading), as a second table where any verdict
-- differs. With several seed sets (run.lua --seeds) each metric of an item is its mean over the sets it has, the
-- comparisons are sign-flip tests on those means, and the metrics table adds each set's own accuracy and their
-- spread; tokens are per item run.
local rise = require "strategies.rise"
local grading = require "experiments.grading"
local lines = require "experiments.lines"

local function die(msg) io.stderr:write("rise_report: " .. msg .. "\n"); os.exit(2) end

local dir, name = arg[1], arg[2] or "rise"
if not dir then die("usage: rise_report.lua DIR [STRATEGY]") end
local run = lines.read(dir, die)
local K = run.K
local rows = run:items(name)

local keys = {"m1t1", "m5t1", "m1t5", "p1t5"}
local label = {m1t1 = "m1@t1 (first turn)", m5t1 = "m5@t1 (majority of 5 first turns, parallel)",
               m1t5 = "m1@t5 (majority of 5 sequential turns, no oracle)", p1t5 = "p1@t5 (some turn right, oracle)"}

-- The four metrics of a line by the common final-answer grader: every turn's text and every first-turn sample
-- read again (grading.read), then rise.metrics as the strategy computes them. nil when the line holds no texts.
local function common_metrics(r)
  local calls = r.calls or {}
  local firsts_out = calls[1] and calls[1].outputs
  if type(firsts_out) ~= "table" or #firsts_out == 0 then return nil end
  local turns, firsts = {}, {}
  for t = 1, #calls do
    local o = calls[t].outputs and calls[t].outputs[1]
    if not o then return nil end
    turns[t] = grading.read(o.text) or false
  end
  for i, o in ipairs(firsts_out) do firsts[i] = grading.read(o.text) or false end
  return rise.metrics(turns, firsts, r.gold, function(a, gold) return grading.right(a, gold) end)
end

-- Per item and seed set: each metric as the line records it ("own") and by the common grader ("common"); tokens
-- per item run.
local pool, seq, par, common_ok, differ = run:pool(), {}, {}, true, 0
for _, it in ipairs(rows) do
  for set = 1, K do
    local r = it.sets[set]
    if r then
      local e = r.extra or {}
      local m = common_metrics(r)
      if not m then common_ok = false end
      for _, k in ipairs(keys) do
        if e[k] == nil then die(("%s: item %s has no %s: not a rise.run line"):format(run.path, tostring(r.item), k)) end
        pool:add("own:" .. k, it.item, set, e[k] == true)
        if m then
          pool:add("common:" .. k, it.item, set, m[k] == true)
          if (m[k] == true) ~= (e[k] == true) then differ = differ + 1 end
        end
      end
      seq[#seq + 1], par[#par + 1] = e.tokens_sequential or 0, e.tokens_parallel or 0
    end
  end
end
local v, c = {}, {}
for _, k in ipairs(keys) do v[k], c[k] = pool:scores("own:" .. k, rows), pool:scores("common:" .. k, rows) end
local clusters = run:clusters(rows)
local function fmt_p(p) return p < 0.001 and "<0.001" or ("%.3f"):format(p) end

-- The metrics and the three comparisons of one grading.
local function tables(m, grader)
  print("| metric | accuracy [95% CI] |" .. (K > 1 and " seed-set spread | per seed set |" or ""))
  print("|---|---|" .. (K > 1 and "---|---|" or ""))
  for _, k in ipairs(keys) do
    local lo, hi, acc = lines.accuracy(m[k], clusters)
    local sets = ""
    if K > 1 then
      local per_set, spread = pool:per_set(grader .. k, rows)
      sets = (" %s | %s |"):format(lines.spread_text(spread), lines.per_set_text(per_set))
    end
    print(("| %s | %.3f [%.3f, %.3f] |%s"):format(label[k], acc, lo, hi, sets))
  end
  print("\n| comparison | difference [95% CI] | p | Holm p | won / lost |")
  print("|---|---|--:|--:|--:|")
  local pairs_, ds, ps = {{"m1t5", "m5t1", "sequential − parallel (equal attempts)"},
                          {"m1t5", "m1t1", "sequential − first turn"}, {"p1t5", "m1t1", "oracle over 5 turns − first turn"}}, {}, {}
  for k, x in ipairs(pairs_) do ds[k] = lines.compare(m[x[1]], m[x[2]], clusters); ps[k] = ds[k].p end
  local holm = lm.stats.holm(ps)
  for k, x in ipairs(pairs_) do
    local d = ds[k]
    print(("| %s | %+.3f [%+.3f, %+.3f] | %s | %s | %d / %d |"):format(x[3], d.diff, d.lo, d.hi, fmt_p(d.p),
      fmt_p(holm[k]), d.won, d.lost))
  end
  print("\n" .. lines.method(clusters, K) .. " Holm p: adjusted over the 3 comparisons.")
end

print(("RISE protocol over %d items%s (%s, strategy %s); graded as the lines record (the strategy's own grader)\n"):format(
  #rows, K > 1 and (" × %d seed sets"):format(K) or "", dir, rows[1].line.call or name))
tables(v, "own:")
if not common_ok then
  print("\nThe lines do not hold every turn's text, so the metrics are not graded again by the common grader.")
elseif differ == 0 then
  print(("\nThe common final-answer grader (%s) gives the same four metrics on every item."):format(grading.rule))
else
  print(("\nBy the common final-answer grader (%s), every turn and first-turn sample read again (%d verdicts differ "
    .. "from the tables above):\n"):format(grading.rule, differ))
  tables(c, "common:")
end
print(("\nCompletion tokens per item%s: sequential turns %.1f, parallel first turns %.1f."):format(
  K > 1 and " run" or "",
  lm.stats.mean(seq), lm.stats.mean(par)))
