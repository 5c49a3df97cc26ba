-- strategies.selection: the vote, the read-outs, surprisal picks and rank correlation on hand-made sample sets,
-- then each strategy on the default model (seeded, small budgets): its calls, budgets, seeds and injected
-- strings, and its figures against m:sample run here. Run as: refrain run test_strategy_selection.lua
-- (REFRAIN_SCRIPTS, if set, must be the real scripts/).
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local sel = require "strategies.selection"
local m = lm.model

local extract, verify = T.last_integer, T.same_number
local Q, ITEM = T.QUESTION, T.ITEM
local PROMPT = m:template({{role = "user", content = Q}})
local function near(a, b) return math.abs(a - b) < 1e-9 end

T.test("vote", function()
  local w, n, counts = sel.vote({3, "3", 3.0, 5, 5, nil, "x"})
  T.eq(w, 3); T.eq(n, 3); T.eq(counts["5"], 2); T.eq(counts["x"], 1)
  T.eq((sel.vote({5, 3, 3, 5})), 5, "a tie goes to the answer seen first")
  T.eq((sel.vote({nil, 3, 3, 5, 5, 5})), 5)
  local none, zero = sel.vote({nil, nil})
  T.eq(none, nil); T.eq(zero, 0)
  T.eq(sel.key(" Paris "), "paris"); T.eq(sel.key("19.0"), sel.key(19))
end)

-- Six hand-made samples: answers, correctness against 7, mean and total log-probabilities.
local SET = {
  {answer = 5, correct = false, mean = -0.9, sum = -9},
  {answer = 7, correct = true, mean = -0.3, sum = -12},
  {answer = 5, correct = false, mean = -0.1, sum = -2},
  {answer = 7, correct = true, mean = -0.8, sum = -4},
  {answer = 5, correct = false, mean = -1.5, sum = -30},
  {answer = 7, correct = true, mean = -0.5, sum = -20},
}

T.test("read-outs of one sample set", function()
  local r = sel.readouts(SET, function(a) return a == 7 end)
  T.eq(r.pass.correct, true); T.eq(r.pass.index, 2)
  T.eq(r.majority.answer, 5); T.eq(r.majority.votes, 3); T.eq(r.majority.correct, false, "tie 3-3: 5 came first")
  T.eq(r.max_logprob.index, 3); T.eq(r.max_logprob.correct, false)
  T.eq(r.min_logprob.index, 5); T.eq(r.first.answer, 5)
  local wrong = sel.readouts({SET[1], SET[3]}, function(a) return a == 7 end)
  T.eq(wrong.pass.correct, false); T.eq(wrong.pass.index, nil)
end)

T.test("surprisal picks", function()
  local p = sel.surprisal_pick(SET)
  T.eq(p.least, 4, "highest per-token surprisal among the correct")
  T.eq(p.least_total, 6, "highest total surprisal among the correct")
  T.eq(p.most, 2); T.eq(table.concat(p.top, ","), "4,6,2"); T.eq(p.best, nil)
  local q = sel.surprisal_pick(SET, {keep = 2, quality = function(s) return s.sum end})
  T.eq(table.concat(q.top, ","), "4,6"); T.eq(q.best, 4, "of the top two, the better quality")
  T.eq(#sel.surprisal_pick({SET[1], SET[3]}).top, 0); T.eq(sel.surprisal_pick({SET[1]}).least, nil)
end)

T.test("rank correlation", function()
  T.eq(sel.rank_correlation({1, 2, 3, 4}, {10, 20, 30, 40}), 1)
  T.eq(sel.rank_correlation({1, 2, 3, 4}, {4, 3, 2, 1}), -1)
  T.ok(near(sel.rank_correlation({1, 2, 3, 4, 5}, {2, 1, 4, 3, 5}), 0.8))   -- 1 - 6*4/(5*24)
  T.ok(near(sel.rank_correlation({1, 2, 2, 3}, {1, 2, 3, 4}), 0.9486832980505138))   -- ties: average ranks
  T.eq(sel.rank_correlation({1, 1, 1}, {1, 2, 3}), nil)
end)

local SAMPLE = {n = 4, max_tokens = 20, seed = 3, extract = extract, verify = verify}

-- The same four samples, drawn here.
local direct = m:sample(PROMPT, 4, {max_tokens = 20, temperature = 0.7, seed = 3})

T.test("answer_step: free reasoning in max_tokens - answer_tokens, then the constrained answer, read by lm.extract.final", function()
  local r = sel.self_consistency(m, ITEM, {n = 2, max_tokens = 24, answer_tokens = 10, seed = 3, verify = verify, answer_step = "number"})
  T.eq(#r.calls, 3, "one sample call, then one answer step per sample")
  T.eq(r.calls[1].kind, "sample"); T.eq(r.calls[1].opts.max_tokens, 14)
  local reasoning = m:sample(PROMPT, 2, {max_tokens = 14, temperature = 0.7, seed = 3})
  for i = 1, 2 do
    local step = r.calls[i + 1]
    T.eq(step.kind, "generate"); T.eq(step.opts.max_tokens, 10); T.eq(step.opts.temperature, 0)
    T.eq(step.opts.regex, require("strategies.answers").NUMBER_ANSWER)
    T.eq(step.prompt, PROMPT .. reasoning[i].text .. (reasoning[i].text:match("\n$") and "" or "\n"))
    local out = step.outputs[1]
    local text = out.text
    if out.finish == "incomplete" then
      T.ok(("The answer is "):sub(1, #text) == text:sub(1, 14), "a cut step is a prefix of the form: " .. text)
    else
      T.ok(lm.accepts({regex = step.opts.regex}, text), "the step's text holds the form: " .. text)
    end
    T.eq(r.answers[i], lm.extract.final(text), "the answer is the step's number")
  end
  T.ok(#r.injected >= 2, "the constraint is recorded as injected")
  T.err(function() sel.self_consistency(m, ITEM, {n = 1, max_tokens = 8, answer_tokens = 8, answer_step = "number"}) end,
    "max_tokens (8) must exceed answer_tokens (8)")
  T.err(function() sel.self_consistency(m, ITEM, {n = 1, answer_step = {regex = "x", choices = {"y"}}}) end, "exactly one of")
  T.err(function() sel.retry(m, ITEM, {answer_step = "number"}) end, "answer_step is not available here")
  -- extract by name: "number" reads the whole text's last number, "final" the step's
  local f = sel.self_consistency(m, ITEM, {n = 1, temperature = 0, max_tokens = 24, answer_tokens = 10, answer_step = "number", extract = "number"})
  T.eq(f.answer, lm.extract.number(f.text))
end)

T.test("self-consistency: one batched call, the majority of its answers", function()
  local r = sel.self_consistency(m, ITEM, SAMPLE)
  T.eq(#r.calls, 1); T.eq(r.calls[1].kind, "sample"); T.eq(r.calls[1].n, 4)
  T.eq(r.calls[1].opts.temperature, 0.7); T.eq(r.calls[1].opts.seed, 3); T.eq(r.calls[1].opts.max_tokens, 20)
  T.eq(r.calls[1].prompt, PROMPT)
  local answers = {}
  for i, d in ipairs(direct) do answers[i] = extract(d.text); T.eq(r.answers[i], answers[i], "answer " .. i) end
  local w, votes = sel.vote(answers)
  T.eq(r.answer, w); T.eq(r.votes, votes); T.eq(r.correct, w == 19)
  local completion = 0
  for _, d in ipairs(direct) do completion = completion + d.usage.completion end
  T.eq(r.tokens.completion, completion)
end)

T.test("without opts.extract / opts.verify: lm.extract.number and lm.verify.numeric", function()
  local r = sel.self_consistency(m, ITEM, {n = 4, max_tokens = 20, seed = 3})
  for i, d in ipairs(direct) do T.eq(r.answers[i], lm.extract.number(d.text), "answer " .. i) end
  T.eq(r.correct, r.answer ~= nil and lm.verify.numeric(r.answer, "19"))
end)

T.test("best-of-N: every read-out from the same samples", function()
  local r = sel.best_of_n(m, ITEM, SAMPLE)
  T.eq(#r.calls, 1)
  local hi, lo, any = 1, 1, false
  local function mean(d) local s = 0; for _, x in ipairs(d.logprobs) do s = s + x end; return s / #d.logprobs end
  for i, d in ipairs(direct) do
    T.ok(near(r.samples[i].mean, mean(d)), "mean log-prob " .. i)
    T.eq(r.scores[i].mean, r.samples[i].mean); T.eq(r.scores[i].answer, r.samples[i].answer)
    T.eq(r.scores[i].tokens, #d.logprobs); T.eq(r.scores[i].text, nil, "scores carry no text")
    if mean(d) > mean(direct[hi]) then hi = i end
    if mean(d) < mean(direct[lo]) then lo = i end
    if extract(d.text) == 19 then any = true end
  end
  T.eq(r.readouts.max_logprob.index, hi); T.eq(r.readouts.min_logprob.index, lo)
  T.eq(r.readouts.pass.correct, any)
  T.eq(r.readout, "majority"); T.eq(r.answer, sel.self_consistency(m, ITEM, SAMPLE).answer)
  local by = sel.best_of_n(m, ITEM, {n = 4, max_tokens = 20, seed = 3, extract = extract, verify = verify,
                                     readout = "min_logprob"})
  T.eq(by.answer, extract(direct[lo].text))
  T.err(function() sel.best_of_n(m, ITEM, {n = 2, max_tokens = 2, extract = extract, readout = "best"}) end,
        "unknown readout 'best'")
end)

T.test("surprisal: the least confident correct sample", function()
  -- gold = the first sample's answer, so at least one sample is correct
  local gold = extract(direct[1].text) or -1
  local r = sel.surprisal(m, {id = "s", question = Q, answer = tostring(gold)},
                          {n = 4, max_tokens = 20, seed = 3, extract = extract, verify = verify,
                           quality = function(s) return -s.tokens end})
  T.eq(#r.calls, 1)
  local want = sel.surprisal_pick(r.samples, {quality = function(s) return -s.tokens end})
  T.eq(r.picks.least, want.least); T.eq(r.picks.best, want.best)
  T.ok(r.samples[r.picks.least].correct)
  for _, s in ipairs(r.samples) do
    if s.correct then T.ok(s.mean >= r.samples[r.picks.least].mean) end
  end
  T.eq(r.quality.best, -r.samples[r.picks.best].tokens)
  T.eq(r.answer, r.samples[r.picks.best].answer); T.eq(r.correct, true)
end)

local WRONG = {id = "w", question = Q, answer = "-1"}
local function retry(mitigation, extra)
  local o = {rounds = 3, k = 2, max_tokens = 8, seed = 1, mitigation = mitigation, extract = extract, verify = verify}
  for k, v in pairs(extra or {}) do o[k] = v end
  return sel.retry(m, WRONG, o)
end

T.test("retry: rounds, feedback, seeds and temperatures", function()
  local r = retry("none")
  T.eq(r.rounds, 3); T.eq(#r.calls, 3); T.eq(r.correct, false)
  local labels = {}
  for i, x in ipairs(r.injected) do labels[i] = x.label .. "@" .. x.call end
  T.eq(table.concat(labels, " "), "ask@1 feedback@2 feedback@3")
  for round = 1, 3 do
    local c = r.calls[round]
    T.eq(c.kind, "sample"); T.eq(c.n, 2); T.eq(c.opts.seed, 1 + (round - 1) * 2); T.eq(c.opts.temperature, 0.7)
    T.eq(r.history[round].picked, 1)
  end
  local fb = "Your answer " .. tostring(r.history[1].answer or "(none)") .. " is not correct."
  T.ok(r.injected[2].text:find(fb, 1, true), r.injected[2].text)
  local third = m:template({{role = "user", content = Q},
    {role = "assistant", content = r.calls[1].outputs[1].text}, {role = "user", content = r.injected[2].text},
    {role = "assistant", content = r.calls[2].outputs[1].text}, {role = "user", content = r.injected[3].text}})
  T.eq(r.calls[3].prompt, third, "the conversation so far")
  local t = retry("temperature")
  T.eq(t.history[1].temperature, 0.7); T.ok(near(t.history[2].temperature, 0.85)); T.ok(near(t.history[3].temperature, 1.0))
  local capped = retry("temperature", {temperature = 1.4})
  T.ok(near(capped.history[2].temperature, 1.5)); T.ok(near(capped.history[3].temperature, 1.5))
  local first = retry("none", {verify = function() return true end})
  T.eq(first.rounds, 1); T.eq(#first.calls, 1); T.eq(#first.injected, 1)
  T.err(function() retry("louder") end, "mitigation must be none, temperature, reject or both")
end)

T.test("retry: rejecting answers already tried", function()
  local r = retry("reject", {k = 3, rounds = 3})
  local tried = {}
  for round, h in ipairs(r.history) do
    local new
    for i, a in ipairs(h.answers) do
      if a ~= nil and not tried[sel.key(a)] then new = i; break end
    end
    T.eq(h.picked, new or 1, "round " .. round .. " keeps the first new answer")
    if h.answer ~= nil then tried[sel.key(h.answer)] = true end
  end
  local none = retry("none", {k = 3, rounds = 1})
  T.eq(r.calls[1].outputs[1].text, none.calls[1].outputs[1].text, "the same draws in round one")
  -- Scripted answers, one per draw in order, so that old answers come first.
  local function scripted(list)
    local n = 0
    return function() n = n + 1; return list[n] end
  end
  local script = {1, 1, 2, 1, 2, 3, 1, 2, 4}
  local rj = retry("reject", {k = 3, extract = scripted(script)})
  local nn = retry("none", {k = 3, extract = scripted(script)})
  local function picks(x) local t = {}; for i, h in ipairs(x.history) do t[i] = h.picked .. ":" .. h.answer end; return table.concat(t, " ") end
  T.eq(picks(rj), "1:1 2:2 3:4"); T.eq(picks(nn), "1:1 1:1 1:1")
end)

-- Scripted answers, one per call of the extractor in order (nil: a draw without a number).
local function scripted_list(list)
  local k = 0
  return function() k = k + 1; return list[k] end
end

T.test("self-consistency and best-of-N vote over every sample, holes and all", function()
  -- The first sample gives no number: the vote must still count the three after it (a vote over `#answers`
  -- stops at the hole).
  local r = sel.self_consistency(m, ITEM, {n = 4, max_tokens = 8, seed = 3, verify = verify,
                                           extract = scripted_list({nil, 5, 5, 3})})
  T.eq(r.answer, 5); T.eq(r.votes, 2); T.eq(r.answers.n, 4); T.eq(r.answers[1], nil); T.eq(r.answers[4], 3)
  T.eq(lm.json.encode(r.answers), "[null,5,5,3]", "the list is written whole")
  local b = sel.best_of_n(m, ITEM, {n = 4, max_tokens = 8, seed = 3, verify = verify,
                                    extract = scripted_list({1, nil, 2, 2})})
  T.eq(b.readouts.majority.answer, 2); T.eq(b.readouts.majority.votes, 2); T.eq(b.answer, 2)
  local holes = lm.list(5)
  holes[2], holes[4], holes[5] = 8, 6, 6
  T.eq((sel.vote(holes)), 6, "lm.list: the vote reads to n")
end)

T.test("retry: a draw without a number does not end the search for a new answer", function()
  -- Round 2's draws: 1 (tried in round 1), no number, 2 (new): the new one is kept.
  local r = retry("reject", {k = 3, rounds = 2, extract = scripted_list({1, 1, 1, 1, nil, 2})})
  T.eq(r.history[2].picked, 3); T.eq(r.history[2].answer, 2)
  T.eq(r.history[2].answers.n, 3); T.eq(lm.json.encode(r.history[2].answers), "[1,null,2]")
end)

T.test("retry: blind resampling asks afresh every round, with the same draws and seeds", function()
  local b = retry("none", {feedback = false})
  local n = retry("none")
  T.eq(#b.calls, 3)
  for round = 1, 3 do
    T.eq(b.calls[round].prompt, PROMPT, "round " .. round .. ": the question alone")
    T.eq(b.calls[round].opts.seed, n.calls[round].opts.seed); T.eq(b.calls[round].n, 2)
  end
  T.eq(#b.injected, 1, "no feedback injected")
  T.eq(b.calls[1].outputs[1].text, n.calls[1].outputs[1].text, "round one is the same draw")
end)

T.test("early rejection: partial steps, the best N/M finished, tokens saved", function()
  local r = sel.early_rejection(m, ITEM, {n = 4, m = 2, tau = 4, max_tokens = 12, seed = 2, compare = true,
                                          extract = extract, verify = verify})
  T.eq(r.calls[1].kind, "sample"); T.eq(r.calls[1].n, 4); T.eq(r.calls[1].opts.max_tokens, 4)
  local partial = m:sample(PROMPT, 4, {max_tokens = 4, temperature = 0.7, seed = 2})
  local order = {1, 2, 3, 4}
  local function mean(d) local s = 0; for _, x in ipairs(d.logprobs) do s = s + x end; return s / #d.logprobs end
  table.sort(order, function(a, b) return mean(partial[a]) > mean(partial[b]) end)
  T.eq(table.concat(r.kept, ","), order[1] .. "," .. order[2], "the two best partial scores survive")
  for i = 1, 4 do T.ok(near(r.partial_means[i], mean(partial[i])), "partial score " .. i) end
  -- 1 sample call, 2 continuations for the survivors, then 2 more for the comparison
  T.eq(#r.calls, 5)
  local spent = 0
  for _, d in ipairs(partial) do spent = spent + d.usage.completion end
  for c = 2, 3 do
    T.eq(r.calls[c].kind, "generate"); T.eq(r.calls[c].opts.max_tokens, 8)
    T.eq(r.calls[c].prompt, PROMPT .. partial[r.kept[c - 1]].text)
    spent = spent + r.calls[c].outputs[1].usage.completion
  end
  T.eq(r.generated, spent); T.eq(r.saved, 4 * 12 - spent)
  T.eq(r.saved_exact, r.calls[4].outputs[1].usage.completion + r.calls[5].outputs[1].usage.completion)
  T.eq(r.tokens.completion, spent + r.saved_exact)
  T.eq(r.spearman, sel.rank_correlation(r.partial_means, r.full_means))
  local best = 1
  for i = 2, 4 do if r.full_means[i] > r.full_means[best] then best = i end end
  T.eq(r.best_kept, best == r.kept[1] or best == r.kept[2])
  local each = 0
  for i = 1, 4 do T.ok(r.full_tokens[i] >= partial[i].usage.completion, "tokens of " .. i); each = each + r.full_tokens[i] end
  T.eq(each, r.tokens.completion, "the candidates' tokens add up to all that was generated")
  local plain = sel.early_rejection(m, ITEM, {n = 4, m = 2, tau = 4, max_tokens = 12, seed = 2,
                                              extract = extract, verify = verify})
  T.eq(#plain.calls, 3); T.eq(plain.answer, r.answer); T.eq(plain.spearman, nil)
end)

T.test("the common grader reads early rejection's pick with its own continuation, not a twin's", function()
  local grading = require "experiments.grading"
  -- Candidates 1 and 2 share their partial text; 2 is the pick (higher full mean). Its continuation (seed 10 + 1)
  -- ends in the gold 7, its twin's (seed 10, the first call whose prompt ends in that text) in 5.
  local cut = {finish = "length", text = "First, 3 + 4"}
  local line = {call = "selection.early_rejection{}", gold = 7,
    extra = {kept = {1, 2}, full_means = {-0.5, -0.2, -0.9}},
    calls = {
      {kind = "sample", n = 3, opts = {seed = 10}, outputs = {cut, cut, {finish = "length", text = "Hmm"}}},
      {kind = "generate", opts = {seed = 10}, prompt = "Q " .. cut.text, outputs = {{finish = "eos", text = " = 5."}}},
      {kind = "generate", opts = {seed = 11}, prompt = "Q " .. cut.text, outputs = {{finish = "eos", text = " = 7."}}},
    }}
  local g = grading.line(line)
  T.eq(g.answer, 7); T.eq(g.correct, true); T.eq(g.finished, true)
  T.eq(grading.early_candidate(line, 1), "First, 3 + 4 = 5.")
  T.eq(grading.early_candidate(line, 3), nil, "a cut candidate without its continuation")
end)

T.test("selection_report.lua: read-outs and surprisal picks from runner lines with known values", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/selection_report.lua"
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/results.jsonl", "w"))
  -- Four items. Greedy right on a and b. Read-outs: majority right on a, b, c; pass on all four; first on none.
  local function reads(first, majority, hi, lo, pass)
    return {first = {correct = first}, majority = {correct = majority}, max_logprob = {correct = hi},
            min_logprob = {correct = lo}, pass = {correct = pass}}
  end
  local rows = {
    {"a", true, reads(false, true, true, false, true)}, {"b", true, reads(false, true, false, false, true)},
    {"c", false, reads(false, true, true, false, true)}, {"d", false, reads(false, false, false, false, true)},
  }
  for i, r in ipairs(rows) do
    f:write(lm.json.encode({item = r[1], index = i, strategy = "greedy", correct = r[2]}), "\n")
    f:write(lm.json.encode({item = r[1], index = i, strategy = "bon8", correct = r[3].max_logprob.correct,
      extra = {readouts = r[3], samples = {{}, {}}}}), "\n")
  end
  -- Surprisal: item a has two correct samples (means -1 and -0.5), item b one (-2), item c none.
  f:write(lm.json.encode({item = "a", index = 1, strategy = "surprisal8", correct = true,
    extra = {picks = {least = 1, most = 2}, samples = {{mean = -1}, {mean = -0.5}}}}), "\n")
  f:write(lm.json.encode({item = "b", index = 2, strategy = "surprisal8", correct = true,
    extra = {picks = {least = 1, most = 1}, samples = {{mean = -2}}}}), "\n")
  f:write(lm.json.encode({item = "c", index = 3, strategy = "surprisal8", correct = false, extra = {picks = {}}}), "\n")
  f:close()
  local function report(args) return T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " " .. args) end
  local code, out = report("readouts " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("Read-outs of bon8's 2 samples per item on 4 items", 1, true), out)
  T.ok(out:find("| greedy | 0.500 [", 1, true), out)
  T.ok(out:find("| first sample | 0.000 [0.000, 0.000] | -0.500 [", 1, true), out)
  T.ok(out:find("| majority@N (self-consistency) | 0.750 [", 1, true) and out:find("| 1.000 | 1 / 0 |", 1, true), out)
  T.ok(out:find("| pass@N (oracle: any sample right) | 1.000 [1.000, 1.000] | +0.500 [", 1, true), out)
  code, out = report("surprisal " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("over 3 items", 1, true) and out:find("2 have a correct sample (the strategy's accuracy, 0.667, is pass@N)", 1, true), out)
  T.ok(out:find("| least confident (the primary pick) | 1.500 |", 1, true), out)     -- (1 + 2) / 2
  T.ok(out:find("| most confident | 1.250 |", 1, true), out)                        -- (0.5 + 2) / 2
  T.ok(out:find("The two picks differ on 1 of 2 items", 1, true), out)
  -- best_of_n's lines: the picks are made here from their sample sets (none of these samples is marked correct).
  code, out = report("surprisal " .. T.q(dir) .. " bon8")
  T.eq(code, 0, out)
  T.ok(out:find("over 4 items", 1, true) and out:find("0 have a correct sample", 1, true), out)
  code, out = report("readouts " .. T.q(dir) .. " bon8 nobody")
  T.eq(code, 2); T.ok(out:find("no baseline 'nobody'", 1, true), out)
  -- Retry histories: item a right in round 2 after a wrong 3; item b wrong three times, keeping 5 again in round 3
  -- when its draws offered nothing new.
  local rdir = T.tmpdir()
  local g = assert(io.open(rdir .. "/results.jsonl", "w"))
  g:write(lm.json.encode({item = "a", index = 1, strategy = "none", correct = true, extra = {history = {
    {answer = 3, answers = {3, 4}, correct = false}, {answer = 4, answers = {4, 3}, correct = true}}}}), "\n")
  g:write(lm.json.encode({item = "b", index = 2, strategy = "none", correct = false, extra = {history = {
    {answer = 5, answers = {5, 6}, correct = false}, {answer = 6, answers = {6, 5}, correct = false},
    {answer = 5, answers = {5, 6}, correct = false}}}}), "\n")
  g:close()
  code, out = report("retry " .. T.q(rdir))
  T.eq(code, 0, out)
  T.ok(out:find("| strategy | items | right within 1 | right within 2 | right within 3 |", 1, true), out)
  T.ok(out:find("| none | 2 | 0.000 | 0.500 | 0.500 | 3 | 1 (33%) | 1 (33%) |", 1, true), out)
  -- Early rejection with compare: three items of four candidates each (worked out by hand).
  local edir = T.tmpdir()
  f = assert(io.open(edir .. "/results.jsonl", "w"))
  local early = {
    {"a", true, {generated = 20, full_means = {-1, -0.5, -2, -0.1}, full_correct = {false, true, false, false},
                 full_tokens = {10, 10, 10, 10}, spearman = 0.5, best_kept = false}},
    {"b", false, {generated = 24, full_means = {-0.2, -1, -3, -4}, full_correct = {true, false, false, false},
                  full_tokens = {5, 6, 7, 8}, spearman = 1, best_kept = true}},
    {"c", false, {generated = 16, full_means = {-1, -1, -1, -1}, full_correct = {false, false, false, false},
                  full_tokens = {4, 4, 4, 4}, best_kept = false}},
  }
  for i, r in ipairs(early) do
    f:write(lm.json.encode({item = r[1], index = i, strategy = "early", correct = r[2], extra = r[3]}), "\n")
  end
  f:close()
  code, out = report("early " .. T.q(edir))
  T.eq(code, 0, out)
  T.ok(out:find("same 4 candidates finished in full, 3 items", 1, true), out)
  T.ok(out:find("| early | 0.333 [", 1, true) and out:find("| (baseline) | — | — | — | 20.0 |", 1, true), out)
  T.ok(out:find("| best of 1 | 0.333 [0.000, 1.000] | +0.000 [", 1, true) and out:find("| 1 / 1 | 6.3 |", 1, true), out)
  T.ok(out:find("| best of 2 | 0.667 [", 1, true) and out:find("| 1 / 0 | 13.0 |", 1, true), out)
  T.ok(out:find("| best of 4 | 0.333 [", 1, true) and out:find("| 1 / 1 | 27.3 |", 1, true), out)
  T.ok(not out:find("| best of 4 |.*| best of 4 |"), "k = N appears once")
  T.ok(out:find("| pass@4 (oracle: any candidate right) | 0.667 [", 1, true) and out:find("| 1 / 0 | — |", 1, true), out)
  T.ok(out:find("mean Spearman rho 0.750 over 2 items", 1, true) and out:find("on 1 of 3 items (33%)", 1, true), out)
  code, out = report("early " .. T.q(dir) .. " bon8")
  T.eq(code, 2); T.ok(out:find("run early_rejection with compare=true", 1, true), out)
  code, out = report("bogus " .. T.q(dir))
  T.eq(code, 2); T.ok(out:find("usage: selection_report.lua", 1, true), out)
end)

T.test("selection_report.lua: by template on arithmetic data, and by the common grader where it differs", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/selection_report.lua"
  local function report(args) return T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " " .. args) end
  local dir = T.tmpdir()
  -- Four arithmetic items (seed 1) whose lines carry no template: the report takes the generator's (run.json).
  local items = lm.tasks.arithmetic({n = 4, seed = 1})
  local templates = {}
  for _, it in ipairs(items) do templates[it.template] = true end
  local k = 0
  for _ in pairs(templates) do k = k + 1 end
  local f = assert(io.open(dir .. "/run.json", "w"))
  f:write(lm.json.encode({data = "arithmetic", seed = 1, n = 4, offset = 0, baseline = "greedy"}), "\n")
  f:close()
  f = assert(io.open(dir .. "/results.jsonl", "w"))
  -- Greedy right on items 1 and 2. bon8's two samples: "\boxed{gold} then 99999" (the last number is wrong, the
  -- common grader reads the boxed answer) and the gold alone; the read-outs as the strategy graded them.
  for i, it in ipairs(items) do
    local gold = it.answer
    f:write(lm.json.encode({item = it.id, index = i, strategy = "greedy", gold = gold, correct = i <= 2,
      call = "selection.self_consistency{}", calls = {{kind = "sample", n = 1,
        outputs = {{finish = "eos", text = tostring(i <= 2 and gold or 99999)}}}}}), "\n")
    f:write(lm.json.encode({item = it.id, index = i, strategy = "bon8", gold = gold, correct = true,
      call = 'selection.best_of_n{"readout":"max_logprob"}',
      calls = {{kind = "sample", n = 2, outputs = {{finish = "eos", text = ("\\boxed{%s} then 99999"):format(gold)},
                                                    {finish = "eos", text = tostring(gold)}}}},
      extra = {readouts = {first = {correct = false, index = 1}, majority = {correct = false},
                           max_logprob = {correct = true, index = 2}, min_logprob = {correct = false, index = 1},
                           pass = {correct = true}}}}), "\n")
  end
  f:close()
  local code, out = report("readouts " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find(("cluster bootstrap that resamples the %d templates"):format(k), 1, true), out)
  T.ok(out:find("| first sample | 0.000 [0.000, 0.000] | -0.500 [", 1, true), out)
  -- first, majority and lowest mean log-prob read again: right on every item (3 × 4 verdicts).
  T.ok(out:find("By the common final-answer grader", 1, true) and out:find("(12 verdicts differ", 1, true), out)
  local common = out:sub((out:find("By the common final-answer grader", 1, true)))
  T.ok(common:find("| first sample | 1.000 [1.000, 1.000] | +0.500 [", 1, true), common)
  T.ok(common:find("| majority@N (self-consistency) | 1.000 [", 1, true), common)
  T.ok(common:find("| lowest mean log-prob | 1.000 [", 1, true), common)
  -- Early rejection: the pick (candidate 2, which shares candidate 1's partial text) is right by the common grader
  -- only when read with its own continuation; the lines record every candidate wrong.
  local edir = T.tmpdir()
  f = assert(io.open(edir .. "/results.jsonl", "w"))
  local cut = {finish = "length", text = "First, 3 + 4"}
  for i = 1, 2 do
    f:write(lm.json.encode({item = "e" .. i, index = i, strategy = "early", gold = 7, correct = false,
      call = "selection.early_rejection{}",
      extra = {kept = {1, 2}, full_means = {-0.5, -0.2, -0.9}, full_correct = {false, false, false},
               full_tokens = {6, 6, 3}, generated = 12},
      calls = {
        {kind = "sample", n = 3, opts = {seed = 10}, outputs = {cut, cut, {finish = "eos", text = "It is 7."}}},
        {kind = "generate", opts = {seed = 10}, prompt = "Q " .. cut.text, outputs = {{finish = "eos", text = " = 5."}}},
        {kind = "generate", opts = {seed = 11}, prompt = "Q " .. cut.text, outputs = {{finish = "eos", text = " = 7."}}},
      }}), "\n")
  end
  f:close()
  code, out = report("early " .. T.q(edir))
  T.eq(code, 0, out)
  T.ok(out:find("| best of 2 | 0.000 [", 1, true), out)
  common = out:sub((out:find("By the common final-answer grader", 1, true) or #out))
  T.ok(common:find("| early | 1.000 [", 1, true) and common:find("| best of 1 | 0.000 [", 1, true), common)
  T.ok(common:find("| best of 2 | 1.000 [", 1, true) and common:find("| pass@3 (oracle: any candidate right) | 1.000 [", 1, true), common)
end)

T.test("experiments.lines: every seed set, deterministic arms in every set, per-item means and per-set accuracies", function()
  local lines = require "experiments.lines"
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/run.json", "w"))
  f:write(lm.json.encode({baseline = "g", seeds = 3, deterministic = {"g"}}), "\n")
  f:close()
  -- g: greedy, set 1 only (deterministic). s: item a in sets 1 and 2 (set 1's line without seed_set), b in set 1.
  f = assert(io.open(dir .. "/results.jsonl", "w"))
  for _, l in ipairs({
    {item = "a", index = 1, strategy = "g", seed_set = 1, correct = true},
    {item = "b", index = 2, strategy = "g", seed_set = 1, correct = false},
    {item = "a", index = 1, strategy = "s", correct = true},
    {item = "b", index = 2, strategy = "s", seed_set = 1, correct = true},
    {item = "a", index = 1, strategy = "s", seed_set = 2, correct = false},
  }) do f:write(lm.json.encode(l), "\n") end
  f:close()
  local died
  local function die(msg) died = msg; error(msg) end
  local run = lines.read(dir, die)
  T.eq(run.K, 3, "run.json's seeds, above the largest set")
  T.eq(table.concat(run.order, ","), "g,s")
  T.eq(run.by.s.a.correct, true, "by keeps set 1")
  T.eq(#run:of("s"), 2)
  T.ok(run.sets.g.a[3] == run.sets.g.a[1] and run.sets.g.b[2] == run.sets.g.b[1], "a deterministic arm is in every set")
  T.eq(run.sets.s.a[2].correct, false); T.eq(run.sets.s.a[3], nil); T.eq(run.sets.s.b[2], nil)
  local items = run:items("s")
  T.eq(#items, 2); T.eq(items[1].item, "a"); T.eq(items[2].item, "b")
  T.eq(run:items_label("s", items), "2 × 1.5"); T.eq(run:items_label("g", run:items("g")), "2 × 1 (deterministic)")
  local pool = run:pool()
  for _, name in ipairs({"s", "g"}) do
    for _, it in ipairs(run:items(name)) do
      for j = 1, run.K do if it.sets[j] then pool:add(name, it.item, j, it.sets[j].correct == true) end end
    end
  end
  local xs = pool:scores("s", items)
  T.eq(xs[1], 0.5); T.eq(xs[2], 1)
  local gs = pool:scores("g", items)
  T.eq(gs[1], 1); T.eq(gs[2], 0)
  local per_set, spread = pool:per_set("s", items)
  T.eq(#per_set, 2, "set 3 has no line of s")
  T.eq(per_set[1].accuracy, 1); T.eq(per_set[1].items, 2); T.eq(per_set[2].accuracy, 0); T.eq(per_set[2].items, 1)
  T.eq(spread.min, 0); T.eq(spread.max, 1)
  T.eq(lines.spread_text(spread), "0.000–1.000 (sd 0.707)")
  T.eq(lines.per_set_text(per_set), "1: 1.000, 2: 0.000")
  T.eq(lines.spread_text(nil), "—")
  -- Per-item means are numbers: the test is the sign-flip test, not McNemar's.
  T.eq(lines.compare(xs, gs).test, "sign-flip")
  T.ok(lines.method(nil, 3):find("^Seed sets: 3; an item's score is its mean over the sets it has"), lines.method(nil, 3))
  T.ok(lines.method(nil, 3):find("p: a sign-flip permutation test on the items' differences.", 1, true))
  T.eq(lines.method(nil), "Intervals: 95% bootstrap over items; p: McNemar's exact test on the items' right/wrong pairs.")
  -- Seed set 2 alone: a run of one set, the deterministic arm's set-1 lines standing for it.
  local two = lines.read(dir, die, 2)
  T.eq(two.K, 1)
  T.eq(#two:of("s"), 1); T.eq(two.by.s.a.correct, false); T.eq(#two:of("g"), 2)
  local p2 = two:pool()
  p2:add("s", "a", 1, false)
  T.eq(p2:score("s", "a"), false, "one set: the value as added")
  -- Without run.json: K is the largest set.
  os.remove(dir .. "/run.json")
  T.eq(lines.read(dir, die).K, 2)
  T.eq(died, nil)
end)

T.test("selection_report.lua with two seed sets: per-item means over the sets, each set's accuracy, sign-flip tests", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/selection_report.lua"
  local function report(args) return T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " " .. args) end
  local function write(dir, meta, rows)
    local f = assert(io.open(dir .. "/run.json", "w"))
    f:write(lm.json.encode(meta), "\n")
    f:close()
    f = assert(io.open(dir .. "/results.jsonl", "w"))
    for _, l in ipairs(rows) do f:write(lm.json.encode(l), "\n") end
    f:close()
  end
  -- Read-outs: greedy (deterministic, set 1 only) right on a and b. bon8's majority right on a, b, c in set 1 and
  -- on a in set 2: per item 1, 0.5, 0.5, 0 (0.5); pass on every item in set 1, on a and b in set 2 (0.75).
  local dir = T.tmpdir()
  local rows = {}
  local function reads(majority, pass)
    return {first = {correct = false}, majority = {correct = majority}, max_logprob = {correct = majority},
            min_logprob = {correct = false}, pass = {correct = pass}}
  end
  local set1 = {a = {true, true}, b = {true, true}, c = {true, true}, d = {false, true}}
  local set2 = {a = {true, true}, b = {false, true}, c = {false, false}, d = {false, false}}
  for i, id in ipairs({"a", "b", "c", "d"}) do
    rows[#rows + 1] = {item = id, index = i, strategy = "greedy", seed_set = 1, correct = i <= 2}
    for set, t in ipairs({set1, set2}) do
      rows[#rows + 1] = {item = id, index = i, strategy = "bon8", seed_set = set, correct = t[id][1],
                         extra = {readouts = reads(t[id][1], t[id][2]), samples = {{}, {}}}}
    end
  end
  write(dir, {baseline = "greedy", seeds = 2, deterministic = {"greedy"}}, rows)
  local code, out = report("readouts " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("on 4 items × 2 seed sets", 1, true) and out:find("(deterministic: its one line stands for every set)", 1, true), out)
  T.ok(out:find("| read-out | accuracy [95% CI] | seed-set spread | Δ vs greedy [95% CI] |", 1, true), out)
  T.ok(out:find("| greedy | 0.500 [0.000, 1.000] | 0.500–0.500 (sd 0.000) | (baseline) |", 1, true), out)
  -- majority − greedy per item: 0, −0.5, +0.5, 0.
  T.ok(out:find("| majority@N (self-consistency) | 0.500 [", 1, true)
    and out:find("| 0.250–0.750 (sd 0.354) | +0.000 [", 1, true) and out:find("| 1.000 | 1.000 | 1 / 1 |", 1, true), out)
  T.ok(out:find("| pass@N (oracle: any sample right) | 0.750 [", 1, true), out)
  T.ok(out:find("- majority@N (self-consistency): 1: 0.750, 2: 0.250", 1, true), out)
  T.ok(out:find("- pass@N (oracle: any sample right): 1: 1.000, 2: 0.500", 1, true), out)
  T.ok(out:find("Seed sets: 2; an item's score is its mean over the sets it has", 1, true)
    and out:find("p: a sign-flip permutation test on the items' differences.", 1, true), out)
  T.ok(not out:find("McNemar", 1, true), out)
  -- Surprisal: item a has correct samples in both sets (least 1 and 2, most 0.5 and 2), b in set 2 (0.5), c in none.
  local sdir = T.tmpdir()
  write(sdir, {seeds = 2}, {
    {item = "a", index = 1, strategy = "surprisal8", seed_set = 1, correct = true,
     extra = {picks = {least = 1, most = 2}, samples = {{mean = -1}, {mean = -0.5}}}},
    {item = "a", index = 1, strategy = "surprisal8", seed_set = 2, correct = true,
     extra = {picks = {least = 1, most = 1}, samples = {{mean = -2}}}},
    {item = "b", index = 2, strategy = "surprisal8", seed_set = 1, correct = false, extra = {picks = {}}},
    {item = "b", index = 2, strategy = "surprisal8", seed_set = 2, correct = true,
     extra = {picks = {least = 1, most = 1}, samples = {{mean = -0.5}}}},
    {item = "c", index = 3, strategy = "surprisal8", seed_set = 1, correct = false, extra = {picks = {}}},
    {item = "c", index = 3, strategy = "surprisal8", seed_set = 2, correct = false, extra = {picks = {}}},
  })
  code, out = report("surprisal " .. T.q(sdir))
  T.eq(code, 0, out)
  T.ok(out:find("over 3 items × 2 seed sets", 1, true) and out:find("3 of the 6 item runs have a correct sample, on 2 items", 1, true)
    and out:find("0.500, is pass@N; per seed set 1: 0.333, 2: 0.667", 1, true), out)
  T.ok(out:find("| least confident (the primary pick) | 1.000 |", 1, true), out)     -- ((1 + 2) / 2 + 0.5) / 2
  T.ok(out:find("| most confident | 0.875 |", 1, true), out)                        -- ((0.5 + 2) / 2 + 0.5) / 2
  T.ok(out:find("The two picks differ on 1 of 3 item runs with a correct sample", 1, true), out)
  -- Retries: a right in round 2 (set 1) and round 1 (set 2); b never (set 1, keeping 5 again when nothing was
  -- new) and in round 3 (set 2).
  local rdir = T.tmpdir()
  write(rdir, {seeds = 2}, {
    {item = "a", index = 1, strategy = "none", seed_set = 1, extra = {history = {
      {answer = 3, answers = {3, 4}, correct = false}, {answer = 4, answers = {4, 3}, correct = true}}}},
    {item = "a", index = 1, strategy = "none", seed_set = 2, extra = {history = {
      {answer = 4, answers = {4}, correct = true}}}},
    {item = "b", index = 2, strategy = "none", seed_set = 1, extra = {history = {
      {answer = 5, answers = {5, 6}, correct = false}, {answer = 6, answers = {6, 5}, correct = false},
      {answer = 5, answers = {5, 6}, correct = false}}}},
    {item = "b", index = 2, strategy = "none", seed_set = 2, extra = {history = {
      {answer = 5, answers = {5}, correct = false}, {answer = 6, answers = {6}, correct = false},
      {answer = 7, answers = {7}, correct = true}}}},
  })
  code, out = report("retry " .. T.q(rdir))
  T.eq(code, 0, out)
  T.ok(out:find("(2 seed sets: right within k is the mean over items", 1, true), out)
  T.ok(out:find("| none | 2 × 2.0 | 0.250 | 0.500 | 0.750 | 5 | 1 (20%) | 1 (20%) |", 1, true), out)
  T.ok(out:find("- none: 1: 0.500, 2: 1.000; spread 0.500–1.000 (sd 0.354)", 1, true), out)
  -- Early rejection, two candidates: item a right in set 1 (its best full candidate, the second, is right), wrong
  -- in set 2; b the reverse.
  local edir = T.tmpdir()
  local function early(id, i, set, correct, e)
    return {item = id, index = i, strategy = "early", seed_set = set, correct = correct, extra = e}
  end
  write(edir, {seeds = 2}, {
    early("a", 1, 1, true, {generated = 20, full_means = {-1, -0.5}, full_correct = {false, true},
                            full_tokens = {10, 10}, spearman = 1, best_kept = true}),
    early("a", 1, 2, false, {generated = 10, full_means = {-0.2, -1}, full_correct = {false, true},
                             full_tokens = {5, 5}, spearman = 0, best_kept = false}),
    early("b", 2, 1, false, {generated = 8, full_means = {-1, -1}, full_correct = {false, false},
                             full_tokens = {4, 4}, best_kept = false}),
    early("b", 2, 2, true, {generated = 12, full_means = {-1, -2}, full_correct = {true, false},
                            full_tokens = {7, 7}, spearman = 0.5, best_kept = true}),
  })
  code, out = report("early " .. T.q(edir))
  T.eq(code, 0, out)
  T.ok(out:find("same 2 candidates finished in full, 2 items × 2 seed sets", 1, true), out)
  T.ok(out:find("| early | 0.500 [", 1, true) and out:find("| 0.500–0.500 (sd 0.000) | (baseline) | — | — | — | 12.5 |", 1, true), out)
  -- best of 1 per item 0 and 0.5 (−0.5 and 0 against early); best of 2 per item 0.5 and 0.5; pass 1 and 0.5.
  T.ok(out:find("| best of 1 | 0.250 [", 1, true) and out:find("| -0.250 [", 1, true) and out:find("| 0 / 1 | 6.5 |", 1, true), out)
  T.ok(out:find("| best of 2 | 0.500 [", 1, true) and out:find("| 13.0 |", 1, true), out)
  T.ok(out:find("| pass@2 (oracle: any candidate right) | 0.750 [", 1, true), out)
  T.ok(out:find("- pass@2 (oracle: any candidate right): 1: 0.500, 2: 1.000", 1, true), out)
  T.ok(out:find("mean Spearman rho 0.500 over 3 item runs", 1, true) and out:find("on 2 of 4 item runs (50%)", 1, true), out)
end)

T.test("selection_report.lua surprisal: sample sets too large for the line come from the run store", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/selection_report.lua"
  local dir, store = T.tmpdir(), os.tmpname()
  os.remove(store)
  -- A child draws best_of_n's samples with the store on, labelled as run.lua labels them, and writes the line as
  -- run.lua does when the sample set is too large for it: read-outs kept, samples and scores dropped. The gold
  -- answer is 7, which SmolLM2 gives in some of these samples (a wrong sum, but the report's figures need a
  -- correct sample to show).
  local child = dir .. "/draw.lua"
  local f = assert(io.open(child, "w"))
  f:write([=[
local sel = require "strategies.selection"
local dir, fake = arg[1], arg[2] == "tamper"
local item = {id = "a", question = "Tom has 12 apples and buys 7 more. How many apples does he have now?", answer = "7"}
local r = lm.store.with({experiment = dir, item = "a", strategy = "bon8"}, sel.best_of_n, lm.model, item,
                        {n = 4, max_tokens = 20, seed = 3})
if fake then r.readouts.max_logprob.index = r.readouts.max_logprob.index % 4 + 1 end
local out = assert(io.open(dir .. "/results.jsonl", "w"))
out:write(lm.json.encode({item = "a", index = 1, strategy = "bon8", gold = "7", correct = r.correct,
  extra = {readouts = r.readouts}, dropped = {"samples", "scores"}}), "\n")
out:close()
local p = sel.surprisal_pick(r.samples)
print(("means %.6f %.6f any %s"):format(p.least and -r.samples[p.least].mean or -1,
  p.most and -r.samples[p.most].mean or -1, tostring(r.readouts.pass.correct)))
]=])
  f:close()
  local env = "REFRAIN_STORE=" .. T.q(store) .. " "
  local exe = T.q(lm.executable()) .. " run --model " .. T.q(lm.model.info.path) .. " "
  local code, drawn = T.sh(env .. exe .. T.q(child) .. " " .. T.q(dir))
  T.eq(code, 0, drawn)
  local least, most, any = drawn:match("means ([%d.%-]+) ([%d.%-]+) any (%a+)")
  T.ok(least, drawn)
  local function report(args) return T.sh(env .. T.q(lm.executable()) .. " run " .. T.q(script) .. " " .. args) end
  local out
  code, out = report("surprisal " .. T.q(dir) .. " bon8")
  T.eq(code, 0, out)
  T.ok(out:find("The sample sets of 1 of these lines come from the run store (experiment " .. dir .. ")", 1, true), out)
  T.eq(any, "true", "some sample is right: " .. drawn)
  T.ok(out:find("over 1 items", 1, true) and out:find("1 have a correct sample", 1, true), out)
  T.ok(out:find(("| least confident (the primary pick) | %.3f |"):format(tonumber(least)), 1, true), out)
  T.ok(out:find(("| most confident | %.3f |"):format(tonumber(most)), 1, true), out)
  -- Another experiment name finds no call: a one-line error, not an empty report.
  code, out = report("surprisal " .. T.q(dir) .. " bon8 --experiment elsewhere")
  T.eq(code, 2); T.ok(out:find("item a of 'bon8': its sample set was too large for the line, and the run store has "
    .. "no sample call for it under experiment elsewhere", 1, true), out)
  -- A line whose read-outs the stored samples do not give is refused.
  code, drawn = T.sh(env .. exe .. T.q(child) .. " " .. T.q(dir) .. " tamper")
  T.eq(code, 0, drawn)
  code, out = report("surprisal " .. T.q(dir) .. " bon8")
  T.eq(code, 2); T.ok(out:find("does not give the line's read-out 'max_logprob'", 1, true), out)
  os.remove(store); os.remove(store .. "-wal"); os.remove(store .. "-shm")
end)

T.done()
