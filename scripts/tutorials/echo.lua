-- Echoes as anchors on a few seeded arithmetic items (docs/strategies/echo.md walks through it):
--   1. echoic prompting against its three baselines at the same generated-token budget;
--   2. the causal variant on the items whose greedy trace failed (same cut, same seeds, with and without reminder);
--   3. the echo likelihood gap ΔL of the greedy traces, grouped by correct and wrong.
-- Run: refrain run scripts/tutorials/echo.lua [items=10] [budget=96] [b1=32] [samples=4] [steps=1]
-- (steps: 1 for one-operation problems, where SmolLM2-135M is above its floor; 2 or mixed for harder ones)
local echo = require "strategies.echo"
local m = lm.model
local n, budget, b1, samples = tonumber(arg[1]) or 10, tonumber(arg[2]) or 96, tonumber(arg[3]) or 32, tonumber(arg[4]) or 4
local steps = tonumber(arg[5]) or arg[5] or 1
local items = lm.tasks.arithmetic({n = n, seed = 1, steps = steps})

print(("%d items (%s-step arithmetic, seed 1), budget %d tokens, first chunk %d, model %s\n")
  :format(n, steps, budget, b1, m.info.name or m.info.arch))

-- 1. Echoic prompting and its baselines, paired by item.
local conditions = {"single", "continuation", "filler", "echoic"}
local tally = {}
for _, c in ipairs(conditions) do tally[c] = {correct = 0, tokens = 0, calls = 0} end
for _, item in ipairs(items) do
  for _, c in ipairs(conditions) do
    local r = echo[c](m, item, {b1 = b1, budget = budget})
    local t = tally[c]
    t.correct, t.tokens, t.calls = t.correct + (r.correct and 1 or 0), t.tokens + r.tokens.completion, t.calls + r.tokens.calls
  end
end
print("condition      accuracy  generated tokens/item  calls/item")
for _, c in ipairs(conditions) do
  local t = tally[c]
  print(("%-14s %4d/%-4d %21.1f %11.1f"):format(c, t.correct, n, t.tokens / n, t.calls / n))
end

-- 2. The causal variant: failed traces cut at 50%, continued with and without the reminder.
local with, without, failed = 0, 0, 0
for _, item in ipairs(items) do
  local a = echo.causal(m, item, {budget = budget, samples = samples})
  if not a.skipped then
    local b = echo.causal(m, item, {budget = budget, samples = samples, reminder = false})
    failed = failed + 1
    with, without = with + a.accuracy, without + b.accuracy
  end
end
print(("\ncausal variant: %d failed traces, %d continuations each (T=0.7, top-p 0.9)"):format(failed, samples))
if failed > 0 then
  print(("  with the reminder %.3f, without %.3f (mean accuracy of the continuations)"):format(with / failed, without / failed))
end

-- 3. ΔL of the greedy traces, with the clean (prefix) remover and the heavier one.
local gaps = {}
for i, item in ipairs(items) do gaps[i] = echo.likelihood_gap(m, item, {budget = budget}) end
local function fmt(x) return x and ("%7.3f"):format(x) or "      -" end
for _, which in ipairs({"prefix", "heavy"}) do
  print(("\nΔL, %s remover    n  echo  gaps  ΔL/token   summed  per removed  suffix-only"):format(which))
  local s = echo.gap_summary(gaps, which)
  for _, g in ipairs({"correct", "wrong"}) do
    local x = s[g]
    if x then
      print(("  %-18s %3d %5.2f %5d %s %8s %12s %12s"):format(g, x.n, x.echo_rate, x.gaps, fmt(x.delta),
        fmt(x.sum), fmt(x.per_removed), fmt(x.suffix)))
    end
  end
end
