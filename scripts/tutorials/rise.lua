-- The RISE protocol on generated arithmetic items: the four metrics, the tokens of the sequential turns and of
-- the parallel first turns, and the equal-compute comparison m1@t5 (sequential) against m5@t1 (parallel).
--   refrain run scripts/tutorials/rise.lua [n=20] [max_tokens=96]
local rise = require "strategies.rise"
local n, max_tokens = tonumber(arg[1]) or 20, tonumber(arg[2]) or 96
local items = lm.tasks.arithmetic{n = n, seed = 1}
local results, bar = {}, lm.progress(n, "rise")
for i, item in ipairs(items) do results[i] = rise.run(lm.model, item, {max_tokens = max_tokens}); bar:tick() end
bar:done()
local s = rise.summary(results)
local seq, par, boxed = 0, 0, 0
local m1t5, m5t1 = {}, {}
for i, r in ipairs(results) do
  seq, par = seq + r.tokens_sequential, par + r.tokens_parallel
  for t = 1, #r.turns do if r.turns[t] then boxed = boxed + 1 end end
  m1t5[i], m5t1[i] = r.m1t5 and 1 or 0, r.m5t1 and 1 or 0
end
print(("%d items of lm.tasks.arithmetic{seed = 1}, 5 turns, T = 1.0, top-p 1.0, max_tokens %d, seed 1\n"):format(n, max_tokens))
print("| m1@t1 | m5@t1 | m1@t5 | p1@t5 | turns with a \\boxed{} answer | completion tokens / item: sequential, parallel |")
print("|---|---|---|---|---|---|")
print(("| %.2f | %.2f | %.2f | %.2f | %d/%d | %.1f, %.1f |"):format(s.m1t1, s.m5t1, s.m1t5, s.p1t5, boxed, 5 * n, seq / n, par / n))
local d = lm.stats.paired(m1t5, m5t1)
print(("\nm1@t5 - m5@t1 (equal compute, paired): %+.2f [%+.2f, %+.2f] (95%% bootstrap), wins %d, losses %d")
      :format(d.diff, d.lo, d.hi, d.wins, d.losses))
