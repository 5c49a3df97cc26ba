-- HEART against its baselines on generated arithmetic items: emotional feedback (the default schedule), neutral
-- feedback and a fixed emotion, each at the same budget, in the oracle setting or verifier-free.
--   refrain run scripts/tutorials/heart.lua [n=20] [max_tokens=48] [oracle|free]
local heart = require "strategies.heart"
local report = require "tutorials.report"
local n, max_tokens, setting = tonumber(arg[1]) or 20, tonumber(arg[2]) or 48, arg[3] or "oracle"
local items = lm.tasks.arithmetic{n = n, seed = 1}
local opts = {max_tokens = max_tokens, verifier = setting == "oracle"}
local order, results = {"neutral", "heart", "fixed"}, {}
local bar = lm.progress(n * #order, "heart")
for _, name in ipairs(order) do
  results[name] = {}
  for i, item in ipairs(items) do results[name][i] = heart[name](lm.model, item, opts); bar:tick() end
end
bar:done()
print(("%d items of lm.tasks.arithmetic{seed = 1}, %s setting, max_tokens %d, temperature 0.7, seeds 1..7\n")
      :format(n, setting, max_tokens))
if setting == "oracle" then
  report(results, order, {baseline = "neutral"})
  print("\n| condition | solved within 0, 1, 2, 3, 4, 5, 6 rounds | mean rounds (solved) |\n|---|---|---|")
  for _, name in ipairs(order) do
    local w = {}
    for k = 0, 6 do w[#w + 1] = ("%.2f"):format(heart.accuracy_within(results[name], k)) end
    local mi = heart.mean_iterations(results[name])
    print(("| %s | %s | %s |"):format(name, table.concat(w, " "), mi and ("%.2f"):format(mi) or "-"))
  end
else
  for _, field in ipairs({"correct_synthesis", "correct_majority", "any_correct"}) do
    report(results, order, {baseline = "neutral", field = field}); print()
  end
end
