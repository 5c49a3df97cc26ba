-- The behavior handbook on generated arithmetic items: behavior-conditioned answering (K = 3 behaviors of the
-- shipped handbook, by topic) against the problem alone, and behavior-guided self-improvement against
-- critique-and-revise (three calls each); accuracy next to tokens.
--   refrain run scripts/tutorials/metacognitive.lua [n=20] [max_tokens=96] [topic|similarity]
local mc = require "strategies.metacognitive"
local report = require "tutorials.report"
local n, max_tokens, by = tonumber(arg[1]) or 20, tonumber(arg[2]) or 96, arg[3] or "topic"
local items = lm.tasks.arithmetic{n = n, seed = 1}
local opts = {max_tokens = max_tokens, k = 3, by = by, handbook = mc.load("arithmetic")}
local order, results = {"plain", "conditioned", "critique_revise", "self_improve"}, {}
local bar = lm.progress(n * #order, "metacognitive")
for _, name in ipairs(order) do
  results[name] = {}
  for i, item in ipairs(items) do results[name][i] = mc[name](lm.model, item, opts); bar:tick() end
end
bar:done()
print(("%d items of lm.tasks.arithmetic{seed = 1}, greedy, max_tokens %d per call, K = 3 by %s\n"):format(n, max_tokens, by))
print("Behavior-conditioned answering against the problem alone:\n")
report(results, {"plain", "conditioned"}, {baseline = "plain"})
print("\nSelf-improvement against critique-and-revise (equal budget: three calls):\n")
report(results, {"critique_revise", "self_improve"}, {baseline = "critique_revise"})
local answer_tokens, cited, found = {}, 0, 0
for _, name in ipairs(order) do
  local s = 0
  for _, r in ipairs(results[name]) do s = s + r.answer_tokens end
  answer_tokens[#answer_tokens + 1] = ("%s %.1f"):format(name, s / n)
end
for _, r in ipairs(results.conditioned) do if #r.cited > 0 then cited = cited + 1 end end
for _, r in ipairs(results.self_improve) do if r.behaviors_found > 0 then found = found + 1 end end
print("\ntokens of the answering call / item: " .. table.concat(answer_tokens, ", "))
print(("conditioned answers citing a given behavior: %d/%d; self-improve reflections that wrote a behavior: %d/%d")
      :format(cited, n, found, n))
