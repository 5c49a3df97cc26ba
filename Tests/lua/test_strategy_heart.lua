-- strategies/heart.lua on the default model: the feedback schedule it injects, the calls it makes in each setting,
-- the baselines' equal budget, phrase overrides, and the oracle metrics on hand-made results.
local here = arg[0]:match("(.*/)") or "./"
local T = dofile(here .. "check.lua")
local heart = require "strategies.heart"
local m = lm.model

-- Known extractor and verifier: the last integer in the text; integer equality.
local function last_int(text) local x; for n in text:gmatch("%-?%d+") do x = n end; return x end
local function same(p, g) return tonumber(p) == tonumber(g) end
local ITEM = {id = "apples", question = "Tom has 5 apples and buys 3 more. How many apples does he have now?",
              answer = "999999"}                     -- an answer the model will not give: every round runs
local function opts(extra)
  local o = {extract = last_int, verify = same, max_tokens = 8, temperature = 0}
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end
local function labels(r)
  local out = {}
  for i, x in ipairs(r.injected) do out[i] = x.label end
  return table.concat(out, " ")
end
local function has(list, s) for _, x in ipairs(list) do if x == s then return true end end return false end

T.test("oracle loop: one feedback round per emotion, in the default schedule's order", function()
  local r = heart.heart(m, ITEM, opts())
  T.eq(labels(r), "instruction feedback:anger feedback:happiness feedback:disgust feedback:surprise " ..
                  "feedback:fear feedback:sadness")
  T.eq(table.concat(r.schedule, ","), "anger,happiness,disgust,surprise,fear,sadness")
  -- critical and encouraging in turn
  for i, s in ipairs(heart.schedule) do T.eq(s.tone, i % 2 == 1 and "critical" or "encouraging", s.emotion) end
  T.eq(r.tokens.calls, 7); T.eq(#r.attempts, 7)
  for i, c in ipairs(r.calls) do
    T.eq(c.kind, "generate"); T.eq(c.opts.max_tokens, 8)
    T.eq(#c.prompt, 2 * i - 1, "the dialogue grows by one attempt and one feedback turn")
  end
  for i = 2, 7 do
    local fb = r.injected[i]
    T.eq(fb.call, i, "feedback goes into call " .. i)
    T.eq(r.calls[i].prompt[2 * i - 1].content, fb.text)
    T.ok(fb.text:find(heart.phrases.wrong, 1, true) == 1, "the oracle's verdict opens the feedback")
    T.ok(has(heart.phrases[r.schedule[i - 1]], fb.text:sub(#heart.phrases.wrong + 2, -#heart.phrases.retry - 2)),
         "an emotion phrase of the bank: " .. fb.text)
    T.eq(r.calls[i].prompt[2 * i - 2].content, r.calls[i - 1].outputs[1].text, "the attempt stays in the dialogue")
  end
  T.eq(r.correct, false); T.eq(r.iterations, nil)
  local sum = 0
  for _, a in ipairs(r.attempts) do sum = sum + a.tokens end
  T.eq(r.tokens.completion, sum)
end)

T.test("oracle loop stops at the first correct answer", function()
  local checks = 0
  local r = heart.heart(m, ITEM, opts{verify = function() checks = checks + 1; return checks == 3 end})
  T.eq(r.tokens.calls, 3); T.eq(r.correct, true); T.eq(r.correct_at, 3); T.eq(r.iterations, 2)
  T.eq(labels(r), "instruction feedback:anger feedback:happiness")
end)

T.test("verifier-free: feedback every round without a verdict, synthesis call and majority vote", function()
  local checks = 0
  local r = heart.heart(m, ITEM, opts{verifier = false,
                                       verify = function() checks = checks + 1; return checks == 1 end})
  T.eq(r.setting, "verifier-free")
  T.eq(r.tokens.calls, 8, "7 attempts and a synthesis call")
  T.eq(r.attempts[1].correct, true, "a correct first answer does not stop the loop")
  T.eq(r.injected[#r.injected].label, "synthesis")
  T.eq(r.calls[8].prompt[#r.calls[8].prompt].content, heart.phrases.synthesis)
  for i = 2, 7 do T.ok(r.injected[i].text:find(heart.phrases.check, 1, true) == 1, r.injected[i].text) end
  local votes = {}
  for i, a in ipairs(r.attempts) do votes[i] = a.answer or false end
  T.eq(r.answer_majority, (require "strategies.answers").majority(votes))
  T.eq(r.answer_synthesis, last_int(r.calls[8].outputs[1].text))
  T.eq(r.answer, r.answer_synthesis, "the default final answer is the synthesis")
  local v = heart.heart(m, ITEM, opts{verifier = false, final = "majority", iterations = 2, max_tokens = 4})
  T.eq(v.answer, v.answer_majority); T.eq(v.tokens.calls, 4)
end)

T.test("baselines: neutral and fixed-emotion feedback at the same budget and seeds", function()
  local o = opts{temperature = 0.7, seed = 5, max_tokens = 4}
  local e, n, f = heart.heart(m, ITEM, o), heart.neutral(m, ITEM, o), heart.fixed(m, ITEM, o)
  T.eq(n.tokens.calls, e.tokens.calls); T.eq(f.tokens.calls, e.tokens.calls)
  for i = 1, 7 do
    T.eq(n.calls[i].opts.seed, e.calls[i].opts.seed); T.eq(f.calls[i].opts.seed, 4 + i)
    T.eq(n.calls[i].opts.max_tokens, 4); T.eq(f.calls[i].opts.temperature, 0.7)
  end
  T.eq(labels(n), "instruction" .. string.rep(" feedback:neutral", 6))
  T.eq(labels(f), "instruction" .. string.rep(" feedback:anger", 6))
  for i = 2, 7 do   -- the fixed emotion cycles through its phrases
    T.ok(f.injected[i].text:find(heart.phrases.anger[(i - 2) % 3 + 1], 1, true), f.injected[i].text)
    T.ok(n.injected[i].text:find(heart.phrases.neutral[(i - 2) % 3 + 1], 1, true), n.injected[i].text)
  end
  local s = heart.fixed(m, ITEM, opts{emotion = "sadness", iterations = 2})
  T.eq(labels(s), "instruction feedback:sadness feedback:sadness"); T.eq(s.tokens.calls, 3)
end)

T.test("blind resampling: the same attempts and seeds, each the question afresh, no feedback", function()
  local o = opts({temperature = 0.7, iterations = 3})
  local b, n = heart.blind(m, ITEM, o), heart.neutral(m, ITEM, o)
  T.eq(#b.calls, 4); T.eq(#n.calls, 4)
  T.eq(labels(b), "instruction", "nothing but the instruction is injected")
  for i, c in ipairs(b.calls) do
    T.eq(#c.prompt, 1, "attempt " .. i .. ": the question alone")
    T.eq(c.prompt[1].content, b.calls[1].prompt[1].content)
    T.eq(c.opts.seed, n.calls[i].opts.seed, "the seeds of the other arms")
  end
  T.eq(b.calls[1].outputs[1].text, n.calls[1].outputs[1].text, "the first attempt is every arm's first attempt")
  T.eq(table.concat(b.schedule, ","), "none,none,none")
  local solved = heart.blind(m, ITEM, opts({temperature = 0.7, iterations = 3, verify = function() return true end}))
  T.eq(#solved.calls, 1, "the oracle stops at the first right attempt"); T.eq(solved.correct, true)
  local free = heart.blind(m, ITEM, opts({temperature = 0.7, iterations = 3, verifier = false}))
  T.eq(#free.calls, 4, "no synthesis call: there is no conversation to synthesise")
  local votes = {}
  for i, a in ipairs(free.attempts) do votes[i] = a.answer or false end
  local want = require("strategies.answers").majority(votes)
  T.eq(free.answer, want); T.eq(free.answer_majority, want)
end)

T.test("phrases from a table or a file; a schedule of one's own", function()
  local r = heart.heart(m, ITEM, opts{phrases = {anger = {"GRR."}, wrong = "No."}, iterations = 1})
  T.eq(r.injected[2].text, "No. GRR. " .. heart.phrases.retry)
  local path = os.tmpname()
  local f = assert(io.open(path, "w")); f:write('return {fear = {"EEK."}}'); f:close()
  local s = heart.heart(m, ITEM, opts{phrases = path, schedule = {{emotion = "fear"}}, iterations = 2})
  os.remove(path)
  T.eq(labels(s), "instruction feedback:fear feedback:fear")
  T.ok(s.injected[3].text:find("EEK.", 1, true))
  T.err(function() heart.heart(m, ITEM, opts{phrases = {angr = {"x"}}}) end, "unknown key 'angr'")
  T.err(function() heart.heart(m, ITEM, opts{schedule = {{emotion = "joy"}}}) end, "no phrases for emotion 'joy'")
end)

T.test("without opts.extract / opts.verify: lm.extract.number and lm.verify.numeric", function()
  local r = heart.heart(m, {id = 2, question = ITEM.question, answer = 8}, {max_tokens = 12, temperature = 0, iterations = 1})
  for i, a in ipairs(r.attempts) do
    local text = r.calls[i].outputs[1].text
    T.eq(a.answer, lm.extract.number(text)); T.eq(a.correct, lm.verify.numeric(lm.extract.number(text), 8))
  end
end)

T.test("accuracy within n rounds and iterations needed, on hand-made results", function()
  local rs = {{iterations = 0}, {iterations = 2}, {iterations = nil}, {iterations = 5}}
  T.eq(heart.accuracy_within(rs, 0), 0.25)
  T.eq(heart.accuracy_within(rs, 2), 0.5)
  T.eq(heart.accuracy_within(rs, 6), 0.75)
  T.eq(heart.mean_iterations(rs), 7 / 3)
  T.eq(heart.mean_iterations({{}}), nil)
end)

T.test("fields_report.lua: accuracy of extra fields per strategy, paired against the baseline's", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/fields_report.lua"
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/results.jsonl", "w"))
  -- Three items; majority right: base on 1, heart on 1, 2, 3; heart's item 3 lacks the field (counts as wrong).
  local rows = {
    {"base", "a", true, true}, {"base", "b", false, false}, {"base", "c", false, false},
    {"heart", "a", true, true}, {"heart", "b", true, true}, {"heart", "c", false, nil},
  }
  for k, r in ipairs(rows) do
    f:write(lm.json.encode({strategy = r[1], item = r[2], index = (k - 1) % 3 + 1, correct = r[3],
      extra = {correct_majority = r[4]}}), "\n")
  end
  f:close()
  local run = assert(io.open(dir .. "/run.json", "w"))
  run:write(lm.json.encode({baseline = "base"}), "\n")
  run:close()
  local function report(args) return T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " " .. args) end
  local code, out = report(T.q(dir) .. " correct_majority")
  T.eq(code, 0, out)
  T.ok(out:find("baseline base", 1, true), out)
  T.ok(out:find("| base | 3 | 0.333 [", 1, true), out)
  T.ok(out:find("| heart | 3 | 0.667 [", 1, true) and out:find("+0.333 [", 1, true) and out:find("| 1.000 | 1 / 0 | 1 |", 1, true), out)
  code, out = report(T.q(dir) .. " correct --baseline heart")
  T.eq(code, 0, out)
  T.ok(out:find("| heart | 3 | 0.667 [", 1, true) and out:find("(baseline)", 1, true), out)
  -- The common grader's verdict: these lines hold no texts, so it has none (missing, counted wrong).
  code, out = report(T.q(dir) .. " common")
  T.eq(code, 0, out)
  T.ok(out:find("**common**", 1, true) and out:find("| heart | 3 | 0.000 [0.000, 0.000] |", 1, true)
    and out:find("| 3 |\n", 1, true), out)
  code, out = report(T.q(dir) .. " correct --baseline nobody")
  T.eq(code, 2); T.ok(out:find("no baseline 'nobody'", 1, true), out)
  code, out = report(T.q(dir))
  T.eq(code, 2); T.ok(out:find("usage: fields_report.lua DIR FIELD", 1, true), out)
end)

T.test("fields_report.lua --extract: answers read again from each line's final text", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/fields_report.lua"
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/results.jsonl", "w"))
  -- Gold 20 for every item. item a: boxed 20 then "in 3 years" (the last number, 3, was graded wrong); item b:
  -- only the last call's output holds the text; item c: no number at all; item d: right either way.
  local lines = {
    {strategy = "s", item = "a", index = 1, gold = 20, correct = false,
     extra = {text = "So Vera will be \\boxed{20} years old in 3 years."}},
    {strategy = "s", item = "b", index = 2, gold = 20, correct = false,
     calls = {{outputs = {{text = "first try: 7"}}}, {outputs = {{text = "The answer is 20, I counted 4 twice."}}}}},
    {strategy = "s", item = "c", index = 3, gold = 20, correct = false, extra = {text = "I do not know."}},
    {strategy = "s", item = "d", index = 4, gold = 20, correct = true, extra = {text = "It is 20."}},
  }
  for _, l in ipairs(lines) do f:write(lm.json.encode(l), "\n") end
  f:close()
  local function report(args) return T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " " .. args) end
  local code, out = report(T.q(dir) .. " correct --extract answer")
  T.eq(code, 0, out)
  T.ok(out:find("**correct**", 1, true) and out:find("| s | 4 | 0.250 [", 1, true), out)
  -- a (boxed first), b ("answer is" in the last call) and d are right on the second reading; c has no answer.
  T.ok(out:find("**extract.answer**", 1, true) and out:find("| s | 4 | 0.750 [", 1, true), out)
  -- "common": the common grader on the line's recorded calls (here the last call's output; it does not read
  -- extra.text): b is right ("answer is" 20), the three lines without calls are missing.
  code, out = report(T.q(dir) .. " common")
  T.eq(code, 0, out)
  T.ok(out:find("**common**", 1, true) and out:find("| s | 4 | 0.250 [", 1, true) and out:find("| 3 |\n", 1, true), out)
  code, out = report(T.q(dir) .. " --extract number")
  T.eq(code, 0, out)
  T.ok(out:find("**extract.number**", 1, true) and out:find("| s | 4 | 0.250 [", 1, true), out)
  code, out = report(T.q(dir) .. " --extract nothing")
  T.eq(code, 2); T.ok(out:find("no lm.extract.nothing", 1, true), out)
  local g = assert(io.open(dir .. "/results.jsonl", "w"))
  g:write(lm.json.encode({strategy = "s", item = "x", index = 1, gold = "Paris", correct = false,
                          extra = {text = "It is 3."}}), "\n")
  g:close()
  code, out = report(T.q(dir) .. " --extract answer")
  T.eq(code, 2); T.ok(out:find("item x of strategy s has gold \"Paris\", not a number", 1, true), out)
end)

T.test("fields_report.lua with two seed sets: per-item means, a deterministic baseline, each set's accuracy", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/fields_report.lua"
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/run.json", "w"))
  f:write(lm.json.encode({baseline = "base", seeds = 2, deterministic = {"base"}}), "\n")
  f:close()
  -- base (deterministic: set 1 stands for both) right on a. heart: a right in both sets, b in set 1, c in neither
  -- (its set-1 line lacks the field): per item 1, 0.5, 0 (0.5); set 1 0.667, set 2 0.333.
  f = assert(io.open(dir .. "/results.jsonl", "w"))
  for _, r in ipairs({
    {"base", "a", 1, 1, true}, {"base", "b", 2, 1, false}, {"base", "c", 3, 1, false},
    {"heart", "a", 1, 1, true}, {"heart", "b", 2, 1, true}, {"heart", "c", 3, 1, nil},
    {"heart", "a", 1, 2, true}, {"heart", "b", 2, 2, false}, {"heart", "c", 3, 2, false},
  }) do
    f:write(lm.json.encode({strategy = r[1], item = r[2], index = r[3], seed_set = r[4], correct = r[5] == true,
      extra = {correct_majority = r[5]}}), "\n")
  end
  f:close()
  local code, out = T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " " .. T.q(dir) .. " correct_majority")
  T.eq(code, 0, out)
  T.ok(out:find("(2 seed sets); baseline base", 1, true), out)
  T.ok(out:find("| strategy | items | accuracy [95% CI] | seed-set spread | Δ vs base [95% CI] |", 1, true), out)
  T.ok(out:find("| base | 3 × 1 (deterministic) | 0.333 [", 1, true) and out:find("| 0.333–0.333 (sd 0.000) | (baseline) |", 1, true), out)
  -- heart − base per item: 0, +0.5, 0.
  T.ok(out:find("| heart | 3 × 2.0 | 0.500 [", 1, true) and out:find("| 0.333–0.667 (sd 0.236) | +0.167 [", 1, true)
    and out:find("| 1 / 0 | 1 |", 1, true), out)
  T.ok(out:find("- heart: 1: 0.667, 2: 0.333", 1, true) and out:find("- base: 1: 0.333, 2: 0.333", 1, true), out)
  T.ok(out:find("Seed sets: 2; an item's score is its mean over the sets it has", 1, true)
    and out:find("p: a sign-flip permutation test on the items' differences.", 1, true), out)
end)

T.done()
