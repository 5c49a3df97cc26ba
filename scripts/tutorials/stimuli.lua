-- Emotional stimuli on two tasks: a small sentiment set answered by scoring the two labels, and generated
-- arithmetic answered by a greedy generation; every stimulus next to its neutral control of matched length.
-- The sentiment set runs under all 21 stimuli and their controls; arithmetic (a generation per item and
-- condition, so slower) under the stimuli named on the command line, default two per theory.
--   refrain run scripts/tutorials/stimuli.lua sentiment
--   refrain run scripts/tutorials/stimuli.lua arithmetic [n=20] [stimulus ids...]
local stimuli = require "strategies.stimuli"
local report = require "tutorials.report"
local task_name, n = arg[1] or "sentiment", tonumber(arg[2]) or 20
local chosen = {table.unpack(arg, 3)}
if #chosen == 0 then chosen = {"NP03", "NP06", "NP08", "EP02", "EP05", "EP09"} end
local arith_ids = {"none"}
for _, id in ipairs(chosen) do arith_ids[#arith_ids + 1] = id; arith_ids[#arith_ids + 1] = "neutral:" .. id end

-- Twenty short reviews written for this tutorial, ten of each label.
local REVIEWS = {
  {"The soup was hot and full of flavour.", "positive"}, {"The staff ignored us for twenty minutes.", "negative"},
  {"I would gladly come back next week.", "positive"}, {"The bread was stale and the coffee was cold.", "negative"},
  {"A lovely quiet place with friendly service.", "positive"}, {"My order was wrong twice.", "negative"},
  {"The dessert was the best I have had in years.", "positive"}, {"Too loud, too slow and too expensive.", "negative"},
  {"Fresh fish, fair prices, kind waiters.", "positive"}, {"The table was sticky and the room smelled bad.", "negative"},
  {"Everything arrived quickly and tasted great.", "positive"}, {"I left hungry and annoyed.", "negative"},
  {"The chef came out to greet us, what a treat.", "positive"}, {"The salad was wilted and the fries were soggy.", "negative"},
  {"We loved the garden seating.", "positive"}, {"They charged us for a dish we never got.", "negative"},
  {"A perfect spot for a birthday dinner.", "positive"}, {"Rude manager, long wait, bland food.", "negative"},
  {"The pasta was rich and perfectly cooked.", "positive"}, {"I will not be returning.", "negative"},
}
local sentiment = {}
for i, r in ipairs(REVIEWS) do
  sentiment[i] = {id = "review-" .. i, instruction = "Classify the sentiment of the review as positive or negative.",
                  question = r[1], answer = r[2], labels = {"positive", "negative"}}
end
local arith = lm.tasks.arithmetic{n = n, seed = 1, steps = 1}

for _, task in ipairs({{"sentiment, 20 reviews (label scoring, by mean log-probability)", sentiment, stimuli.conditions(nil, true)},
                       {("arithmetic, %d one-step items of lm.tasks.arithmetic{seed = 1} (greedy, max_tokens 32)"):format(n),
                        arith, arith_ids}}) do
  if not task[1]:find(task_name, 1, true) then goto next end
  local ids = task[3]
  local results, bar = {}, lm.progress(#ids * #task[2], "stimuli")
  for _, id in ipairs(ids) do
    results[id] = {}
    for i, item in ipairs(task[2]) do results[id][i] = stimuli.run(lm.model, item, {stimulus = id}); bar:tick() end
  end
  bar:done()
  print("\n" .. task[1] .. "\n")
  report(results, ids, {baseline = "none"})
  ::next::
end
