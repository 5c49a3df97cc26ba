-- strategies/rise.lua on the default model: the metrics on hand-made answers, and the protocol's calls (one sample
-- of 5 first turns, 4 sequential turns), its demonstration, the retry turn after every attempt and the window.
local here = arg[0]:match("(.*/)") or "./"
local T = dofile(here .. "check.lua")
local rise = require "strategies.rise"
local m = lm.model

local function boxed(text) return text:match("\\boxed{([^}]*)}") end
local function same(p, g) return tonumber(p) == tonumber(g) end
local ITEM = {id = "r1", question = "Tom has 5 apples and buys 3 more. How many apples does he have now?", answer = "8"}

T.test("m1@t1, m5@t1, m1@t5, p1@t5 on hand-made answers", function()
  local a = rise.metrics({"1", "4", "2", "8", "8"}, {"1", "2", "2", "8", "16"}, "8", same)
  T.eq(a.m1t1, false); T.eq(a.m5t1, false); T.eq(a.m1t5, true); T.eq(a.p1t5, true)
  local b = rise.metrics({"8", "3", "3", false, "3"}, {"8", "8", "3", false, "8.0"}, "8", same)
  T.eq(b.m1t1, true); T.eq(b.m5t1, true); T.eq(b.m1t5, false); T.eq(b.p1t5, true)
  local c = rise.metrics({"5", "8", "8", "5"}, {false, false}, "5", same)   -- a tie goes to the first seen
  T.eq(c.m1t1, true); T.eq(c.m1t5, true); T.eq(c.m5t1, false)
  local d = rise.metrics({false, false, false, false, false}, {}, "8", same)
  T.eq(d.m1t1, false); T.eq(d.m1t5, false); T.eq(d.p1t5, false)
  local s = rise.summary({a, b, c, d})
  T.eq(s.n, 4); T.eq(s.m1t1, 0.5); T.eq(s.m5t1, 0.25); T.eq(s.m1t5, 0.5); T.eq(s.p1t5, 0.75)
end)

T.test("the protocol: 5 first turns in one sample call, then 4 turns, T=1.0, top-p 1.0, seeds in order", function()
  local r = rise.run(m, ITEM, {extract = boxed, verify = same, max_tokens = 24, seed = 3})
  T.eq(r.tokens.calls, 5)
  T.eq(r.calls[1].kind, "sample"); T.eq(r.calls[1].n, 5); T.eq(r.calls[1].opts.seed, 3)
  for t = 2, 5 do T.eq(r.calls[t].kind, "generate"); T.eq(r.calls[t].opts.seed, 3 + t - 1) end
  for _, c in ipairs(r.calls) do T.eq(c.opts.temperature, 1.0); T.eq(c.opts.top_p, 1.0); T.eq(c.opts.max_tokens, 24) end
  T.eq(r.texts[1], r.calls[1].outputs[1].text, "turn 1 is the first of the parallel samples")
  for i = 1, 5 do T.eq(r.firsts[i], boxed(r.calls[1].outputs[i].text) or false) end
  for t = 1, 5 do T.eq(r.turns[t], boxed(r.texts[t]) or false) end
  local want = rise.metrics(r.turns, r.firsts, ITEM.answer, same)
  for _, k in ipairs({"m1t1", "m5t1", "m1t5", "p1t5"}) do T.eq(r[k], want[k], k) end
  local seq = 0
  for t = 1, 5 do seq = seq + (t == 1 and r.calls[1].outputs[1] or r.calls[t].outputs[1]).usage.completion end
  T.eq(r.tokens_sequential, seq)
end)

T.test("the demonstration opens every prompt; the retry repeats the question after every turn; window 2", function()
  local r = rise.run(m, ITEM, {extract = boxed, verify = same, max_tokens = 16, parallel = false})
  T.eq(r.calls[1].kind, "generate"); T.eq(r.tokens.calls, 5)
  local retry = rise.phrases.incorrect .. "\n" .. ITEM.question .. " " .. rise.phrases.format
  local n = 0
  for _, x in ipairs(r.injected) do if x.label == "retry" then n = n + 1; T.eq(x.text, retry) end end
  T.eq(n, 4, "a retry turn before each of turns 2-5")
  for t, c in ipairs(r.calls) do
    local p = c.prompt
    T.eq(p[1].content, rise.phrases.demo_question .. " " .. rise.phrases.format)
    T.eq(p[2].content, rise.phrases.demo_answer); T.eq(p[2].role, "assistant")
    if t == 1 then
      T.eq(#p, 3); T.eq(p[3].content, ITEM.question .. " " .. rise.phrases.format)
    else
      T.eq(#p, 5, "demonstration, the asking turn, the latest attempt, the retry")
      T.eq(p[4].role, "assistant"); T.eq(p[4].content, r.texts[t - 1])
      T.eq(p[5].content, retry)
      for u = 1, t - 2 do
        if r.texts[u] ~= r.texts[t - 1] then
          for _, msg in ipairs(p) do T.ok(msg.content ~= r.texts[u], "turn " .. u .. " left the window") end
        end
      end
    end
  end
  local full = rise.run(m, ITEM, {extract = boxed, verify = same, max_tokens = 4, parallel = false, window = 100, turns = 3})
  T.eq(#full.calls[3].prompt, 2 + 5, "a wide window keeps the whole dialogue")
  T.eq(full.calls[3].prompt[4].content, full.texts[1])
end)

T.test("without opts.extract: lm.extract.boxed, and the last number with fallback = \"number\"", function()
  local r = rise.run(m, ITEM, {max_tokens = 16, turns = 2, parallel = false})
  for t = 1, 2 do T.eq(r.turns[t], lm.extract.boxed(r.texts[t]) or false) end
  local f = rise.run(m, ITEM, {max_tokens = 6, turns = 1, parallel = false, fallback = "number"})
  T.eq(f.turns[1], lm.extract.boxed(f.texts[1]) or lm.extract.number(f.texts[1]) or false)
end)

T.test("rise_report.lua: the four metrics and the paired comparisons from runner lines with known values", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/rise_report.lua"
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/results.jsonl", "w"))
  -- Four items: {m1t1, m5t1, m1t5, p1t5}.
  local rows = {{true, true, true, true}, {false, true, false, true}, {false, false, true, true}, {false, false, false, false}}
  for i, r in ipairs(rows) do
    f:write(lm.json.encode({item = "i" .. i, index = i, strategy = "rise", call = "rise.run{}", correct = r[3],
      extra = {m1t1 = r[1], m5t1 = r[2], m1t5 = r[3], p1t5 = r[4], tokens_sequential = 10 * i, tokens_parallel = 20}}), "\n")
  end
  f:close()
  local function report(args) return T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " " .. args) end
  local code, out = report(T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("RISE protocol over 4 items", 1, true), out)
  T.ok(out:find("| m1@t1 (first turn) | 0.250 [", 1, true), out)
  T.ok(out:find("| p1@t5 (some turn right, oracle) | 0.750 [", 1, true), out)
  T.ok(out:find("| sequential − parallel (equal attempts) | +0.000 [", 1, true) and out:find("| 1.000 | 1 / 1 |", 1, true), out)
  T.ok(out:find("| oracle over 5 turns − first turn | +0.500 [", 1, true) and out:find("| 0.500 | 1.000 | 2 / 0 |", 1, true), out)
  T.ok(out:find("Completion tokens per item: sequential turns 25.0, parallel first turns 20.0.", 1, true), out)
  T.ok(out:find("The lines do not hold every turn's text", 1, true), out)
  -- With texts (gold 7): the turns say "The answer is 7, not 8." (no \\boxed{}: the strategy's fallback read the
  -- last number, 8; the common grader reads 7 after "answer is"), the parallel first turns likewise.
  local tdir = T.tmpdir()
  f = assert(io.open(tdir .. "/results.jsonl", "w"))
  local say = {finish = "eos", text = "The answer is 7, not 8."}
  local calls = {{kind = "sample", n = 5, outputs = {say, say, say, say, say}}}
  for t = 2, 5 do calls[t] = {kind = "generate", outputs = {say}} end
  f:write(lm.json.encode({item = "i1", index = 1, strategy = "rise", call = "rise.run{}", gold = 7, correct = false,
    calls = calls, extra = {m1t1 = false, m5t1 = false, m1t5 = false, p1t5 = false}}), "\n")
  f:close()
  code, out = report(T.q(tdir))
  T.eq(code, 0, out)
  T.ok(out:find("| m1@t1 (first turn) | 0.000 [", 1, true), out)
  T.ok(out:find("(4 verdicts differ", 1, true), out)
  local common = out:sub((out:find("By the common final-answer grader", 1, true) or #out))
  T.ok(common:find("| m1@t1 (first turn) | 1.000 [", 1, true) and common:find("| p1@t5 (some turn right, oracle) | 1.000 [", 1, true), common)
  code, out = report(T.q(dir) .. " other")
  T.eq(code, 2); T.ok(out:find("no lines of strategy 'other'", 1, true) and out:find("(it has: rise)", 1, true), out)
end)

T.test("rise_report.lua with two seed sets: each metric an item's mean over its sets, each set's accuracy", function()
  local script = (arg[0]:match("(.*/)") or "./") .. "../../scripts/experiments/rise_report.lua"
  local dir = T.tmpdir()
  local f = assert(io.open(dir .. "/results.jsonl", "w"))
  -- Two items × two sets: {m1t1, m5t1, m1t5, p1t5}. Per item: m1t1 0.5 and 0, m5t1 1 and 0, m1t5 and p1t5 1 and 0.5.
  local rows = {
    {"i1", 1, 1, {true, true, true, true}}, {"i1", 1, 2, {false, true, true, true}},
    {"i2", 2, 1, {false, false, false, false}}, {"i2", 2, 2, {false, false, true, true}},
  }
  for k, r in ipairs(rows) do
    local m = r[4]
    f:write(lm.json.encode({item = r[1], index = r[2], seed_set = r[3], strategy = "rise", call = "rise.run{}",
      correct = m[3], extra = {m1t1 = m[1], m5t1 = m[2], m1t5 = m[3], p1t5 = m[4], tokens_sequential = 10 * k,
                               tokens_parallel = 20}}), "\n")
  end
  f:close()
  local code, out = T.sh(T.q(lm.executable()) .. " run --no-store " .. T.q(script) .. " " .. T.q(dir))
  T.eq(code, 0, out)
  T.ok(out:find("RISE protocol over 2 items × 2 seed sets", 1, true), out)
  T.ok(out:find("| metric | accuracy [95% CI] | seed-set spread | per seed set |", 1, true), out)
  T.ok(out:find("| m1@t1 (first turn) | 0.250 [", 1, true) and out:find("| 0.000–0.500 (sd 0.354) | 1: 0.500, 2: 0.000 |", 1, true), out)
  T.ok(out:find("| m5@t1 (majority of 5 first turns, parallel) | 0.500 [", 1, true), out)
  T.ok(out:find("| p1@t5 (some turn right, oracle) | 0.750 [", 1, true) and out:find("| 1: 0.500, 2: 1.000 |", 1, true), out)
  -- m1@t5 − m5@t1 per item: 0 and +0.5; m1@t5 − m1@t1: +0.5 and +0.5.
  T.ok(out:find("| sequential − parallel (equal attempts) | +0.250 [", 1, true) and out:find("| 1 / 0 |", 1, true), out)
  T.ok(out:find("| sequential − first turn | +0.500 [", 1, true) and out:find("| 2 / 0 |", 1, true), out)
  T.ok(out:find("Seed sets: 2; an item's score is its mean over the sets it has", 1, true)
    and out:find("p: a sign-flip permutation test on the items' differences.", 1, true), out)
  T.ok(out:find("Completion tokens per item run: sequential turns 25.0, parallel first turns 20.0.", 1, true), out)
end)

T.done()
