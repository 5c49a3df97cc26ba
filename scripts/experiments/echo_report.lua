-- Reports on the runner's lines for the two echo analyses that are not an accuracy table (run.lua writes those):
--   refrain run scripts/experiments/echo_report.lua gap DIR [STRATEGY]
--     the echo likelihood gap ΔL (lines of echo.likelihood_gap): for each remover (prefix, heavy), the items
--     grouped by correct and wrong with n, the echo rate, and the means of ΔL per token, the summed gap, the gap per
--     removed token and the suffix-only gap (echo.gap_summary); then how well ΔL per token, and the gap per removed
--     token, separate correct from wrong traces (AUC, Cohen's d) over the items where the remover changed the trace.
--   refrain run scripts/experiments/echo_report.lua causal DIR [WITH] [WITHOUT]
--     the causal variant (lines of echo.causal with and without the reminder, strategy names WITH and WITHOUT,
--     default "reminder" and "plain"): on the items whose greedy trace failed (continued in both conditions), the
--     mean accuracy of the continuations with its paired difference and 95% bootstrap interval, and McNemar's
--     test on the first continuation.
-- DIR is run.lua's --out folder; the report goes to standard output as Markdown.
local echo = require "strategies.echo"

local function die(msg) io.stderr:write("echo_report: " .. msg .. "\n"); os.exit(2) end

local mode, dir = arg[1], arg[2]
if (mode ~= "gap" and mode ~= "causal") or not dir then
  die("usage: echo_report.lua gap DIR [STRATEGY] | causal DIR [WITH] [WITHOUT]")
end

local run = require("experiments.lines").read(dir, die)
local path, by, order = run.path, run.by, run.order
local function lines_of(name) return run:of(name) end

local function fmt(x, p) return x and ("%." .. (p or 3) .. "f"):format(x) or "–" end

if mode == "gap" then
  local rows = lines_of(arg[3] or order[1])
  local results = {}
  for i, r in ipairs(rows) do
    local e = r.extra or {}
    results[i] = {correct = r.correct, echo = e.echo, prefix = e.prefix, heavy = e.heavy}
  end
  print(("ΔL over %d traces (%s, strategy %s)\n"):format(#rows, dir, rows[1] and rows[1].call or "?"))
  for _, which in ipairs({"prefix", "heavy"}) do
    local s = echo.gap_summary(results, which)
    print(("**%s remover**\n"):format(which))
    print("| traces | n | echo rate | changed by the remover | ΔL per token | summed | per removed token | suffix-only |")
    print("|---|---|---|---|---|---|---|---|")
    for _, g in ipairs({"correct", "wrong"}) do
      local x = s[g]
      if x then
        print(("| %s | %d | %.2f | %d | %s | %s | %s | %s |"):format(g, x.n, x.echo_rate, x.gaps, fmt(x.delta),
          fmt(x.sum), fmt(x.per_removed), fmt(x.suffix)))
      end
    end
    print()
    for _, field in ipairs({{"delta", "ΔL per token"}, {"per_removed", "the gap per removed token"}}) do
      local pos, neg = {}, {}
      for _, r in ipairs(results) do
        local d = r[which]
        if d and d[field[1]] then
          if r.correct then pos[#pos + 1] = d[field[1]] else neg[#neg + 1] = d[field[1]] end
        end
      end
      if #pos > 0 and #neg > 0 then
        print(("%s as a score for a correct trace: AUC %.3f (%d correct, %d wrong); Cohen's d %s"):format(field[2],
          lm.stats.auc(pos, neg), #pos, #neg, fmt((#pos > 1 and #neg > 1) and lm.stats.cohens_d(pos, neg) or nil)))
      else
        print(("No AUC for %s: %d correct and %d wrong traces were changed by the remover."):format(field[2], #pos, #neg))
      end
    end
    print()
  end
else
  local with, without = lines_of(arg[3] or "reminder"), lines_of(arg[4] or "plain")
  local plain = {}
  for _, r in ipairs(without) do plain[r.item] = r end
  local a, b, fa, fb, skipped, samples = {}, {}, {}, {}, 0, nil
  for _, r in ipairs(with) do
    local p = plain[r.item]
    local e, pe = r.extra or {}, p and p.extra or {}
    if e.skipped or not p or pe.skipped then
      skipped = skipped + 1
    else
      a[#a + 1], b[#b + 1] = e.accuracy, pe.accuracy
      fa[#fa + 1], fb[#fb + 1] = r.correct == true, p.correct == true
      -- The continuations: the sample call's n (the answers list has holes where a continuation gave no number).
      samples = samples or (r.calls and r.calls[2] and r.calls[2].n) or (e.answers and lm.list.len(e.answers))
    end
  end
  print(("Causal variant over %d items (%s): %d failed traces continued in both conditions, %d skipped "
    .. "(trace correct, or a condition missing)\n"):format(#with, dir, #a, skipped))
  if #a == 0 then return end
  local d = lm.stats.paired(a, b)
  local t = lm.stats.mcnemar(fa, fb)
  print("| condition | mean accuracy of the continuations | first continuation correct |")
  print("|---|---|---|")
  local firstA, firstB = 0, 0
  for i = 1, #fa do
    if fa[i] then firstA = firstA + 1 end
    if fb[i] then firstB = firstB + 1 end
  end
  print(("| with the reminder | %.3f | %d/%d |"):format(d.mean_a, firstA, #fa))
  print(("| without | %.3f | %d/%d |"):format(d.mean_b, firstB, #fb))
  print(("\nPaired difference (with − without), %d continuations per trace: %+.3f [%+.3f, %+.3f] (95%% bootstrap); "
    .. "items better with the reminder %d, worse %d, equal %d. McNemar on the first continuation: %d/%d discordant, "
    .. "p %s (%s)."):format(samples or 0, d.diff, d.lo, d.hi, d.wins, d.losses, d.ties, t.b10, t.b01,
    t.p < 0.001 and "< 0.001" or ("= " .. fmt(t.p, 3)), t.method))
end
