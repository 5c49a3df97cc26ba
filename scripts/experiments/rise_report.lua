-- The RISE protocol's four metrics from the runner's lines (lines of rise.run, strategy STRATEGY, default "rise"):
--   refrain run scripts/experiments/rise_report.lua DIR [STRATEGY]
-- m1@t1 (the first turn), m5@t1 (majority of 5 independent first turns: parallel sampling), m1@t5 (majority over
-- the 5 sequential turns, without an oracle) and p1@t5 (some turn right: with an oracle), each with its 95%
-- bootstrap interval; then the two comparisons the paper makes at equal compute, as paired differences with
-- McNemar's test: sequential against parallel (m1@t5 − m5@t1) and what the turns add over the first (m1@t5 − m1@t1,
-- p1@t5 − m1@t1). Also the completion tokens per item of each condition. Markdown on standard output.
local function die(msg) io.stderr:write("rise_report: " .. msg .. "\n"); os.exit(2) end

local dir, name = arg[1], arg[2] or "rise"
if not dir then die("usage: rise_report.lua DIR [STRATEGY]") end
local run = require("experiments.lines").read(dir, die)
local rows = run:of(name)

local keys = {"m1t1", "m5t1", "m1t5", "p1t5"}
local label = {m1t1 = "m1@t1 (first turn)", m5t1 = "m5@t1 (majority of 5 first turns, parallel)",
               m1t5 = "m1@t5 (majority of 5 sequential turns, no oracle)", p1t5 = "p1@t5 (some turn right, oracle)"}
local v, seq, par = {}, {}, {}
for _, k in ipairs(keys) do v[k] = {} end
for i, r in ipairs(rows) do
  local e = r.extra or {}
  for _, k in ipairs(keys) do
    if e[k] == nil then die(("%s: item %s has no %s: not a rise.run line"):format(run.path, tostring(r.item), k)) end
    v[k][i] = e[k] == true
  end
  seq[i], par[i] = e.tokens_sequential or 0, e.tokens_parallel or 0
end
local function fmt_p(p) return p < 0.001 and "<0.001" or ("%.3f"):format(p) end
print(("RISE protocol over %d items (%s, strategy %s)\n"):format(#rows, dir, rows[1].call or name))
print("| metric | accuracy [95% CI] |")
print("|---|---|")
for _, k in ipairs(keys) do
  local lo, hi, acc = lm.stats.bootstrap_ci(v[k])
  print(("| %s | %.3f [%.3f, %.3f] |"):format(label[k], acc, lo, hi))
end
print("\n| comparison | difference [95% CI] | McNemar p | won / lost |")
print("|---|---|--:|--:|")
for _, c in ipairs({{"m1t5", "m5t1", "sequential − parallel (equal attempts)"},
                    {"m1t5", "m1t1", "sequential − first turn"}, {"p1t5", "m1t1", "oracle over 5 turns − first turn"}}) do
  local d = lm.stats.paired(v[c[1]], v[c[2]])
  local t = lm.stats.mcnemar(v[c[1]], v[c[2]])
  print(("| %s | %+.3f [%+.3f, %+.3f] | %s | %d / %d |"):format(c[3], d.diff, d.lo, d.hi, fmt_p(t.p), t.b10, t.b01))
end
print(("\nCompletion tokens per item: sequential turns %.1f, parallel first turns %.1f."):format(
  lm.stats.mean(seq), lm.stats.mean(par)))
