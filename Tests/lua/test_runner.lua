-- The experiment runner (scripts/experiments/run.lua), run as users run it: `refrain run` in a child process, on
-- the default model, with two cheap strategies (Tests/lua/scripts/strategies/tiny.lua) and three items. Checks the
-- files it writes, the report's numbers against the result lines, resuming after a cut-off file and after a kill,
-- --report alone, and its errors. Arguments: the refrain binary and the model file.
local here = arg[0]:match("(.*/)") or "./"
local T = dofile(here .. "check.lua")
local BIN, MODEL = assert(arg[1], "arg 1: the refrain binary"), assert(arg[2], "arg 2: the model file")
local RUNNER = here .. "../../scripts/experiments/run.lua"
local TMP = T.tmpdir()
local q, sh, read = T.q, T.sh, T.read
package.path = here .. "../../scripts/?.lua;" .. package.path
local grading = require "experiments.grading"

local STRATEGIES = "g=tiny.greedy{max_tokens=8},s=tiny.sampled{n=2,max_tokens=8}"
local function runner(args, env)
  return sh((env or "") .. " " .. q(BIN) .. " run --model " .. q(MODEL) .. " " .. q(RUNNER) .. " " .. args)
end
local function experiment(dir, extra)
  return runner("--data arithmetic --n 3 --seed 1 --strategies " .. q(STRATEGIES) .. " --out " .. q(dir) .. " " .. (extra or ""))
end

local function lines_of(path)
  local out = {}
  for line in (read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

local function results(dir)
  local out = {}
  for i, l in ipairs(lines_of(dir .. "/results.jsonl")) do out[i] = lm.json.decode(l) end
  return out
end

-- The report's table rows without the seconds column (which depends on the machine's load).
local function table_rows(dir)
  local rows = {}
  for line in (read(dir .. "/results.md") or ""):gmatch("[^\n]+") do
    if line:match("^| [gs] |") then rows[#rows + 1] = line:gsub("| [^|]* |$", "|") end
  end
  return table.concat(rows, "\n")
end

local function near(got, want, msg)
  if type(got) ~= "number" or math.abs(got - want) > 1e-9 then
    error((msg or "") .. ": expected " .. tostring(want) .. ", got " .. tostring(got), 2)
  end
end

local A = TMP .. "/a"
local code, out = experiment(A)

T.test("a run writes one line per (item, strategy) and the report files", function()
  T.eq(code, 0, out)
  T.ok(out:find("3 items × 2 strategies on ", 1, true) and out:find("6 to run, 0 skipped", 1, true), out)
  for _, f in ipairs({"results.jsonl", "results.md", "results.csv", "summary.json", "accuracy.svg", "run.json"}) do
    T.ok(read(A .. "/" .. f), "missing " .. f)
  end
  local rs = results(A)
  T.eq(#rs, 6)
  local seen = {}
  for _, r in ipairs(rs) do
    T.ok(r.strategy == "g" or r.strategy == "s", r.strategy)
    seen[r.item .. r.strategy] = true
    T.eq(r.seed, 1000000 + 1000 * r.index, "the item's seed")
    T.eq(r.extra.seed_seen, r.seed, "the strategy got the item's seed")
    T.eq(type(r.correct), "boolean")
    T.eq(r.graded_by, r.strategy == "g" and "runner" or "strategy")
    T.eq(r.injected[1].label, "ask")
    T.ok(r.injected[1].text:find("Answer with a number.", 1, true))
    T.eq(r.tokens.calls, 1); T.eq(#r.calls, 1)
    local c = r.calls[1]
    T.eq(c.kind, r.strategy == "g" and "generate" or "sample")
    T.eq(#c.outputs, r.strategy == "g" and 1 or 2)
    T.eq(r.tokens.completion, r.strategy == "g" and 8 or 16)
    T.eq(type(c.outputs[1].text), "string")
    T.eq(c.outputs[1].ids, nil, "token ids are left out"); T.eq(c.outputs[1].logprobs, nil)
    T.ok(c.prompt:find(r.injected[1].text, 1, true), "the prompt is kept")
    if r.strategy == "s" then T.eq(r.dropped[1], "blob", "a large field is dropped and named") end
    T.eq(r.model, MODEL:match("([^/]+)$"))
  end
  T.eq(rs[1].item, "arith-mixed-s1-1"); T.eq(rs[1].strategy, "g"); T.eq(rs[2].strategy, "s")
  T.eq(rs[1].seed, rs[2].seed, "both strategies get the same seed for an item")
  local n = 0
  for _ in pairs(seen) do n = n + 1 end
  T.eq(n, 6, "no pair twice")
end)

T.test("the report's numbers are the result lines'", function()
  local rs = results(A)
  local by = {g = {}, s = {}}
  for _, r in ipairs(rs) do by[r.strategy][r.index] = r end
  local summary = lm.json.decode(read(A .. "/summary.json"))
  T.eq(summary.baseline, "g"); T.eq(summary.n, 3); T.eq(#summary.strategies, 2)
  local md = read(A .. "/results.md")
  T.ok(md:find("--strategies '" .. STRATEGIES .. "'", 1, true), "the exact command is at the top:\n" .. md)
  -- The arithmetic items carry their template: intervals resample templates, the test flips signs by template.
  local clusters = {}
  for i = 1, 3 do clusters[i] = by.g[i].template; T.eq(type(clusters[i]), "string", "item " .. i .. "'s template") end
  for k, name in ipairs({"g", "s"}) do
    local correct, own, completion, calls = {}, {}, 0, 0
    for i = 1, 3 do
      correct[i] = grading.line(by[name][i]).correct and 1 or 0   -- the common grader's verdict
      own[i] = by[name][i].correct and 1 or 0
      completion = completion + by[name][i].tokens.completion
      calls = calls + by[name][i].tokens.calls
    end
    local e = summary.strategies[k]
    T.eq(e.name, name); T.eq(e.items, 3); T.eq(e.clustered, true)
    local lo, hi, acc = lm.stats.bootstrap_ci(correct, {clusters = clusters})
    near(e.accuracy, acc, name .. " accuracy"); near(e.ci[1], lo, name .. " lo"); near(e.ci[2], hi, name .. " hi")
    near(e.accuracy_own_grader, lm.stats.mean(own), name .. " own grader")
    near(e.tokens.completion, completion / 3, name .. " tokens"); near(e.calls, calls / 3, name .. " calls")
    local row = ("| %s | 3 | %.3f [%.3f, %.3f] | "):format(name, acc, lo, hi)
    T.ok(md:find(row, 1, true), "row " .. row .. " in\n" .. md)
    T.ok(md:find((" | %.1f | %.2f | "):format(completion / 3, calls / 3), 1, true), "tokens and calls of " .. name)
    T.eq(e.truncation.traces, name == "g" and 3 or 3, "one final text a line (s reads its first sample)")
    if name == "s" then
      local base = {}
      for i = 1, 3 do base[i] = grading.line(by.g[i]).correct and 1 or 0 end
      local diffs = {}
      for i = 1, 3 do diffs[i] = correct[i] - base[i] end
      local d, t = lm.stats.paired(correct, base, {clusters = clusters}), lm.stats.sign_flip(diffs, {clusters = clusters})
      near(e.paired.diff, d.diff, "diff"); near(e.paired.ci[1], d.lo, "diff lo"); near(e.paired.ci[2], d.hi, "diff hi")
      near(e.test.p, t.p, "sign-flip p"); near(e.test.holm, t.p, "one comparison: Holm p = p")
      T.ok(e.test.method:find("by template", 1, true), e.test.method)
      T.ok(md:find(("| %+.3f [%+.3f, %+.3f] | %.3f | %.3f | %d / %d |"):format(d.diff, d.lo, d.hi, t.p, t.p, d.wins,
        d.losses), 1, true), md)
    end
  end
  T.eq(summary.comparisons, 1)
  T.ok(md:find("1 comparison in this table", 1, true), md)
  T.ok(not md:find(TMP, 1, true), "results.md names no path of this machine (the --out folder is DIR)")
  local csv = lines_of(A .. "/results.csv")
  T.eq(#csv, 3)
  T.ok(csv[1]:find("^strategy,call,items,item_runs,correct,accuracy,accuracy_lo,accuracy_hi,"), csv[1])
  T.ok(csv[2]:find('^g,"tiny.greedy{""max_tokens"":8}",3,'), csv[2])
  local svg = read(A .. "/accuracy.svg")
  local bars = 0
  for _ in svg:gmatch('<rect class="bar"') do bars = bars + 1 end
  T.eq(bars, 2); T.ok(svg:find(">g</text>", 1, true) and svg:find(">s</text>", 1, true), "the strategies label the bars")
  T.ok(svg:find("arithmetic (seed 1), 3 items", 1, true), "the title names the data set")
end)

T.test("--seeds 2 adds a second seed set to the same folder; the report pools the sets", function()
  local S2 = TMP .. "/seeds"
  local c, o = experiment(S2)
  T.eq(c, 0, o)
  c, o = experiment(S2, "--seeds 2")
  T.eq(c, 0, o)
  T.ok(o:find("3 items × 2 strategies × 2 seed sets on ", 1, true) and o:find("6 to run, 6 skipped", 1, true), o)
  local rs = results(S2)
  T.eq(#rs, 12)
  local by = {}
  for _, r in ipairs(rs) do
    T.ok(r.seed_set == 1 or r.seed_set == 2, tostring(r.seed_set))
    T.eq(r.seed, 1000000 + 1000 * r.index + (r.seed_set - 1) * 1000000000000, "seed set " .. r.seed_set)
    T.eq(r.extra.seed_seen, r.seed)
    by[r.strategy .. r.index .. "@" .. r.seed_set] = r
  end
  local summary = lm.json.decode(read(S2 .. "/summary.json"))
  T.eq(summary.seeds, 2)
  for k, name in ipairs({"g", "s"}) do
    local e, per_item, per_set = summary.strategies[k], {}, {0, 0}
    for i = 1, 3 do
      local a = grading.line(by[name .. i .. "@1"]).correct and 1 or 0
      local b = grading.line(by[name .. i .. "@2"]).correct and 1 or 0
      per_item[i] = (a + b) / 2
      per_set[1], per_set[2] = per_set[1] + a / 3, per_set[2] + b / 3
    end
    near(e.accuracy, lm.stats.mean(per_item), name .. ": the mean of the items' means")
    T.eq(e.item_runs, 6); near(e.per_seed_set[1].accuracy, per_set[1]); near(e.per_seed_set[2].accuracy, per_set[2])
    near(e.spread.min, math.min(per_set[1], per_set[2])); near(e.spread.max, math.max(per_set[1], per_set[2]))
  end
  -- Greedy answers do not depend on the seed: both sets agree.
  for i = 1, 3 do T.eq(by["g" .. i .. "@1"].answer, by["g" .. i .. "@2"].answer) end
  local md = read(S2 .. "/results.md")
  T.ok(md:find("| g | 3 × 2.0 |", 1, true) and md:find("seed-set spread", 1, true), md)
  T.ok(md:find("Accuracy per seed set", 1, true), md)
  -- A deterministic arm runs in set 1 only; its line stands for every set.
  local D = TMP .. "/deterministic"
  c, o = experiment(D, "--seeds 2 --deterministic g")
  T.eq(c, 0, o)
  T.ok(o:find("9 to run, 0 skipped", 1, true), o)
  local sets = {g = {}, s = {}}
  for _, r in ipairs(results(D)) do sets[r.strategy][#sets[r.strategy] + 1] = r.seed_set end
  T.eq(#sets.g, 3, "g: set 1 only"); T.eq(#sets.s, 6)
  for _, set in ipairs(sets.g) do T.eq(set, 1) end
  local dmd = read(D .. "/results.md")
  T.ok(dmd:find("| g | 3 × 1 (deterministic) |", 1, true), dmd)
  T.ok(not dmd:find("Incomplete", 1, true), "a deterministic arm is not incomplete:\n" .. dmd)
  local ds = lm.json.decode(read(D .. "/summary.json"))
  T.eq(ds.strategies[1].spread.min, ds.strategies[1].spread.max, "the same accuracy in both sets")
  c, o = runner("--data arithmetic --n 3 --seed 1 --strategies " .. q(STRATEGIES) .. " --out " .. q(D)
    .. " --seeds 2 --deterministic nope")
  T.eq(c, 2, o); T.ok(o:find("--deterministic nope is not one of the strategies", 1, true), o)
end)

T.test("a second runner on the same folder is refused while the first runs", function()
  local L = TMP .. "/locked"
  local first = io.popen("REFRAIN_TEST_DELAY=1 " .. q(BIN) .. " run --model " .. q(MODEL) .. " " .. q(RUNNER)
    .. " --data arithmetic --n 3 --seed 1 --strategies " .. q(STRATEGIES) .. " --out " .. q(L) .. " 2>&1", "r")
  -- Wait for the first to hold the lock (its note names its pid).
  local t0 = lm.clock()
  while not (read(L .. "/.lock") or ""):find("^pid %d+") and lm.clock() - t0 < 60 do os.execute("sleep 0.2") end
  local c, o = experiment(L)
  T.eq(c, 1, o)
  T.ok(o:find(L .. " is in use by another runner (pid ", 1, true), o)
  local text = first:read("a")
  first:close()
  T.eq(#results(L), 6, "the first runner ran every pair once:\n" .. text)
  c, o = experiment(L)
  T.eq(c, 0, o)
  T.ok(o:find("0 to run, 6 skipped", 1, true), "the lock is gone with the process:\n" .. o)
end)

T.test("--report alone rewrites the same report, and --baseline changes the comparison", function()
  local before = read(A .. "/results.md")
  local c, o = runner("--report --out " .. q(A))
  T.eq(c, 0, o)
  T.eq(read(A .. "/results.md"), before)
  c, o = runner("--report --baseline s --out " .. q(A))
  T.eq(c, 0, o)
  T.ok(read(A .. "/results.md"):find("Δ vs s", 1, true))
  T.ok(read(A .. "/results.md"):find("| s | 3 | [^|]* | %(baseline%) |"))
  runner("--report --out " .. q(A))
end)

T.test("--report gives arithmetic lines written without their template the generator's, as a new run's", function()
  local O = TMP .. "/old"
  T.sh("mkdir -p " .. q(O))
  local old = {}
  for i, r in ipairs(results(A)) do r.template = nil; old[i] = lm.json.encode(r) end
  local text = table.concat(old, "\n") .. "\n"
  local f = assert(io.open(O .. "/results.jsonl", "w")); f:write(text); f:close()
  f = assert(io.open(O .. "/run.json", "w")); f:write(read(A .. "/run.json")); f:close()
  local c, o = runner("--report --out " .. q(O))
  T.eq(c, 0, o)
  T.eq(table_rows(O), table_rows(A), "the same clustered intervals and test")
  T.ok(read(O .. "/results.md"):find("signs flipped per template", 1, true))
  T.eq(read(O .. "/results.jsonl"), text, "the lines on disk are left as they are")
end)

T.test("a cut-off file resumes: pairs already there are skipped, an unfinished last line is dropped", function()
  local B = TMP .. "/b"
  os.execute("mkdir -p " .. q(B))
  local kept = lines_of(A .. "/results.jsonl")
  local f = io.open(B .. "/results.jsonl", "w")
  f:write(kept[1], "\n", kept[2], "\n", kept[3]:sub(1, 40))     -- as if killed while writing the third line
  f:close()
  -- --report reads around the unfinished line and leaves the file alone (a run may be writing it).
  os.execute("cp " .. q(A .. "/run.json") .. " " .. q(B .. "/run.json"))
  local cut = read(B .. "/results.jsonl")
  local c, o = runner("--report --out " .. q(B))
  T.eq(c, 0, o)
  T.ok(o:find("| g | 1 |", 1, true), o)
  T.eq(read(B .. "/results.jsonl"), cut)
  c, o = experiment(B)
  T.eq(c, 0, o)
  T.ok(o:find("dropping an unfinished last line", 1, true), o)
  T.ok(o:find("4 to run, 2 skipped", 1, true), o)
  T.eq(#lines_of(B .. "/results.jsonl"), 6)
  T.eq(table_rows(B), table_rows(A))
  c, o = experiment(B)
  T.eq(c, 0, o)
  T.ok(o:find("0 to run, 6 skipped", 1, true), o)
  T.eq(#lines_of(B .. "/results.jsonl"), 6)
end)

-- Starts the experiment into `dir` in the background (each strategy call sleeping 1 s), kills it with SIGKILL once
-- results.jsonl has `lines` lines, waits for it to be gone; -> the number of lines it left.
local function killed_midway(dir, lines)
  local p = io.popen("REFRAIN_TEST_DELAY=1 " .. q(BIN) .. " run --model " .. q(MODEL) .. " " .. q(RUNNER)
    .. " --data arithmetic --n 3 --seed 1 --strategies " .. q(STRATEGIES) .. " --out " .. q(dir)
    .. " > " .. q(dir .. ".log") .. " 2>&1 & echo $!")
  local pid = p:read("l")
  p:close()
  T.ok(pid and pid:match("^%d+$"), "a child pid")
  local waited = 0
  while #lines_of(dir .. "/results.jsonl") < lines and waited < 300 do os.execute("sleep 0.1"); waited = waited + 1 end
  os.execute("kill -9 " .. pid)
  os.execute("while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.1; done")
  return #lines_of(dir .. "/results.jsonl")
end

T.test("a killed run resumes to the same table", function()
  local C = TMP .. "/c"
  local had = killed_midway(C, 2)
  T.ok(had >= 2 and had < 6, "killed midway, with " .. had .. " lines")
  T.eq(read(C .. "/results.md"), nil, "no report from the killed run")
  local c, o = experiment(C)
  T.eq(c, 0, o)
  T.ok(o:find(("%d to run, %d skipped"):format(6 - had, had), 1, true), o)
  T.eq(table_rows(C), table_rows(A))
  local ra, rc = results(A), results(C)
  local key = function(r) return r.item .. "/" .. r.strategy end
  local want = {}
  for _, r in ipairs(ra) do want[key(r)] = r end
  for _, r in ipairs(rc) do
    T.eq(r.calls[1].outputs[1].text, want[key(r)].calls[1].outputs[1].text, key(r) .. ": the same text")
  end
end)

T.test("a killed run whose results.jsonl is lost resumes from the run store to the same table", function()
  local K = TMP .. "/k"
  local had = killed_midway(K, 3)
  T.ok(had >= 3 and had < 6, "killed midway, with " .. had .. " lines")
  os.remove(K .. "/results.jsonl")
  local c, o = experiment(K)
  T.eq(c, 0, o)
  -- The store keeps a result just after its line is written: a kill between the two loses at most that one.
  local restored = tonumber(o:match("restored (%d+) results from the run store"))
  T.ok(restored and restored >= had - 1 and restored <= had, "restored from the store:\n" .. o)
  T.ok(o:find(("%d to run, %d skipped"):format(6 - restored, restored), 1, true), o)
  T.eq(#lines_of(K .. "/results.jsonl"), 6)
  T.eq(table_rows(K), table_rows(A))
  -- A file moved aside does not make the folder new: the store still has its results, and a changed strategy is
  -- told apart from them, naming the store rather than a line of a file that is not there.
  os.rename(K .. "/results.jsonl", K .. "/moved.jsonl")
  c, o = runner("--data arithmetic --n 3 --seed 1 --strategies 'g=tiny.greedy{max_tokens=9}' --out " .. q(K))
  T.eq(c, 1, o)
  T.ok(o:find("the run store's result for item arith-mixed-s1-1, strategy g, of experiment " .. K, 1, true)
       and o:find("--experiment NAME starts afresh) was run with strategy g =", 1, true), o)
  os.rename(K .. "/moved.jsonl", K .. "/results.jsonl")
  -- Every call the experiment made is in the store with its labels.
  c, o = sh(q(BIN) .. " log calls --experiment " .. q(K) .. " --limit 100")
  T.eq(c, 0, o)
  T.ok(o:find("arith%-mixed%-s1%-1/g") and o:find("arith%-mixed%-s1%-3/s"), o)
end)

T.test("--workers 2 on the local model gives the lines and the table one process gives", function()
  local W = TMP .. "/w"
  local c, o = experiment(W, "--workers 2")
  T.eq(c, 0, o)
  T.ok(o:find("6 to run, 0 skipped", 1, true), o)
  T.ok(o:find("worker 1/2: pid %d+, log ") and o:find("worker 2/2: pid %d+, log "), o)
  T.ok(o:find("each worker loads the model", 1, true), "the warning about local workers:\n" .. o)
  local want, got = T.results_without_timing(A), T.results_without_timing(W)
  T.eq(#got, #want)
  for i = 1, #want do T.eq(got[i], want[i], "line " .. i) end
  T.eq(T.report_without_timing(W), T.report_without_timing(A))
  T.eq(T.csv_without_timing(W), T.csv_without_timing(A))
  T.eq(read(W .. "/workers/plan.json"), nil, "the workers' plan is gone")
  T.eq(read(W .. "/workers/1.jsonl"), nil, "the workers' files are gone")
  c, o = experiment(W, "--workers 2")
  T.eq(c, 0, o)
  T.ok(o:find("0 to run, 6 skipped", 1, true) and not o:find("worker 1/2", 1, true), o)
end)

T.test("--batch 4 decodes pairs together and gives the lines and the table one pair at a time gives", function()
  local B = TMP .. "/batch"
  local c, o = experiment(B, "--batch 4")
  T.eq(c, 0, o)
  T.ok(o:find("6 to run, 0 skipped", 1, true), o)
  local function sorted(lines)
    local out = {}
    for i, l in ipairs(lines) do
      local t = lm.json.decode(l)
      t.batch = nil
      out[i] = lm.json.encode(t)
    end
    table.sort(out)
    return out
  end
  local want, got = sorted(T.results_without_timing(A)), sorted(T.results_without_timing(B))
  T.eq(#got, #want)
  for i = 1, #want do T.eq(got[i], want[i], "line " .. i) end
  for _, r in ipairs(results(B)) do T.eq(r.batch, 4, "each line says it ran in a batch") end
  T.eq(T.report_without_timing(B), T.report_without_timing(A))
  -- Every call is in the store under its own pair's labels, though the pairs' calls were decoded together.
  if lm.store.path() then
    local questions = {}
    for _, it in ipairs(lm.tasks.arithmetic({n = 3, seed = 1})) do questions[it.id] = it.question end
    local calls = lm.store.calls{experiment = B}
    T.eq(#calls, 6, "one call per pair")
    for _, call in ipairs(calls) do
      T.ok(call.prompt:find(questions[call.item], 1, true), "call " .. call.id .. " is item " .. call.item .. "'s")
      T.eq(call.kind, call.strategy == "s" and "sample" or "generate")
      T.ok(call.injected[1] and call.injected[1]:find(questions[call.item], 1, true),
        "call " .. call.id .. " carries the string its own pair injected")
    end
  end
  c, o = experiment(B, "--batch 4")
  T.eq(c, 0, o)
  T.ok(o:find("0 to run, 6 skipped", 1, true), o)
end)

T.test("a worker killed mid-run: the others' lines are kept, the failure named, a rerun completes the table", function()
  local W = TMP .. "/wk"
  local p = io.popen("(REFRAIN_TEST_DELAY=1 " .. q(BIN) .. " run --model " .. q(MODEL) .. " " .. q(RUNNER)
    .. " --data arithmetic --n 3 --seed 1 --strategies " .. q(STRATEGIES) .. " --workers 2 --out " .. q(W)
    .. " > " .. q(W .. ".log") .. " 2>&1; echo $? > " .. q(W .. ".status") .. ") > /dev/null 2>&1 & echo $!")
  p:close()
  -- Worker 2 has item 2 (two pairs): kill it once it has finished the first.
  local pid, waited = nil, 0
  while waited < 600 do
    pid = pid or (read(W .. ".log") or ""):match("worker 2/2: pid (%d+)")
    if pid and #lines_of(W .. "/workers/2.jsonl") >= 1 then break end
    os.execute("sleep 0.1"); waited = waited + 1
  end
  T.ok(pid, "worker 2's pid in the output:\n" .. tostring(read(W .. ".log")))
  os.execute("kill -9 " .. pid)
  waited = 0
  while not read(W .. ".status") and waited < 1200 do os.execute("sleep 0.1"); waited = waited + 1 end
  local o = read(W .. ".log") or ""
  T.eq(tonumber(read(W .. ".status") or ""), 1, o)
  T.ok(o:find("worker 2/2 (pid " .. pid .. ") killed by signal 9; the end of " .. W .. "/workers/2.log:", 1, true), o)
  T.ok(o:find("kept 5 results the workers finished in " .. W .. "/results.jsonl; 1 of 6 pairs are left", 1, true), o)
  T.eq(#lines_of(W .. "/results.jsonl"), 5)
  T.eq(read(W .. "/results.md"), nil, "no report from the failed run")
  T.ok(read(W .. "/workers/2.log"), "the failed worker's log is kept")
  local c
  c, o = experiment(W, "--workers 2")
  T.eq(c, 0, o)
  T.ok(o:find("1 to run, 5 skipped", 1, true), o)
  T.eq(table_rows(W), table_rows(A))
  local want, got = T.results_without_timing(A), T.results_without_timing(W)
  table.sort(want); table.sort(got)
  for i = 1, #want do T.eq(got[i], want[i], "result " .. i) end
end)

T.test("GSM8K from a path; a clear error without one", function()
  local D = TMP .. "/d"
  local c, o = runner("--data gsm8k:" .. q(here .. "fixtures/gsm8k_sample.jsonl") .. " --n 2 --strategy 'g=tiny.greedy{max_tokens=4}' --out " .. q(D))
  T.eq(c, 0, o)
  local rs = results(D)
  T.eq(#rs, 2); T.eq(rs[1].item, "gsm8k-1"); T.eq(rs[1].gold, 12); T.eq(rs[2].item, "gsm8k-2")
  c, o = runner("--data gsm8k --n 2 --strategy g=tiny.greedy --out " .. q(D), "env -u REFRAIN_GSM8K")
  T.eq(c, 1); T.ok(o:find("--data gsm8k needs the GSM8K test set: --data gsm8k:PATH/test.jsonl, or set REFRAIN_GSM8K=PATH", 1, true), o)
  c, o = runner("--data gsm8k --n 2 --strategy g=tiny.greedy --out " .. q(D), "REFRAIN_GSM8K=/nonexistent/test.jsonl")
  T.eq(c, 1); T.ok(o:find("no file at /nonexistent/test.jsonl", 1, true), o)
end)

T.test("errors name the problem", function()
  local E = TMP .. "/e"
  local c, o = runner("--data arithmetic --strategies 'g=tiny' --out " .. q(E))
  T.eq(c, 2); T.ok(o:find("expected NAME=MODULE.FUNCTION{OPTIONS}", 1, true), o)
  c, o = runner("--data arithmetic --strategies 'g=tiny.nope' --out " .. q(E))
  T.eq(c, 1); T.ok(o:find("strategies.tiny has no function 'nope' (it has: fails, greedy, sampled)", 1, true), o)
  c, o = runner("--data arithmetic --strategies 'g=tiny.greedy{seed=3}' --out " .. q(E))
  T.eq(c, 2); T.ok(o:find("sets seed", 1, true), o)
  c, o = runner("--data arithmetic --strategies 'g=tiny.greedy{max_tokens=}' --out " .. q(E))
  T.eq(c, 2); T.ok(o:find("bad options for", 1, true), o)
  c, o = runner("--data arithmetic --strategies 'g=tiny.greedy,g=tiny.sampled' --out " .. q(E))
  T.eq(c, 2); T.ok(o:find("two strategies are named 'g'", 1, true), o)
  c, o = runner("--data arithmetic --strategies g=tiny.greedy --baseline x --out " .. q(E))
  T.eq(c, 2); T.ok(o:find("--baseline x is not one of the strategies", 1, true), o)
  c, o = runner("--data arithmetic --strategies g=tiny.greedy --workers 0 --out " .. q(E))
  T.eq(c, 2); T.ok(o:find("--workers expects an integer >= 1, got '0'", 1, true), o)
  c, o = runner("--data arithmetic --strategies g=tiny.greedy --worker 3/2 --out " .. q(E))
  T.eq(c, 2); T.ok(o:find("--worker expects I/K with 1 <= I <= K, got '3/2'", 1, true), o)
  c, o = runner("--data arithmetic --strategies g=tiny.greedy --worker 1/2 --out " .. q(E))
  T.eq(c, 1); T.ok(o:find("--worker 1/2: no plan at " .. E .. "/workers/plan.json", 1, true), o)
  c, o = sh(q(BIN) .. " run --sandbox --model " .. q(MODEL) .. " " .. q(RUNNER) .. " --data arithmetic --strategies g=tiny.greedy --workers 2 --out " .. q(E))
  T.eq(c, 1); T.ok(o:find("--workers 2 starts child processes, and os.execute or io.popen is not available here (refrain --sandbox): use --workers 1", 1, true), o)
  c, o = runner("--data arithmetic --strategies g=tiny.greedy --frobnicate --out " .. q(E))
  T.eq(c, 2); T.ok(o:find("unknown argument '--frobnicate'", 1, true), o)
  -- The same name with other options cannot resume into the same folder.
  c, o = runner("--data arithmetic --n 3 --strategies 'g=tiny.greedy{max_tokens=9}' --out " .. q(A))
  T.eq(c, 1); T.ok(o:find("use another --out", 1, true), o)
  -- A failing strategy stops the run and records nothing for it.
  c, o = runner("--data arithmetic --n 1 --strategies g=tiny.fails --out " .. q(E))
  T.eq(c, 1); T.ok(o:find("strategy 'g' failed on item arith-mixed-s1-1", 1, true) and o:find("on purpose", 1, true), o)
  T.eq(#lines_of(E .. "/results.jsonl"), 0)
end)

os.execute("rm -rf " .. q(TMP))
T.done()
