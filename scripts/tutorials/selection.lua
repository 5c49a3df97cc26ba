-- Selection and rejection on a few seeded arithmetic items (docs/strategies/selection.md walks through it):
--   1. one shared set of N samples per item and every read-out of it (pass@N, majority@N = self-consistency,
--      highest and lowest mean log-probability, the first sample), plus the surprisal picks among correct ones;
--   2. feedback-friction retries: no mitigation, rising temperature, rejecting answers already tried (same draws);
--   3. early rejection: τ tokens of N candidates, the best N/M finished; tokens saved, how partial scores rank.
-- Run: refrain run scripts/tutorials/selection.lua [items=10] [N=8] [max_tokens=96] [steps=1]
-- (steps: 1 for one-operation problems, where SmolLM2-135M is above its floor; 2 or mixed for harder ones)
local sel = require "strategies.selection"
local m = lm.model
local n, N, max_tokens = tonumber(arg[1]) or 10, tonumber(arg[2]) or 8, tonumber(arg[3]) or 96
local steps = tonumber(arg[4]) or arg[4] or 1
local items = lm.tasks.arithmetic({n = n, seed = 1, steps = steps})
print(("%d items (%s-step arithmetic, seed 1), N = %d samples of up to %d tokens at T = 0.7, model %s\n")
  :format(n, steps, N, max_tokens, m.info.name or m.info.arch))

-- 1. Best-of-N read-outs from one sample set per item.
local names = {"first", "majority", "max_logprob", "min_logprob", "pass"}
local hits, tokens, least, most, some = {}, 0, 0, 0, 0
for _, k in ipairs(names) do hits[k] = 0 end
for _, item in ipairs(items) do
  local r = sel.best_of_n(m, item, {n = N, max_tokens = max_tokens})
  for _, k in ipairs(names) do if r.readouts[k].correct then hits[k] = hits[k] + 1 end end
  tokens = tokens + r.tokens.completion
  local p = sel.surprisal_pick(r.samples)
  if p.least then
    some = some + 1
    least, most = least + -r.samples[p.least].mean, most + -r.samples[p.most].mean
  end
end
print(("read-out        accuracy   (one set: %.0f generated tokens/item, 1 call)"):format(tokens / n))
for _, k in ipairs(names) do print(("%-15s %4d/%d"):format(k, hits[k], n)) end
if some > 0 then
  print(("surprisal among correct samples (%d items): least confident %.3f, most confident %.3f nats/token")
    :format(some, least / some, most / some))
end

-- 2. Retry with feedback, three mitigations, the same k draws a round.
print("\nretry (3 rounds, 2 draws a round)  accuracy  rounds/item  tokens/item")
for _, mit in ipairs({"none", "temperature", "reject", "both"}) do
  local ok, rounds, tok = 0, 0, 0
  for _, item in ipairs(items) do
    local r = sel.retry(m, item, {rounds = 3, k = 2, max_tokens = max_tokens, mitigation = mit})
    ok, rounds, tok = ok + (r.correct and 1 or 0), rounds + r.rounds, tok + r.tokens.completion
  end
  print(("  %-32s %4d/%d %12.2f %12.1f"):format(mit, ok, n, rounds / n, tok / n))
end

-- 3. Early rejection against finishing all N (compare = true finishes the dropped ones for the comparison).
local ok, generated, saved, rho, kept_best, rhos = 0, 0, 0, 0, 0, 0
for _, item in ipairs(items) do
  local r = sel.early_rejection(m, item, {n = N, m = 4, tau = 16, max_tokens = max_tokens, compare = true})
  ok, generated, saved = ok + (r.correct and 1 or 0), generated + r.generated, saved + r.saved_exact
  if r.spearman then rho, rhos = rho + r.spearman, rhos + 1 end
  if r.best_kept then kept_best = kept_best + 1 end
end
print(("\nearly rejection (N=%d, M=4, tau=16): accuracy %d/%d, %.1f tokens/item generated, %.1f saved against finishing all")
  :format(N, ok, n, generated / n, saved / n))
print(("  partial vs full mean log-prob: Spearman %.3f on average; best full candidate kept in %d/%d items")
  :format(rhos > 0 and rho / rhos or 0 / 0, kept_best, n))
