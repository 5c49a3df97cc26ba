-- The experiment harness: lm.extract, lm.verify, lm.json, lm.data, lm.tasks, lm.random, lm.stats, lm.progress,
-- lm.clock, lm.isatty, and help for all of them (lm.document). Needs no model.
-- Reference numbers marked "python" were computed independently with Python 3 (numpy 2.4, scipy 1.17):
-- a SplitMix64 written in Python, numpy.quantile (linear), scipy.stats.binomtest, scipy.stats.chi2.sf,
-- scipy.stats.mannwhitneyu and numpy.var(ddof=1); the script is quoted next to each value.
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local here = arg[0]:match("(.*/)") or "./"
local E, V, S = lm.extract, lm.verify, lm.stats

local function near(got, want, tol, msg)
  if type(got) ~= "number" or math.abs(got - want) > (tol or 1e-12) then
    error((msg and msg .. ": " or "") .. "expected " .. tostring(want) .. ", got " .. tostring(got), 2)
  end
end

T.test("extract.number", function()
  local cases = {
    {"1,234", 1234}, {"-3.5", -3.5}, {"$12", 12}, {"It costs 12.", 12}, {"work\n#### 42", 42},
    {"3/4", 0.75}, {"8/2", 4}, {"5-3", 3}, {"x = -$12", -12}, {"1,2,3", 3}, {"50%", 50},
    {"1,234,567.89 total", 1234567.89}, {"pages 10-12", 12}, {"The answer is \u{2212}7", -7},
    {"12.5.", 12.5}, {"She pays $1,234.50, so the answer is 1,234.", 1234}, {"(-4)", -4},
    {"1,23", 23}, {"10,0000", 0}, {"0.5 and .", 0.5},
  }
  for _, c in ipairs(cases) do T.eq(E.number(c[1]), c[2], c[1]) end
  T.eq(math.type(E.number("1,234")), "integer"); T.eq(math.type(E.number("3.0")), "float")
  T.eq(E.number("no number here"), nil); T.eq(E.number(""), nil)
  T.err(function() E.number(42) end, "lm.extract.number: text must be a string, got number")
end)

T.test("extract.boxed", function()
  T.eq(E.boxed("so \\boxed{42}."), "42")
  T.eq(E.boxed("a \\boxed{\\frac{1}{2}} b"), "\\frac{1}{2}")
  T.eq(E.boxed("\\boxed{1} then \\boxed{x^{2}}"), "x^{2}", "the last one")
  T.eq(E.boxed("\\boxed{12"), nil, "not closed")
  T.eq(E.boxed("\\boxed{1} and \\boxed{2"), nil, "the last one is not closed")
  T.eq(E.boxed("\\fbox{ 7 }"), "7"); T.eq(E.boxed("\\boxed {5}"), "5")
  T.eq(E.boxed("no box"), nil); T.eq(E.boxed("\\boxes{3}"), nil)
end)

T.test("extract.choice", function()
  local cases = {
    {"B", "B"}, {"B) Paris", "B"}, {"(C).", "C"}, {"The answer is (c).", "C"}, {"Answer: b", "B"},
    {"A cat sat. I think B", "B"}, {"A", "A"}, {"A.", "A"}, {"I think the answer is a dog, so D", "D"},
    {"Because of D.", "D"}, {"none", nil}, {"The answer is A", "A"}, {"I pick (B) over (D)", "D"},
    {"E is it", nil},
  }
  for _, c in ipairs(cases) do T.eq(E.choice(c[1]), c[2], c[1]) end
  T.eq(E.choice("E is it", "ABCDE"), "E")
  T.eq(E.choice("answer: c", {"a", "b", "c"}), "c", "letters as written")
  T.err(function() E.choice("B", {"AB"}) end, "lm.extract.choice: letters[1] must be a single letter")
  T.err(function() E.choice("B", "") end, "no letters to choose from")
end)

T.test("extract.answer", function()
  local v, how = E.answer("x \\boxed{1,000}"); T.eq(v, 1000); T.eq(how, "boxed")
  v, how = E.answer("\\boxed{\\frac{1}{2}}"); T.eq(v, "\\frac{1}{2}"); T.eq(how, "boxed")
  v, how = E.answer("7 * 8 = 56\n#### 56\nextra 3"); T.eq(v, 56); T.eq(how, "####")
  v, how = E.answer("The answer is 7, not 8 apples... 9"); T.eq(v, 7); T.eq(how, "answer is")
  -- A calculation after "answer is": its result, after the last "=" on that line.
  v, how = E.answer("I can see that the answer is 19 - 16 = 3 dollars."); T.eq(v, 3); T.eq(how, "answer is")
  T.eq((E.answer("The answer is 4 × 5 = 20.")), 20); T.eq((E.answer("The answer is $12 + $3 = $15")), 15)
  T.eq((E.answer("The answer is 19 - 16.\nThen 7")), 19, "no = on the line: the number after answer is")
  T.eq((E.answer("The answer is 3, 4 = four")), 3, "a number then a comma is no calculation")
  v, how = E.answer("Answer: $1,200"); T.eq(v, 1200); T.eq(how, "answer is")
  v, how = E.answer("just 5 and 6"); T.eq(v, 6); T.eq(how, "last")
  T.eq(E.answer("nothing"), nil)
end)

T.test("verify", function()
  T.eq(V.numeric("$1,234", 1234), true); T.eq(V.numeric("1,234.0", "1234"), true)
  T.eq(V.numeric(0.33, 1 / 3), false); T.eq(V.numeric(0.33, 1 / 3, 0.01), true)
  T.eq(V.numeric(0.33, 1 / 3, {rel = 0.02}), true); T.eq(V.numeric(0.33, 1 / 3, {rel = 0.005}), false)
  T.eq(V.numeric(nil, 3), false); T.eq(V.numeric("about 12", 12), false); T.eq(V.numeric({}, 12), false)
  T.eq(V.numeric("12.", 12), true); T.eq(V.numeric("3/4", 0.75), true); T.eq(V.numeric("-5", -5), true)
  T.eq(V.numeric("50%", 50), true); T.eq(V.numeric("-$3", -3), true); T.eq(V.numeric("1,23", 123), false)
  T.eq(V.numeric(18.0000001, 18), true); T.eq(V.numeric(18.01, 18), false); T.eq(V.numeric(0 / 0, 0), false)
  T.eq(V.numeric(1e6 + 0.5, 1e6), true, "relative 1e-6 by default"); T.eq(V.numeric(1e6 + 2, 1e6), false)
  T.err(function() V.numeric(3, "three") end, 'lm.verify.numeric: gold must be a number or a numeric string, got "three"')
  T.err(function() V.numeric(3, 3, "x") end, "lm.verify.numeric: tol must be a number or {abs=, rel=}")
  T.eq(V.exact("Paris", "Paris"), true); T.eq(V.exact("Paris", "paris"), false)
  T.eq(V.exact(42, "42"), true); T.eq(V.exact(42.0, "42"), false); T.eq(V.exact(nil, "x"), false)
  T.eq(V.normalized("  The Eiffel-Tower. ", "the eiffel-tower"), true)
  T.eq(V.normalized("$1,000$", "1000"), true); T.eq(V.normalized("3.5", "35"), false)
  T.eq(V.normalized("Hello,   World!", "hello world"), true); T.eq(V.normalized("-5", "5"), false)
  T.eq(V.normalized("x", nil), false); T.eq(V.normalized(12, "12."), true)
  T.eq(V.normalize("  Hello, World! "), "hello world")
  T.err(function() V.normalized({}, "x") end, "lm.verify.normalized: a must be a string or number, got table")
end)

T.test("json", function()
  local v = lm.json.decode('{"s": "caf\\u00e9 \\ud83d\\ude00\\n\\"q\\"", "n": -1.5e2, "i": 12, "arr": [1, null, 3], "t": true, "z": null}')
  T.eq(v.s, "café 😀\n\"q\""); T.eq(v.n, -150.0); T.eq(math.type(v.i), "integer"); T.eq(v.arr[3], 3)
  T.eq(v.arr[2], nil); T.eq(v.t, true); T.eq(v.z, nil)
  T.eq(lm.json.encode({id = "q1", ok = true, xs = {0.5, 1, 0.1}, e = {}, s = "a\"\n\1"}),
       '{"e":[],"id":"q1","ok":true,"s":"a\\"\\n\\u0001","xs":[0.5,1,0.1]}')
  T.eq(lm.json.encode(1 / 3), "0.3333333333333333"); T.eq(lm.json.decode(lm.json.encode(1 / 3)), 1 / 3)
  local back = lm.json.decode(lm.json.encode(v))
  T.eq(back.s, v.s); T.eq(back.n, v.n)
  local nothing, msg = lm.json.try_decode('{"a" 1}')
  T.eq(nothing, nil); T.eq(msg, "expected ':' at byte 6")
  T.err(function() lm.json.decode("[1, 2") end, "lm.json.decode: unexpected end of text at byte 6")
  T.err(function() lm.json.decode("01") end, "bad number at byte 1")
  T.err(function() lm.json.decode("[1, 1e309]") end, "number out of range at byte 5")   -- found by fuzzing
  T.err(function() lm.json.decode("-" .. ("9"):rep(400)) end, "number out of range at byte 1")
  T.eq(1 / lm.json.decode("-0"), -math.huge); T.eq(lm.json.encode(lm.json.decode("-1e-400")), "-0")
  T.err(function() lm.json.decode("1 2") end, "unexpected text after the value at byte 3")
  local c = {}; c.c = c
  T.err(function() lm.json.encode(c) end, "lm.json.encode: a table contains itself")
  T.err(function() lm.json.encode({f = print}) end, "a function value is not JSON")
  T.err(function() lm.json.encode(0 / 0) end, "is not JSON")
end)

T.test("data.jsonl and data.gsm8k on a fixture", function()
  local rows = lm.data.jsonl(here .. "fixtures/gsm8k_sample.jsonl")
  T.eq(#rows, 4, "the blank line is skipped")
  T.eq(#lm.data.jsonl(here .. "fixtures/gsm8k_sample.jsonl", {n = 2, offset = 1}), 2)
  local items = lm.data.gsm8k(here .. "fixtures/gsm8k_sample.jsonl")
  T.eq(#items, 4)
  T.eq(items[1].id, "gsm8k-1"); T.eq(items[1].answer, 12)
  T.ok(items[1].question:find("^Tom has 3 boxes")); T.ok(items[1].solution:find("<<3*4=12>>", 1, true))
  T.eq(items[2].answer, 1200); T.ok(items[2].question:find("\u{2026}", 1, true), "\\u escapes decoded")
  T.eq(items[3].answer, -3); T.eq(items[4].answer, 3.5)
  local window = lm.data.gsm8k(here .. "fixtures/gsm8k_sample.jsonl", {offset = 2, n = 1})
  T.eq(#window, 1); T.eq(window[1].id, "gsm8k-3"); T.eq(window[1].answer, -3)
  T.eq(#lm.data.gsm8k(here .. "fixtures/gsm8k_sample.jsonl", {n = 0}), 0)
  T.err(function() lm.data.jsonl(here .. "fixtures/bad.jsonl") end,
        "lm.data.jsonl: " .. here .. "fixtures/bad.jsonl:3: unexpected character '}' at byte 15")
  T.eq(#lm.data.jsonl(here .. "fixtures/bad.jsonl", {n = 2}), 2, "lines after the window are not read")
  T.err(function() lm.data.gsm8k(here .. "fixtures/bad_gsm8k.jsonl") end,
        "fixtures/bad_gsm8k.jsonl:2: no number after '####' in the answer")
  T.err(function() lm.data.gsm8k(here .. "fixtures/bad.jsonl") end,
        "bad.jsonl:1: expected an object with string fields question and answer")
  T.err(function() lm.data.jsonl("/nonexistent/x.jsonl") end, "lm.data.jsonl: cannot open /nonexistent/x.jsonl")
  T.err(function() lm.data.jsonl(here .. "fixtures/bad.jsonl", {count = 2}) end, "unknown option 'count' (n, offset)")
  T.err(function() lm.data.gsm8k(here .. "fixtures/bad.jsonl", {n = -1}) end, "option 'n' must be an integer >= 0")
  local msg = T.err(function() lm.data.jsonl(here .. "fixtures/bad.jsonl") end, "bad.jsonl:3")
  T.ok(not msg:find("\n"), "a one-line error")
end)

-- The real GSM8K test set, which the repository carries (data/gsm8k, MIT).
T.test("data.gsm8k on the real test set", function()
  local path = here .. "../../data/gsm8k/test.jsonl"
  local items = lm.data.gsm8k(path)
  T.eq(#items, 1319)
  T.eq(items[1].answer, 18); T.ok(items[1].question:find("^Janet\u{2019}s ducks"))
  local ids = {}
  for i, it in ipairs(items) do
    T.eq(type(it.answer), "number", it.id); T.eq(it.id, "gsm8k-" .. i); T.ok(not ids[it.id]); ids[it.id] = true
  end
  local tail = lm.data.gsm8k(path, {offset = 1300, n = 100})
  T.eq(#tail, 19); T.eq(tail[1].id, "gsm8k-1301"); T.eq(tail[1].question, items[1301].question)
end)

T.test("random is SplitMix64", function()
  -- python: SplitMix64 from state 0, its first three outputs 0xe220a8397b1dcdaf 0x6e789e6aa1b965f4
  -- 0x06c45d188009454f (the published test vector), as (z >> 11) * 2^-53
  local r = lm.random(0)
  near(r:float(), 0.8833108082136426); near(r:float(), 0.43152799704850997); near(r:float(), 0.026433771592597743)
  -- python: [R(42).int(1, 6) for _ in range(10)] with int = lo + (next >> 11) % (hi - lo + 1)
  local want, got = {2, 1, 6, 5, 5, 4, 2, 2, 2, 3}, {}
  r = lm.random(42)
  for i = 1, 10 do got[i] = r:int(1, 6) end
  T.eq(table.concat(got, ","), table.concat(want, ","))
  local a, b = lm.random(5), lm.random(5)
  for _ = 1, 5 do T.eq(a:float(), b:float()) end
  local list = lm.random(3):shuffle({1, 2, 3, 4, 5, 6})
  table.sort(list); T.eq(table.concat(list, ","), "1,2,3,4,5,6")
  T.err(function() lm.random(1.5) end, "lm.random: the seed must be an integer")
  T.err(function() lm.random(1):int(3, 2) end, "lo <= hi")
end)

-- Each template's answer, recomputed from the numbers in its question (in the order they appear).
local SOLVE = {
  shopping = function(n) return n[1] * n[2] end, sharing = function(n) return n[1] // n[2] end,
  ages = function(n) return n[1] + n[2] end, younger = function(n) return n[1] - n[2] end,
  distance = function(n) return n[1] + n[2] end, spending = function(n) return n[1] - n[2] end,
  collection = function(n) return n[1] + n[2] end, rows = function(n) return n[1] * n[2] end,
  reading = function(n) return n[1] * n[2] end, change = function(n) return n[3] - n[1] * n[2] end,
  budget = function(n) return n[1] - n[2] * n[3] end, regroup = function(n) return (n[1] + n[2]) // n[3] end,
  future_age = function(n) return n[1] + n[2] + n[3] end, trip = function(n) return n[1] * n[2] + n[3] end,
  give_away = function(n) return n[1] + n[2] - n[3] end, book = function(n) return n[1] - n[2] * n[3] end,
  pen_and_books = function(n) return n[1] * n[2] + n[3] end,
}

T.test("tasks.arithmetic", function()
  local items = lm.tasks.arithmetic({n = 200, seed = 1})
  T.eq(#items, 200)
  local seen, two, templates = {}, 0, {}
  for i, it in ipairs(items) do
    T.eq(it.id, "arith-mixed-s1-" .. i)
    T.eq(math.type(it.answer), "integer", it.question); T.ok(it.answer >= 0 and it.answer < 100, it.question)
    T.ok(not seen[it.question], "repeated: " .. it.question); seen[it.question] = true
    local nums = {}
    for d in it.question:gmatch("%d+") do nums[#nums + 1] = tonumber(d) end
    T.eq(SOLVE[it.template](nums), it.answer, it.question)
    if it.steps == 2 then two = two + 1 end
    templates[it.template] = true
  end
  T.ok(two > 70 and two < 130, "mixed is about half two-step: " .. two)
  local count = 0
  for _ in pairs(templates) do count = count + 1 end
  T.eq(count, 17, "every template is used")
  -- Reproducible: the same seed gives the same items, the first k do not depend on n, other seeds differ.
  T.eq(lm.json.encode(lm.tasks.arithmetic({n = 200, seed = 1})), lm.json.encode(items))
  T.eq(lm.json.encode(lm.tasks.arithmetic({n = 5, seed = 1})), lm.json.encode({table.unpack(items, 1, 5)}))
  T.ok(lm.tasks.arithmetic({n = 1, seed = 2})[1].question ~= items[1].question)
  -- Pinned: these strings change only if the generator does (and then every published result with them).
  local pinned = lm.tasks.arithmetic({n = 2, seed = 7})
  T.eq(pinned[1].question, "Priya buys 3 oranges at 3 dollars each and pays with a 20 dollar bill. How many dollars of change does Priya get?")
  T.eq(pinned[1].answer, 11)
  T.eq(pinned[2].question, "Emma buys 5 books that cost 7 dollars each. How many dollars does Emma spend?")
  for _, it in ipairs(lm.tasks.arithmetic({n = 30, steps = 1, seed = 3})) do T.eq(it.steps, 1); T.ok(it.id:find("^arith%-1%-s3%-")) end
  for _, it in ipairs(lm.tasks.arithmetic({n = 30, steps = 2, seed = 3})) do T.eq(it.steps, 2) end
  T.eq(#lm.tasks.arithmetic(), 100)
  T.err(function() lm.tasks.arithmetic({steps = 3}) end, "lm.tasks.arithmetic: option 'steps' must be 1, 2 or \"mixed\", got 3")
  T.err(function() lm.tasks.arithmetic({count = 3}) end, "unknown option 'count' (n, seed, steps)")
  T.err(function() lm.tasks.arithmetic({seed = 0.5}) end, "option 'seed' must be an integer")
end)

T.test("stats: mean, sd, bootstrap_ci", function()
  T.eq(S.mean({true, false, true, true}), 0.75); T.eq(S.mean({2, 4}), 3.0)
  near(S.sd({2, 4, 4, 4, 5, 5, 7, 9}), 2.138089935299395)          -- python: numpy.std(ddof=1)
  -- python: the same percentile bootstrap over a SplitMix64 in Python, numpy.quantile(means, [t, 1 - t])
  local c = {2.31, 0.57, 1.98, 3.44, 0.12, 2.75, 1.06, 4.21, 0.88, 1.63, 2.09, 3.17, 0.45, 1.29, 2.66}
  local lo, hi, m = S.bootstrap_ci(c, {iters = 1000, seed = 3})
  near(m, 1.9073333333333333); near(lo, 1.3571666666666666); near(hi, 2.524716666666667)
  lo, hi = S.bootstrap_ci(c, {level = 0.8, iters = 300, seed = -5})
  near(lo, 1.5120666666666667); near(hi, 2.2246)
  local bits = {1,0,1,1,0,1,1,1,0,1, 1,1,0,0,1,1,1,0,1,1, 0,1,1,1,1,0,1,1,0,1}
  lo, hi, m = S.bootstrap_ci(bits, {iters = 1000, seed = 3})
  near(m, 0.7); near(lo, 0.5333333333333333); near(hi, 0.8666666666666667)
  -- For 400 values the interval is close to the normal one, mean +- 1.96 s / sqrt(n) = [4.7045, 5.2775].
  local g = {}
  for i = 0, 399 do g[#g + 1] = ((i * 37) % 101) / 10.0 end
  lo, hi = S.bootstrap_ci(g)
  near(lo, 4.7045, 0.03, "lower"); near(hi, 5.2775, 0.03, "upper")
  lo, hi = S.bootstrap_ci({5, 5, 5}); T.eq(lo, 5.0); T.eq(hi, 5.0)
  T.err(function() S.mean({}) end, "lm.stats.mean: xs needs at least 1 element, got 0")
  T.err(function() S.mean({1, "2"}) end, 'lm.stats.mean: xs[2] is the string "2", expected a number or boolean')
  T.err(function() S.sd({1}) end, "lm.stats.sd: xs needs at least 2 elements, got 1")
  T.err(function() S.bootstrap_ci({1}, {level = 95}) end, "option 'level' must be between 0 and 1, got 95")
  T.err(function() S.bootstrap_ci({1}, {iter = 5}) end, "unknown option 'iter' (level, iters, seed, clusters)")
end)

T.test("stats.paired", function()
  local a = {2.31, 0.57, 1.98, 3.44, 0.12, 2.75, 1.06, 4.21, 0.88, 1.63, 2.09, 3.17, 0.45, 1.29, 2.66}
  local b = {1.9, 0.7, 2.2, 3.0, 0.4, 2.5, 1.5, 3.9, 1.2, 1.1, 2.4, 2.8, 0.3, 1.7, 2.0}
  local d = S.paired(a, b)
  -- python: bootstrap of the differences, 2000 resamples, seed 1
  near(d.diff, 0.06733333333333334, 1e-12); near(d.lo, -0.11466666666666663); near(d.hi, 0.26134999999999986)
  T.eq(d.n, 15); T.eq(d.level, 0.95); T.eq(d.wins, 8); T.eq(d.losses, 7); T.eq(d.ties, 0)
  near(d.mean_a, 1.9073333333333333); near(d.mean_b - d.mean_a, -d.diff, 1e-12)
  local x = {true, true, false, true, true, false, true, true, true, false, true, true, true, false, true, true, false, true, true, true}
  local y = {0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1}
  d = S.paired(x, y)
  near(d.diff, 0.25); near(d.lo, 0.1); near(d.hi, 0.45)              -- python, as above
  T.eq(d.ties, 15)
  local e = T.err(function() S.paired({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {1, 2, 3, 4, 5, 6, 7, 8, 9}) end,
                  "lm.stats.paired: the two lists differ in length (10 and 9)")
  T.ok(e:find("test_harness.lua:%d+: lm.stats.paired"), "the error points at the caller: " .. e)
end)

T.test("stats.mcnemar", function()
  -- a right and b wrong 8 times, the reverse 2 times, 5 items both right: exact test.
  local a, b = {}, {}
  local function add(x, y, k) for _ = 1, k do a[#a + 1] = x; b[#b + 1] = y end end
  add(true, false, 8); add(false, true, 2); add(true, true, 5); add(false, false, 3)
  local t = S.mcnemar(a, b)
  T.eq(t.b10, 8); T.eq(t.b01, 2); T.eq(t.n, 18); T.eq(t.method, "exact")
  near(t.p, 0.109375, 1e-12)                                       -- python: binomtest(2, 10).pvalue
  T.eq(S.mcnemar(b, a).p, t.p, "symmetric")
  a, b = {}, {}
  add(true, false, 25); add(false, true, 10); add(true, true, 40)
  t = S.mcnemar(a, b)
  T.eq(t.method, "chi2"); near(t.statistic, 5.6, 1e-12)
  near(t.p, 0.01796047752607879, 2e-8)                             -- python: chi2.sf(5.6, 1)
  t = S.mcnemar(a, b, {exact = true})
  near(t.p, 0.016673847800120715, 1e-12)                           -- python: binomtest(10, 35).pvalue
  a, b = {}, {}
  add(1, 0, 12); add(0, 1, 30)
  near(S.mcnemar(a, b).p, 0.008711912962379598, 2e-8)              -- python: chi2.sf((18 - 1)^2 / 42, 1)
  a, b = {}, {}
  add(true, false, 7); add(false, true, 17)
  near(S.mcnemar(a, b).p, 0.06391465663909912, 1e-12)              -- python: binomtest(7, 24).pvalue
  a, b = {}, {}
  add(false, true, 5)
  near(S.mcnemar(a, b).p, 0.0625, 1e-12)                           -- python: binomtest(0, 5).pvalue
  T.eq(S.mcnemar({true, false}, {true, false}).p, 1)
  T.err(function() S.mcnemar({true}, {true, false}) end, "lm.stats.mcnemar: the two lists differ in length (1 and 2)")
  T.err(function() S.mcnemar({0.5}, {true}) end, "lm.stats.mcnemar: a[1] is 0.5, expected a boolean or 0/1")
end)

T.test("stats.cohens_d and auc", function()
  near(S.cohens_d({14.2, 15.1, 13.8, 14.9, 15.5, 14.0}, {11.4, 12.0, 11.9, 10.8, 12.6}), 4.192097526077214, 1e-12)
  near(S.cohens_d({0.1, 0.4, 0.35, 0.8}, {0.2, 0.3, 0.9, 0.15, 0.5}), 0.008374140386271076, 1e-12)  -- python
  T.eq(S.cohens_d({1, 1}, {1, 1}), nil)
  T.err(function() S.cohens_d({1}, {2}) end, "needs at least three values")
  -- python: mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)), with ties
  near(S.auc({0.9, 0.8, 0.4, 0.4, 0.7, 0.55}, {0.5, 0.3, 0.4, 0.2, 0.4, 0.1, 0.8}), 0.7976190476190477)
  near(S.auc({0.9, 0.8, 0.4}, {0.5, 0.3, 0.4}), 0.8333333333333334)
  T.eq(S.auc({3, 4}, {1, 2}), 1.0); T.eq(S.auc({1, 2}, {3, 4}), 0.0); T.eq(S.auc({1, 1}, {1}), 0.5)
  T.err(function() S.auc({}, {1}) end, "lm.stats.auc: pos needs at least 1 element, got 0")
end)

T.test("executable: the refrain binary running this script", function()
  local exe = lm.executable()
  T.eq(type(exe), "string")
  T.ok(exe:sub(1, 1) == "/", "an absolute path: " .. exe)
  local p = io.popen("'" .. exe:gsub("'", "'\\''") .. "' --version")
  local version = p:read("a")
  p:close()
  T.ok(version:find("^refrain "), "it is refrain: " .. version)
end)

T.test("progress, clock, isatty", function()
  local t0 = lm.clock()
  local x = 0
  for i = 1, 200000 do x = x + i end
  T.ok(lm.clock() > t0, "the clock moves")
  T.eq(lm.isatty(io.stdout), false, "stdout is a pipe under the tests")
  T.eq(type(lm.isatty(2)), "boolean")
  local closed = io.tmpfile(); closed:close()
  T.eq(lm.isatty(closed), false)
  T.err(function() lm.isatty("stderr") end, "file or file descriptor expected")
  local silent = lm.progress(5, "quiet")
  T.eq(silent.out, lm.isatty(io.stderr) and io.stderr or nil, "draws only on a terminal")
  local f = io.tmpfile()
  local bar = lm.progress(10, "items", {out = f, interval = 0})
  for _ = 1, 3 do bar:tick() end
  T.ok(bar:line():find("^items %[=======>                %] 3/10  30%%  [%d.]+/s  left "), bar:line())
  bar:tick(7)
  local secs = bar:done()
  T.ok(secs >= 0)
  bar:tick()                                                        -- after done: ignored
  f:seek("set")
  local drawn = f:read("a")
  T.ok(drawn:find("\r", 1, true) and drawn:find("\27[K", 1, true), drawn)
  T.ok(drawn:find("3/10", 1, true), drawn)
  T.ok(drawn:find("10/10 100%%  [%d.]+/s  in %d+s\27%[K\n$"), drawn)
  T.eq(select(2, drawn:gsub("\n", "")), 1, "one newline, at the end")
  local empty = lm.progress(0, nil, {out = io.tmpfile()})
  T.ok(empty:line():find("0/0 100%", 1, true), empty:line())
  T.err(function() lm.progress(-1) end, "lm.progress: n must be an integer >= 0, got -1")
  T.err(function() lm.progress(3, "x", {color = true}) end, "unknown option 'color' (out, interval)")
end)

T.test("help for every harness function", function()
  local modules = {"extract", "verify", "json", "data", "tasks", "stats"}
  for _, name in ipairs(modules) do
    local mod = lm[name]
    T.ok(lm.doc(mod) and lm.doc(mod):find("^lm%." .. name), name)
    local count = 0
    for k, f in pairs(mod) do
      if type(f) == "function" then
        count = count + 1
        local d = lm.doc(f)
        T.ok(d, "help for lm." .. name .. "." .. k)
        T.ok(d:find("lm." .. name .. "." .. k .. "(", 1, true), d)
        T.ok(d:find("example:", 1, true), "lm." .. name .. "." .. k .. " has an example")
        T.eq(lm.doc("lm." .. name .. "." .. k), d)
        T.ok(lm.doc(mod):find("lm." .. name .. "." .. k .. "(", 1, true), "help(lm." .. name .. ") lists " .. k)
      end
    end
    T.ok(count > 0)
  end
  for _, f in ipairs({lm.progress, lm.random, lm.clock, lm.isatty, lm.executable, lm.document}) do T.ok(lm.doc(f), tostring(f)) end
  T.eq(lm.doc("auc"), lm.doc(lm.stats.auc))
  T.ok(lm.doc():find("lm.stats", 1, true), "the overview lists the modules")
  T.ok(not lm.doc():find("lm.stats.auc", 1, true), "but not their functions")
  T.eq(require "lm.stats", lm.stats)
end)

T.test("lm.document", function()
  local function twice(x) return 2 * x end
  T.eq(lm.document(twice, {name = "twice", usage = "twice(x) -> number", text = "Doubles x.", example = "twice(2)"}), twice)
  T.ok(lm.doc(twice):find("^twice%(x%) %-> number\n\nDoubles x%.\n\nexample:\n  twice%(2%)$"), lm.doc(twice))
  T.eq(lm.doc("twice"), lm.doc(twice))
  lm.document(twice, {name = "twice", text = "Doubles its argument."})
  T.eq(lm.doc(twice), "twice\n\nDoubles its argument.", "replaced; no example")
  T.ok(lm.doc():find("Doubles its argument.", 1, true), "in the overview")
  T.err(function() lm.document(twice, {name = "t"}) end, "field 'text' must be a string, got nil")
  T.err(function() lm.document(twice, {name = "t", text = "x", exmaple = "y"}) end, "unknown field 'exmaple'")
end)

T.test("lm.list: a list with holes keeps its length through JSON", function()
  local a = lm.list(4)
  a[1], a[3] = 9, 16                          -- the second and fourth samples gave no number
  T.eq(#a, 4); T.eq(a.n, 4); T.ok(lm.list.is(a)); T.eq(lm.list.len(a), 4); T.eq(lm.list.len({1, 2}), 2)
  T.eq(lm.json.encode(a), "[9,null,16,null]")
  T.eq(lm.json.encode({answers = a}), '{"answers":[9,null,16,null]}')
  T.eq(lm.json.encode(lm.list(3)), "[null,null,null]")          -- all holes: still an array of 3
  T.eq(lm.json.encode(lm.list(0)), "[]")
  local b = lm.json.decode("[9,null,16,null]")
  T.ok(lm.list.is(b)); T.eq(b.n, 4); T.eq(#b, 4); T.eq(b[1], 9); T.eq(b[2], nil); T.eq(b[3], 16)
  T.eq(lm.json.encode(b), "[9,null,16,null]")
  T.ok(not lm.list.is(lm.json.decode("[1,2]")), "an array without null stays a plain list")
  -- A plain table with a hole (no n): an array up to its last value, not an object with string keys.
  T.eq(lm.json.encode({[1] = 9, [3] = 16}), "[9,null,16]")
  -- table.pack's n counts; an options table with a field n is an object.
  T.eq(lm.json.encode(table.pack(1, nil, 3, nil)), "[1,null,3,null]")
  T.eq(lm.json.encode({n = 8}), '{"n":8}')
  T.eq(lm.json.encode({n = 8, temperature = 0.5}), '{"n":8,"temperature":0.5}')
  T.eq(lm.json.encode({[1] = "a", [1000] = "b"}), '{"1":"a","1000":"b"}')     -- far too sparse for an array
  T.err(function() lm.list(2, {1, 2, 3}) end, "lm.list: key 3 is outside 1..2")
  T.err(function() lm.list(-1) end, "lm.list: the length must be an integer >= 0, got -1")
  local c = lm.list(2); c.x = 1
  T.err(function() lm.json.encode(c) end, "an lm.list of length 2 has the key x")
  T.ok(lm.doc(lm.list):find("lm.list(n [, t]) -> list", 1, true), "help(lm.list)")
  T.ok(lm.doc(lm.fs.lock):find("lm.fs.lock(path)", 1, true), "help(lm.fs.lock)")
  for _, f in ipairs({"sign_flip", "holm", "ranks", "pearson", "spearman"}) do
    T.ok(lm.doc(lm.stats[f]):find("lm.stats." .. f, 1, true), "help(lm.stats." .. f .. ")")
  end
end)

T.test("stats.holm", function()
  local adj = S.holm({0.01, 0.04, 0.03})
  near(adj[1], 0.03); near(adj[2], 0.06); near(adj[3], 0.06)
  -- python: statsmodels.stats.multitest.multipletests([0.2, 0.001, 0.04, 0.5], method="holm")[1]
  --         -> [0.4, 0.004, 0.12, 0.5]
  adj = S.holm({0.2, 0.001, 0.04, 0.5})
  near(adj[1], 0.4); near(adj[2], 0.004); near(adj[3], 0.12); near(adj[4], 0.5)
  T.eq(#S.holm({}), 0)
  T.err(function() S.holm({0.5, 1.5}) end, "ps[2] is 1.5, not a p-value")
end)

T.test("stats.sign_flip", function()
  -- On single right/wrong differences the exact sign-flip test is McNemar's exact test.
  local a = {true, true, true, true, true, true, false, true, false, true, false, false}
  local b = {false, false, false, true, false, false, true, true, false, false, false, false}
  local d = {}
  for i = 1, #a do d[i] = (a[i] and 1 or 0) - (b[i] and 1 or 0) end
  local t, m = S.sign_flip(d), S.mcnemar(a, b)
  T.eq(t.method, "exact"); near(t.p, m.p, 1e-12, "= McNemar exact"); T.eq(t.units, m.b01 + m.b10)
  -- By cluster: the signs flip per cluster, so three clusters give at most 2^3 assignments.
  local c = S.sign_flip({1, 1, 1, 1, 0.5, 0.5}, {clusters = {"x", "x", "y", "y", "z", "z"}})
  T.eq(c.units, 3); near(c.p, 2 / 8, 1e-12)   -- all positive: only all-plus and all-minus reach |5|
  T.eq(S.sign_flip({0, 0, 0}).p, 1)
  -- Monte Carlo above 16 units, seeded.
  local many = {}
  for i = 1, 40 do many[i] = (i % 5 == 0) and -1 or 1 end
  local mc = S.sign_flip(many, {iters = 4000, seed = 3})
  T.eq(mc.method, "monte carlo"); T.ok(mc.p < 0.01, tostring(mc.p)); T.eq(S.sign_flip(many, {iters = 4000, seed = 3}).p, mc.p)
  T.err(function() S.sign_flip({1, 2}, {clusters = {"a"}}) end, "clusters[2] is missing")
end)

T.test("stats.bootstrap_ci with clusters", function()
  -- Two clusters at 0 and 1: resampling clusters gives means of 0, 0.5 or 1, a far wider interval than items.
  local xs, cl = {}, {}
  for i = 1, 20 do xs[i] = i <= 10 and 1 or 0; cl[i] = i <= 10 and "a" or "b" end
  local lo, hi, m = S.bootstrap_ci(xs, {clusters = cl})
  near(m, 0.5); near(lo, 0); near(hi, 1)
  local ilo, ihi = S.bootstrap_ci(xs)
  T.ok(ilo > 0.2 and ihi < 0.8, "the item bootstrap is narrower")
  local d = S.paired(xs, xs, {clusters = cl})
  near(d.diff, 0); near(d.lo, 0); near(d.hi, 0)
end)

T.test("stats.ranks, pearson, spearman", function()
  local r = S.ranks({30, 10, 20, 10})
  T.eq(r[1], 4.0); T.eq(r[2], 1.5); T.eq(r[3], 3.0); T.eq(r[4], 1.5)
  -- python: numpy.corrcoef([1, 2, 3, 4], [2, 4, 5, 9])[0, 1] -> 0.9647638212377321
  near(S.pearson({1, 2, 3, 4}, {2, 4, 5, 9}), 0.9647638212377321, 1e-12)
  near(S.spearman({1, 2, 3, 4, 5}, {2, 1, 4, 3, 5}), 0.8, 1e-12)
  -- python: scipy.stats.spearmanr([1, 2, 2, 3], [1, 2, 3, 4])[0] -> 0.9486832980505139 (ties: average ranks)
  near(S.spearman({1, 2, 2, 3}, {1, 2, 3, 4}), 0.9486832980505138, 1e-12)
  T.eq(S.spearman({1, 1, 1}, {1, 2, 3}), nil, "a constant list has no correlation")
  T.err(function() S.pearson({1, 2}, {1, 2, 3}) end, "the two lists differ in length (2 and 3)")
end)

T.test("lm.extract.final: the number after the last phrase", function()
  T.eq(lm.extract.final("40 + 32 = 72 clips. The answer is 72"), 72)
  T.eq(lm.extract.final("The answer is 5. Wait. The answer is $1,234.5 and 9"), 1234.5)
  T.eq(lm.extract.final("The answer is -3"), -3)
  T.eq(lm.extract.final("no phrase here: 5"), nil)
  T.eq(lm.extract.final("The answer is unknown, 7 maybe"), nil)
  T.eq(lm.extract.final("Answer: 12", "Answer:"), 12)
  T.err(function() lm.extract.final(5) end, "text must be a string")
  T.err(function() lm.extract.final("x", "") end, "phrase must be a non-empty string")
end)

T.done()
