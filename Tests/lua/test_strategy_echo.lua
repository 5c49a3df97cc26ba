-- strategies.echo on the default model (greedy, small budgets): the calls each condition makes and their budgets,
-- the strings it injects, echo detection and the two removers on hand-written traces, and ΔL against scores
-- computed here. Run as: refrain run test_strategy_echo.lua (REFRAIN_SCRIPTS, if set, must be the real scripts/).
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local echo = require "strategies.echo"
local m = lm.model

local extract, verify = T.last_integer, T.same_number
local Q, ITEM = T.QUESTION, T.ITEM
local PROMPT = m:template({{role = "user", content = Q}})
local P = echo.phrases
local OPTS = {b1 = 8, budget = 20, extract = extract, verify = verify}

local function labels(r)
  local out = {}
  for i, x in ipairs(r.injected) do out[i] = x.label .. "@" .. x.call end
  return table.concat(out, " ")
end

local function budget_of(r)
  local n = 0
  for _, c in ipairs(r.calls) do n = n + c.opts.max_tokens end
  return n
end

T.test("echoic: first chunk, then reminder + question + cue, then the rest of the budget", function()
  local r = echo.echoic(m, ITEM, OPTS)
  T.eq(r.strategy, "echo.echoic"); T.eq(r.item, "tom"); T.eq(r.condition, "echoic")
  T.eq(#r.calls, 2); T.eq(r.tokens.calls, 2)
  T.eq(r.calls[1].kind, "generate"); T.eq(r.calls[2].kind, "generate")
  T.eq(r.calls[1].prompt, PROMPT)
  T.eq(r.calls[1].opts.max_tokens, 8); T.eq(r.calls[2].opts.max_tokens, 12); T.eq(r.calls[1].opts.temperature, 0)
  local greedy = m:generate(PROMPT, {max_tokens = 8, temperature = 0}).text
  T.eq(r.first, greedy, "the first chunk is the greedy one")
  T.eq(r.calls[2].prompt, PROMPT .. greedy .. "\n" .. P.reminder .. " " .. Q .. "\n" .. P.cue)
  T.eq(labels(r), "ask@1 reminder@2 question@2 cue@2")
  T.eq(r.injected[2].text, P.reminder); T.eq(r.injected[3].text, Q); T.eq(r.injected[4].text, P.cue)
  T.eq(r.continuation, r.calls[2].outputs[1].text)
  T.eq(r.generated, r.tokens.completion); T.ok(r.generated <= 20 and r.generated > 8, tostring(r.generated))
  local want = extract(r.continuation) or extract(r.first)
  T.eq(r.answer, want, "the answer is read from the continuation first")
  T.eq(r.correct, want ~= nil and want == 19)
end)

T.test("baselines: same split or same budget, and what each injects", function()
  local cont = echo.continuation(m, ITEM, OPTS)
  T.eq(#cont.calls, 2); T.eq(labels(cont), "ask@1")
  T.eq(cont.calls[2].prompt, PROMPT .. cont.first)
  local fill = echo.filler(m, ITEM, OPTS)
  T.eq(labels(fill), "ask@1 filler@2"); T.eq(fill.injected[2].text, "Hmm,")
  T.eq(fill.calls[2].prompt, PROMPT .. fill.first .. "\nHmm,")
  local one = echo.single(m, ITEM, OPTS)
  T.eq(#one.calls, 1); T.eq(one.calls[1].opts.max_tokens, 20); T.eq(labels(one), "ask@1")
  T.eq(one.continuation, m:generate(PROMPT, {max_tokens = 20, temperature = 0}).text)
  for _, r in ipairs({cont, fill, one}) do
    T.eq(budget_of(r), 20, r.condition .. " has the echoic budget")
    T.ok(r.tokens.completion <= 20, r.condition)
  end
  T.eq(cont.first, fill.first, "the conditions share their first chunk")
  T.err(function() echo.echoic(m, ITEM, {b1 = 20, budget = 20, extract = extract}) end, "0 < b1 < budget")
end)

T.test("without opts.extract / opts.verify: lm.extract.number and lm.verify.numeric", function()
  local r = echo.single(m, ITEM, {budget = 20})
  T.eq(r.answer, lm.extract.number(r.continuation))
  T.eq(r.correct, r.answer ~= nil and lm.verify.numeric(r.answer, "19"))
  local g = echo.likelihood_gap(m, ITEM, {trace = "Adding, 12 + 7 = 19.0 apples"})
  T.eq(g.answer, 19); T.eq(g.correct, true)
end)

T.test("phrases from a table and from a file", function()
  local r = echo.echoic(m, ITEM, {b1 = 4, budget = 6, extract = extract, verify = verify,
                                  phrases = {reminder = "Re-read:", cue = "So"}})
  T.eq(r.injected[2].text, "Re-read:"); T.eq(r.injected[4].text, "So")
  T.ok(r.calls[2].prompt:find("\nRe-read: " .. Q .. "\nSo", 1, true))
  local path = os.tmpname()
  local f = assert(io.open(path, "w")); f:write('return {filler = "So,"}'); f:close()
  local s = echo.filler(m, ITEM, {b1 = 4, budget = 6, extract = extract, verify = verify, phrases = path})
  os.remove(path)
  T.eq(s.injected[2].text, "So,")
  T.err(function() echo.single(m, ITEM, {phrases = {remindr = "x"}}) end, "unknown key 'remindr'")
end)

T.test("causal: a failed trace cut at half, continued with and without the reminder on the same seeds", function()
  local wrong = {id = "w", question = Q, answer = "-1"}
  local o = {budget = 16, samples = 2, seed = 5, extract = extract, verify = verify}
  local a = echo.causal(m, wrong, o)
  local trace = m:generate(PROMPT, {max_tokens = 16, temperature = 0})
  T.eq(a.trace, trace.text); T.eq(a.cut, #trace.ids // 2)
  T.eq(#a.calls, 2); T.eq(a.calls[2].kind, "sample"); T.eq(a.calls[2].n, 2)
  local so = a.calls[2].opts
  T.eq(so.temperature, 0.7); T.eq(so.top_p, 0.9); T.eq(so.seed, 5); T.eq(so.max_tokens, 16 - a.cut)
  local half = m:detokenize(table.move(trace.ids, 1, a.cut, 1, {}))
  T.eq(a.calls[2].prompt, PROMPT .. half .. "\n" .. P.reminder .. " " .. Q .. "\n" .. P.cue)
  T.eq(#a.calls[2].outputs, 2); T.eq(a.accuracy, 0); T.eq(a.correct, false)
  for i = 1, 2 do T.eq(a.answers[i], extract(a.calls[2].outputs[i].text)) end
  local b = echo.causal(m, wrong, {budget = 16, samples = 2, seed = 5, reminder = false, extract = extract, verify = verify})
  T.eq(b.strategy, "echo.causal_plain"); T.eq(b.calls[2].prompt, PROMPT .. half)
  T.eq(labels(b), "ask@1"); T.eq(b.calls[2].opts.seed, 5)
  local direct = m:sample(PROMPT .. half, 2, {max_tokens = 16 - a.cut, temperature = 0.7, top_p = 0.9, seed = 5})
  T.eq(b.answers[2], extract(direct[2].text))
  local ok = echo.causal(m, wrong, {budget = 16, extract = extract, verify = function() return true end})
  T.eq(ok.skipped, true); T.eq(#ok.calls, 1); T.eq(ok.correct, nil)
end)

T.test("echo detection on hand-written traces", function()
  T.eq(echo.overlap(Q, "Tom buys more pears today."), 0.6)   -- tom, buys, more of 5 words
  T.eq(echo.overlap(Q, "Tom buys pears today."), 0.5)
  T.eq(echo.overlap(Q, "..."), 0)
  local d = echo.detect(Q, "Tom has 12 apples and buys 7 more apples. Tom buys more pears today. Adding gives 19.")
  T.eq(d.echo, true); T.eq(d.count, 2); T.eq(#d.sentences, 3)
  T.eq(d.sentences[1].overlap, 1); T.eq(d.sentences[3].echo, false)
  local late = echo.detect(Q, "First add the numbers. Tom has 12 apples and buys 7 more.")
  T.eq(late.echo, false, "an echo must open the trace"); T.eq(late.count, 0)
  T.eq(echo.detect(Q, "Tom buys pears today. Tom has 12 apples.").echo, false, "0.5 is below the threshold")
  T.eq(echo.detect(Q, "Tom buys pears today.", {threshold = 0.5}).echo, true)
  local dec = echo.detect(Q, "He pays 3.5 dollars for 7 apples. Then more.")
  T.eq(#dec.sentences, 2, "3.5 does not end a sentence"); T.eq(dec.sentences[1].text, "He pays 3.5 dollars for 7 apples.")
  local h = echo.detect(Q, "Copy the problem statement:\nTom has 12 apples and buys 7 more. Adding gives 19.")
  T.eq(h.echo, true, "a heading line before the echo"); T.eq(h.heading, true); T.eq(h.count, 1)
  T.eq(h.sentences[1].echo, true); T.eq(h.sentences[3].echo, false)
  local nh = echo.detect(Q, "Solution:\nAdding gives 19. Tom has 12 apples and buys 7 more.")
  T.eq(nh.echo, false, "a heading alone is no echo"); T.eq(nh.heading, false); T.eq(nh.sentences[1].echo, false)
  T.eq(echo.detect(Q, "Here is how I would solve this problem step by step:\nTom has 12 apples.").heading, false,
       "more than six words is not a heading")
end)

T.test("the two removers", function()
  local y = "Tom has 12 apples and buys 7 more.\nWe add 12 and 7 to get 19 in all. Tom has 19 apples now. All is done."
  T.eq(echo.trim_prefix(Q, y), "We add 12 and 7 to get 19 in all. Tom has 19 apples now. All is done.")
  T.eq(echo.trim_heavy(Q, y), "We add 12 and 7 to get 19 in all. ", "every echo sentence and every short one goes")
  T.eq(echo.trim_prefix(Q, "No echo here at all. Tom has 12 apples."), "No echo here at all. Tom has 12 apples.")
  T.eq(echo.trim_prefix(Q, "Problem:\nTom has 12 apples and buys 7 more.\n\nAdding gives 19."), "Adding gives 19.",
       "the heading goes with the echo")
end)

T.test("likelihood gap: ΔL and its variants equal what two m:score calls give", function()
  local y = "Tom has 12 apples and buys 7 more. Adding gives 12 + 7 = 19.\nTom has 19 apples now."
  local r = echo.likelihood_gap(m, ITEM, {trace = y, extract = extract, verify = verify})
  T.eq(r.echo, true); T.eq(r.echo_sentences, 1); T.eq(r.answer, 19); T.eq(r.correct, true)
  local y_trim = "Adding gives 12 + 7 = 19.\nTom has 19 apples now."
  T.eq(r.prefix.trimmed, y_trim)
  local full, trim = m:score(PROMPT, y), m:score(PROMPT, y_trim)
  T.ok(math.abs(r.prefix.delta - (full.mean - trim.mean)) < 1e-9, "delta")
  T.ok(math.abs(r.prefix.sum - (full.sum - trim.sum)) < 1e-9, "sum")
  T.eq(r.prefix.removed, #full.ids - #trim.ids)
  T.ok(math.abs(r.prefix.per_removed - (full.sum - trim.sum) / (#full.ids - #trim.ids)) < 1e-9, "per removed token")
  -- the suffix-only gap, computed here: the longest common token suffix, then the two means over it
  local k = 0
  while full.ids[#full.ids - k] == trim.ids[#trim.ids - k] and k < #trim.ids do k = k + 1 end
  local a, b = 0, 0
  for i = 1, k do a = a + full.logprobs[#full.logprobs - i + 1]; b = b + trim.logprobs[#trim.logprobs - i + 1] end
  T.eq(r.prefix.suffix_tokens, k); T.ok(k > 5 and k < #trim.ids + 1, tostring(k))
  T.ok(math.abs(r.prefix.suffix - (a / k - b / k)) < 1e-9, "suffix")
  T.eq(r.heavy and r.heavy.trimmed, "Adding gives 12 + 7 = 19.\n", "the heavier remover is scored too")
  local kinds = {}
  for _, c in ipairs(r.calls) do kinds[#kinds + 1] = c.kind end
  T.eq(table.concat(kinds, ","), "score,score,score,score", "no generation when the trace is given")
  T.eq(r.tokens.scored, 2 * #full.ids + #trim.ids + #m:tokenize(r.heavy.trimmed, {bos = false}))
  local none = echo.likelihood_gap(m, ITEM, {trace = "We add 12 and 7 to get 19 in all.", extract = extract, verify = verify})
  T.eq(none.echo, false); T.eq(none.prefix, nil); T.eq(#none.calls, 0)
end)

T.test("likelihood gap on a generated trace, and the summary by correct/wrong", function()
  local r = echo.likelihood_gap(m, ITEM, {budget = 24, extract = extract, verify = verify})
  T.eq(r.calls[1].kind, "generate"); T.eq(r.calls[1].opts.max_tokens, 24)
  T.eq(r.trace, m:generate(PROMPT, {max_tokens = 24, temperature = 0}).text)
  T.eq(r.echo, echo.detect(Q, r.trace).echo)
  local s = echo.gap_summary({
    {correct = true, echo = true, prefix = {delta = 1, sum = 4, per_removed = 0.5, suffix = -1}},
    {correct = true, echo = true, prefix = {delta = 3, sum = 2, per_removed = 1.5, suffix = 1}},
    {correct = true, echo = false},
    {correct = false, echo = true, prefix = {delta = -2, sum = 6, per_removed = 2}},
  })
  T.eq(s.correct.n, 3); T.eq(s.correct.gaps, 2); T.eq(s.correct.delta, 2); T.eq(s.correct.sum, 3)
  T.eq(s.correct.per_removed, 1); T.eq(s.correct.suffix, 0); T.ok(math.abs(s.correct.echo_rate - 2 / 3) < 1e-12)
  T.eq(s.wrong.n, 1); T.eq(s.wrong.delta, -2); T.eq(s.wrong.suffix, nil); T.eq(s.wrong.echo_rate, 1)
end)

T.test("echo_report.lua: the ΔL and causal reports from runner lines with known values", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/echo_report.lua"
  local dir = T.tmpdir()
  local function write(lines)
    local f = assert(io.open(dir .. "/results.jsonl", "w"))
    for _, l in ipairs(lines) do f:write(lm.json.encode(l), "\n") end
    f:close()
  end
  local function report(args)
    return T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " " .. args)
  end
  -- ΔL: two correct traces (ΔL 1 and 3), two wrong (-2 and 0.5), one correct trace the remover left alone.
  write({
    {item = "a", index = 1, strategy = "gap", call = "echo.likelihood_gap{}", correct = true,
     extra = {echo = true, prefix = {delta = 1, sum = 4, per_removed = 0.5, suffix = -1}}},
    {item = "b", index = 2, strategy = "gap", call = "echo.likelihood_gap{}", correct = true,
     extra = {echo = true, prefix = {delta = 3, sum = 2, per_removed = 1.5, suffix = 1}}},
    {item = "c", index = 3, strategy = "gap", call = "echo.likelihood_gap{}", correct = true, extra = {echo = false}},
    {item = "d", index = 4, strategy = "gap", call = "echo.likelihood_gap{}", correct = false,
     extra = {echo = true, prefix = {delta = -2, sum = 6, per_removed = 2}}},
    {item = "e", index = 5, strategy = "gap", call = "echo.likelihood_gap{}", correct = false,
     extra = {echo = true, prefix = {delta = 0.5, sum = 1, per_removed = 1}}},
  })
  local code, out = report("gap " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("| correct | 3 | 0.67 | 2 | 2.000 | 3.000 | 1.000 | 0.000 |", 1, true), out)
  T.ok(out:find("| wrong | 2 | 1.00 | 2 | -0.750 | 3.500 | 1.500 | – |", 1, true), out)
  -- Every correct ΔL (1, 3) is above every wrong one (-2, 0.5): AUC 1.
  T.ok(out:find("ΔL per token as a score for a correct trace: AUC 1.000 (2 correct, 2 wrong)", 1, true), out)
  -- Per removed token the correct ones (0.5, 1.5) beat a wrong one (2, 1) in one pair of four.
  T.ok(out:find("the gap per removed token as a score for a correct trace: AUC 0.250 (2 correct, 2 wrong)", 1, true), out)
  T.ok(out:find("No AUC for ΔL per token: 0 correct and 0 wrong traces were changed by the remover.", 1, true), out)
  -- Causal: item x failed and was continued in both conditions, y only with the reminder's line skipped.
  write({
    {item = "x", index = 1, strategy = "plain", correct = false, extra = {accuracy = 0.25, answers = {1, 2, 3, 4}}},
    {item = "x", index = 1, strategy = "reminder", correct = true, extra = {accuracy = 0.75, answers = {1, 2, 3, 4}}},
    {item = "y", index = 2, strategy = "plain", correct = false, extra = {skipped = true}},
    {item = "y", index = 2, strategy = "reminder", correct = false, extra = {skipped = true}},
    {item = "z", index = 3, strategy = "plain", correct = true, extra = {accuracy = 0.5, answers = {1, 2, 3, 4}}},
    {item = "z", index = 3, strategy = "reminder", correct = true, extra = {accuracy = 0.5, answers = {1, 2, 3, 4}}},
  })
  code, out = report("causal " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("2 failed traces continued in both conditions, 1 skipped", 1, true), out)
  T.ok(out:find("| with the reminder | 0.625 | 2/2 |", 1, true), out)
  T.ok(out:find("| without | 0.375 | 1/2 |", 1, true), out)
  T.ok(out:find("Paired difference (with − without), 4 continuations per trace: +0.250", 1, true), out)
  T.ok(out:find("better with the reminder 1, worse 0, equal 1", 1, true), out)
  T.ok(out:find("McNemar on the first continuation: 1/0 discordant, p = 1.000 (exact).", 1, true), out)
  T.ok(out:find("The lines do not hold every continuation's text", 1, true), out)
  -- With the continuations' texts (gold 7): with the reminder both are right, one cut at the limit with 7 last;
  -- without it, neither. The gap's trace "\boxed{7} ... 3" is wrong by its last number, right by the common grader.
  local function conts(a, b) return {{kind = "generate", outputs = {{finish = "length", text = "trace"}}},
                                     {kind = "sample", n = 2, outputs = {a, b}}} end
  write({
    {item = "x", index = 1, strategy = "plain", gold = 7, call = "echo.causal{}", correct = false,
     extra = {accuracy = 0, answers = {5, 9}},
     calls = conts({finish = "length", text = "so 5"}, {finish = "eos", text = "It is 9."})},
    {item = "x", index = 1, strategy = "reminder", gold = 7, call = "echo.causal{}", correct = true,
     extra = {accuracy = 1, answers = {7, 7}},
     calls = conts({finish = "eos", text = "The answer is 7."}, {finish = "length", text = "3 + 4 = 7"})},
  })
  code, out = report("causal " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("| with the reminder | 2/2 (1.000) | 1/2 (0.500) | 1/1 |", 1, true), out)
  T.ok(out:find("| without | 0/2 (0.000) | 0/2 (0.000) | 0/1 |", 1, true), out)
  T.ok(out:find("Right and ended within the budget, paired (with − without): +0.500", 1, true), out)
  write({
    {item = "a", index = 1, strategy = "gap", call = "echo.likelihood_gap{}", gold = 7, correct = false,
     calls = {{kind = "generate", outputs = {{finish = "eos", text = "So \\boxed{7} in 3 days."}}}},
     extra = {echo = true, prefix = {delta = 1, sum = 4, per_removed = 0.5, suffix = -1}}},
    {item = "b", index = 2, strategy = "gap", call = "echo.likelihood_gap{}", gold = 7, correct = false,
     calls = {{kind = "generate", outputs = {{finish = "eos", text = "It is 8."}}}},
     extra = {echo = true, prefix = {delta = 3, sum = 2, per_removed = 1.5, suffix = 1}}},
  })
  code, out = report("gap " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("| wrong | 2 | 1.00 | 2 | 2.000 |", 1, true), out)
  T.ok(out:find("which grades 1 trace otherwise (a)", 1, true), out)
  T.ok(out:find("| correct | 1 | 1.00 | 1 | 1.000 |", 1, true) and out:find("| wrong | 1 | 1.00 | 1 | 3.000 |", 1, true), out)
  code, out = report("causal " .. T.q(dir) .. " with without")
  T.eq(code, 2); T.ok(out:find("no lines of strategy 'with'", 1, true), out)
  code, out = report("gap /nonexistent")
  T.eq(code, 2); T.ok(out:find("echo_report: cannot read /nonexistent/results.jsonl", 1, true), out)
end)

T.test("echo_report.lua with two seed sets: causal pairs within each set, an item's mean over its sets", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/echo_report.lua"
  local dir = T.tmpdir()
  local function write(lines)
    local f = assert(io.open(dir .. "/run.json", "w"))
    f:write(lm.json.encode({baseline = "plain", seeds = 2}), "\n")
    f:close()
    f = assert(io.open(dir .. "/results.jsonl", "w"))
    for _, l in ipairs(lines) do f:write(lm.json.encode(l), "\n") end
    f:close()
  end
  local function report(args) return T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " " .. args) end
  local function line(id, i, name, set, correct, extra)
    return {item = id, index = i, strategy = name, seed_set = set, correct = correct, extra = extra}
  end
  -- x continued in both sets (with the reminder 0.75 and 0.75, without 0.25 and 0.25); y in set 2 only (0.5 and
  -- 0.25); z skipped in both. Per item: with 0.75 and 0.5 (0.625), without 0.25 and 0.25; the first continuation
  -- right with the reminder: x in both sets, y not (1 and 0: 0.5); without: x in set 2 (0.5 and 0: 0.25).
  local four = {1, 2, 3, 4}
  write({
    line("x", 1, "plain", 1, false, {accuracy = 0.25, answers = four}),
    line("x", 1, "reminder", 1, true, {accuracy = 0.75, answers = four}),
    line("x", 1, "plain", 2, true, {accuracy = 0.25, answers = four}),
    line("x", 1, "reminder", 2, true, {accuracy = 0.75, answers = four}),
    line("y", 2, "plain", 1, false, {skipped = true}),
    line("y", 2, "reminder", 1, false, {skipped = true}),
    line("y", 2, "plain", 2, false, {accuracy = 0.25, answers = four}),
    line("y", 2, "reminder", 2, false, {accuracy = 0.5, answers = four}),
    line("z", 3, "plain", 1, true, {skipped = true}),
    line("z", 3, "reminder", 1, true, {skipped = true}),
    line("z", 3, "plain", 2, true, {skipped = true}),
    line("z", 3, "reminder", 2, true, {skipped = true}),
  })
  local code, out = report("causal " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("over 3 items × 2 seed sets", 1, true)
    and out:find("2 failed traces continued in both conditions (3 item runs, paired within their seed set), 1 skipped", 1, true), out)
  T.ok(out:find("| with the reminder | 0.625 | 0.500 | 0.625–0.750 (sd 0.088) |", 1, true), out)
  T.ok(out:find("| without | 0.250 | 0.250 | 0.250–0.250 (sd 0.000) |", 1, true), out)
  T.ok(out:find("- with the reminder: 1: 0.750, 2: 0.625; 1: 1.000, 2: 0.500", 1, true), out)
  T.ok(out:find("- without: 1: 0.250, 2: 0.250; 1: 0.000, 2: 0.500", 1, true), out)
  T.ok(out:find("4 continuations per trace: +0.375", 1, true) and out:find("better with the reminder 2, worse 0, equal 0; sign-flip test p = ", 1, true), out)
  T.ok(out:find("Sign-flip test on the first continuation: items better 1, worse 0 (each item's share of sets)", 1, true), out)
  T.ok(out:find("Seed sets: 2; an item's score is its mean over the sets it has", 1, true), out)
  -- ΔL: the traces of both sets, each its own case: a correct in both (ΔL 1 and 3), b wrong in both (−2 and 0.5).
  local function gap(id, i, set, correct, delta)
    return line(id, i, "gap", set, correct, {echo = true, prefix = {delta = delta, sum = 1, per_removed = 1}})
  end
  write({gap("a", 1, 1, true, 1), gap("b", 2, 1, false, -2), gap("a", 1, 2, true, 3), gap("b", 2, 2, false, 0.5)})
  code, out = report("gap " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("ΔL over 4 traces", 1, true) and out:find("The traces of 2 items × 2 seed sets", 1, true)
    and out:find("Share of correct traces per seed set: 1: 0.500, 2: 0.500", 1, true), out)
  T.ok(out:find("| correct | 2 | 1.00 | 2 | 2.000 |", 1, true) and out:find("| wrong | 2 | 1.00 | 2 | -0.750 |", 1, true), out)
  T.ok(out:find("ΔL per token as a score for a correct trace: AUC 1.000 (2 correct, 2 wrong)", 1, true), out)
end)

T.test("echo_attention.lua --summarize: the length and task controls on records whose confound is known", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/echo_attention.lua"
  local dir = T.tmpdir()
  -- Every layer's answer_to_answer is 10/length + e: all of its link to correctness goes through length (the
  -- short answers are the right ones) but for e, which sums to zero at each length, so the line on 1/length (or
  -- log length), through all items or within a task, leaves exactly e. Three layers: one per layer group.
  local items = {
    {"arithmetic", 50, true, -1}, {"arithmetic", 50, true, 1}, {"arithmetic", 100, true, -2},
    {"arithmetic", 100, false, 2}, {"gsm8k", 200, true, 3}, {"gsm8k", 200, false, -3}, {"gsm8k", 256, false, 4},
    {"gsm8k", 256, false, -4}}
  local f = assert(io.open(dir .. "/records.jsonl", "w"))
  for i, it in ipairs(items) do
    local v = 10 / it[2] + it[4] / 1000
    f:write(lm.json.encode({id = "i" .. i, source = it[1], answer_tokens = it[2], correct = it[3], layers = {0, 1, 2},
      answer_to_answer = {v, v, v}, answer_to_question = {0.05 + i / 100, 0.05 + i / 100, 0.05 + i / 100}}), "\n")
  end
  -- An answer too short to measure counts as an item but is in no comparison.
  f:write(lm.json.encode({id = "short", source = "arithmetic", answer_tokens = 1, correct = false}), "\n")
  f:close()
  local function summarize(out)
    return T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " --summarize "
      .. T.q(dir .. "/records.jsonl") .. " --out " .. T.q(out))
  end
  local code, text = summarize(dir .. "/a")
  T.eq(code, 0, text)
  local s = lm.json.decode(T.read(dir .. "/a/summary.json"))
  local lc = s.length_controlled
  local function near(got, want, what)
    T.ok(math.abs(got - want) < 1e-9, ("%s: %s, expected %s"):format(what, got, want))
  end
  -- 1/length alone: 14 of 16 pairs put the correct (shorter) answer above, ties 1/2.
  near(lc.length_alone.all, 14 / 16, "length alone")
  near(lc.length_alone.arithmetic, 2.5 / 3, "length alone, arithmetic")
  near(lc.length_alone.gsm8k, 2.5 / 3, "length alone, gsm8k")
  for j, g in ipairs(lc.measures.answer_to_answer.groups) do
    T.eq(g.name, ({"early", "middle", "late"})[j])
    local a = g.auc
    near(a.raw, 14 / 16, "uncontrolled")
    near(a["raw/arithmetic"], 2 / 3, "uncontrolled, arithmetic"); near(a["raw/gsm8k"], 1, "uncontrolled, gsm8k")
    -- The residuals e: correct {-1, 1, -2, 3} against wrong {2, -3, 4, -4}, 9 of 16 pairs above.
    near(a.length, 9 / 16, "length-controlled")
    -- Within arithmetic {-1, 1, -2} against {2}: none above; within GSM8K {3} against {-3, 4, -4}: 2 of 3.
    near(a.arithmetic, 0, "arithmetic residual"); near(a.gsm8k, 2 / 3, "gsm8k residual")
    near(a.primary, 2 / 6, "length and task controlled")
    -- One line on log length does not take 10/length out exactly (8 of 16 pairs, numpy's least squares); within
    -- a task, with two lengths each, any function of length is a line, so the log residuals are e again.
    near(g.other.log, 8 / 16, "log length"); near(g.other.log_task, 2 / 6, "log length within task")
    near(g.other["log/arithmetic"], 0, "log, arithmetic"); near(g.other["log/gsm8k"], 2 / 3, "log, gsm8k")
    -- Pearson and Spearman against 1/length (scipy's pearsonr and spearmanr on the same numbers).
    near(g.pearson.all, 0.9990744150668271, "r"); near(g.spearman.all, 0.9759000729485332, "rho")
    near(g.pearson.arithmetic, 0.9995003746877733, "r arithmetic")
    near(g.spearman.arithmetic, 0.8944271909999159, "rho arithmetic")
    near(g.pearson.gsm8k, 0.8397850425401434, "r gsm8k"); near(g.spearman.gsm8k, 0.8944271909999159, "rho gsm8k")
    for _, k in ipairs({"raw", "length", "primary", "arithmetic", "gsm8k", "raw/arithmetic", "raw/gsm8k"}) do
      local iv = g.interval[k]
      T.ok(iv and iv[1] <= iv[2] and iv[1] >= 0 and iv[2] <= 1, k .. ": an interval within [0, 1]")
    end
  end
  T.eq(#lc.measures.answer_to_answer.layers, 3)
  near(lc.measures.answer_to_answer.layers[2].primary, 2 / 6, "per layer, primary")
  T.ok(text:find("length+task (PRIMARY)", 1, true), text)
  T.ok(text:find("  arithmetic: 5 items, 3 correct (60.0%)\n  gsm8k: 4 items, 1 correct (25.0%)", 1, true), text)
  T.ok(text:find("middle 1-1    0.875 [", 1, true), text)
  local chart = T.read(dir .. "/a/answer_to_answer_auc.svg")
  T.ok(chart and chart:find("answer to answer, AUC: 5 arithmetic + 4 GSM8K test items", 1, true),
       "the chart names the data set")
  -- The bootstrap draws from a fixed seed: a second run writes the same numbers.
  code = summarize(dir .. "/b")
  T.eq(code, 0)
  T.eq(T.read(dir .. "/b/summary.json"), T.read(dir .. "/a/summary.json"))
  T.eq(T.read(dir .. "/b/summary.txt"), T.read(dir .. "/a/summary.txt"))
end)

T.done()
