-- strategies/stimuli.lua on the default model: the stimulus sets and their theories, the template, where the
-- stimulus goes, the matched neutral controls, and label scoring against scores computed here.
local here = arg[0]:match("(.*/)") or "./"
local T = dofile(here .. "check.lua")
local stimuli = require "strategies.stimuli"
local m = lm.model

local function last_int(text) local x; for n in text:gmatch("%-?%d+") do x = n end; return x end
local function same(p, g) return tonumber(p) == tonumber(g) end
local ARITH = {id = "a1", question = "Tom has 5 apples and buys 3 more. How many apples does he have now?", answer = "8"}
local REVIEW = {id = "c1", instruction = "Classify the sentiment of the review as positive or negative.",
                question = "The food was cold and the waiter was rude.", answer = "negative",
                labels = {"positive", "negative"}}

T.test("ten negative and eleven positive stimuli, each under one theory", function()
  T.eq(#stimuli.conditions("negative"), 11); T.eq(#stimuli.conditions("positive"), 12)
  local all = stimuli.conditions(nil, true)
  T.eq(#all, 1 + 21 * 2); T.eq(all[1], "none"); T.eq(all[2], "NP01"); T.eq(all[3], "neutral:NP01")
  local seen, n = {}, 0
  for _, ids in pairs(stimuli.theories) do
    for _, id in ipairs(ids) do T.eq(seen[id], nil, id); seen[id] = true; n = n + 1 end
  end
  T.eq(n, 21)
  for _, t in ipairs({"cognitive dissonance", "social comparison", "stress and coping"}) do
    for _, id in ipairs(stimuli.theories[t]) do T.ok(id:match("^NP"), t .. " " .. id) end
  end
  for _, t in ipairs({"self-monitoring", "social cognitive theory", "emotion regulation"}) do
    for _, id in ipairs(stimuli.theories[t]) do T.ok(id:match("^EP"), t .. " " .. id) end
  end
end)

T.test("the Instruction / Input / Answer template, stimulus at the end of the instruction", function()
  T.eq(stimuli.prompt("Add.", "You can do it.", "2 + 2", nil, " "), "Instruction: Add. You can do it.\nInput: 2 + 2\nAnswer:")
  T.eq(stimuli.prompt("Add.", nil, "2 + 2"), "Instruction: Add.\nInput: 2 + 2\nAnswer:")
  T.eq(stimuli.prompt("Add.", "S.", "2 + 2", {{input = "1 + 1", answer = "2"}}, ""),
       "Instruction: Add.S.\nInput: 1 + 1\nAnswer: 2\nInput: 2 + 2\nAnswer:")
end)

T.test("a neutral control as long as each stimulus, in tokens", function()
  for _, id in ipairs(stimuli.conditions()) do
    if id ~= "none" then
      local s, n, target = stimuli.neutral_for(m, stimuli.phrases[id], stimuli.phrases.neutral_passage)
      T.eq(target, #m:tokenize(" " .. stimuli.phrases[id]))
      T.eq(n, #m:tokenize(" " .. s))
      T.ok(math.abs(n - target) <= 1, id .. ": " .. n .. " tokens against " .. target)
      T.ok(s:match("%.$") and stimuli.phrases.neutral_passage:find(s:sub(1, -2), 1, true) == 1, s)
    end
  end
end)

T.test("one generation per condition; the stimulus (or its control) recorded and in the prompt", function()
  local o = {extract = last_int, verify = same, max_tokens = 12}
  local none = stimuli.run(m, ARITH, o)
  T.eq(#none.injected, 0); T.eq(none.condition, "none"); T.eq(none.tokens.calls, 1)
  T.ok(none.prompt:find("Instruction: " .. stimuli.phrases.instruction .. "\nInput: " .. ARITH.question .. "\nAnswer:", 1, true))
  T.eq(stimuli.run(m, ARITH, {stimulus = 0, extract = last_int, verify = same, max_tokens = 12}).prompt, none.prompt)
  local np = stimuli.condition("NP03")(m, ARITH, o)
  T.eq(np.condition, "NP03"); T.eq(np.injected[1].label, "stimulus"); T.eq(np.injected[1].text, stimuli.phrases.NP03)
  T.ok(np.prompt:find(stimuli.phrases.instruction .. " " .. stimuli.phrases.NP03 .. "\nInput:", 1, true), np.prompt)
  T.eq(np.calls[1].kind, "generate"); T.eq(np.calls[1].opts.temperature, 0)
  T.eq(np.answer, last_int(np.text)); T.eq(np.correct, same(np.answer, "8"))
  local ctl = stimuli.run(m, ARITH, {stimulus = "neutral:NP03", extract = last_int, verify = same, max_tokens = 12})
  T.eq(ctl.injected[1].label, "control")
  T.eq(ctl.injected[1].text, (stimuli.neutral_for(m, stimuli.phrases.NP03, stimuli.phrases.neutral_passage)))
  T.ok(ctl.prompt:find(ctl.injected[1].text .. "\nInput:", 1, true))
  local ep = stimuli.run(m, ARITH, {stimulus = "EP11", phrases = {EP11 = "Breathe."}, extract = last_int,
                                    verify = same, max_tokens = 12})
  T.ok(ep.prompt:find(stimuli.phrases.instruction .. " Breathe.\nInput:", 1, true))
  T.err(function() stimuli.run(m, ARITH, {stimulus = "NP11"}) end, "unknown stimulus 'NP11'")
  local d = stimuli.run(m, ARITH, {max_tokens = 12})       -- the harness's extractor and verifier
  T.eq(d.text, none.text); T.eq(d.answer, lm.extract.number(d.text)); T.eq(d.correct, lm.verify.numeric(d.answer, 8))
end)

T.test("labels are scored, not generated: the best label by the mean log-probability computed here", function()
  for _, chat in ipairs({true, false}) do
    for _, id in ipairs({"none", "NP05", "EP02"}) do
      local r = stimuli.run(m, REVIEW, {stimulus = id, chat = chat})
      T.eq(r.tokens.calls, 1); T.eq(r.calls[1].kind, "choose"); T.eq(r.tokens.completion, 0)
      local best, want = -math.huge, nil
      for i, label in ipairs(REVIEW.labels) do
        local s = m:score(r.prompt, (chat and "" or " ") .. label)
        T.ok(math.abs(s.mean - r.scores[i]) < 1e-9, label)
        if s.mean > best then best, want = s.mean, label end
      end
      T.eq(r.answer, want, id); T.eq(r.correct, want == "negative")
      T.ok(chat == (r.prompt:find("<|im_start|>user", 1, true) ~= nil))
    end
  end
  local c = stimuli.run(m, REVIEW, {by = "calibrated"})
  T.eq(c.calls[1].opts.by, "calibrated")
end)

T.done()
