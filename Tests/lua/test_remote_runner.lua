-- The experiment runner with --backend: the same experiment on the local model and on two `refrain serve`
-- replicas of it gives the same answers, grades and token counts; run.json and the report name the backends. Two
-- workers (the default with two replicas) each use their own replica and give what one worker gives.
-- Arguments: the refrain binary, the model file, and the two replicas' /v1 URLs.
local here = arg[0]:match("(.*/)") or "./"
local T = dofile(here .. "check.lua")
local BIN, MODEL, A, B = arg[1], arg[2], arg[3], arg[4]
assert(BIN and MODEL and A and B, "usage: test_remote_runner.lua BIN MODEL URL1 URL2")
local RUNNER = here .. "../../scripts/experiments/run.lua"
local TMP = T.tmpdir()
local q, sh = T.q, T.sh
local function read(path) return assert(T.read(path), "cannot read " .. path) end
local function results(dir)
  local out = {}
  for line in read(dir .. "/results.jsonl"):gmatch("[^\n]+") do
    local l = lm.json.decode(line)
    out[l.item .. "/" .. l.strategy] = l
  end
  return out
end

local STRATEGIES = "g=tiny.greedy{max_tokens=8},s=tiny.sampled{n=3,max_tokens=8}"
local COMMON = " --data arithmetic --n 3 --seed 1 --strategies " .. q(STRATEGIES)

T.test("the same experiment locally and on two replicas", function()
  local code, out = sh(q(BIN) .. " run --model " .. q(MODEL) .. " " .. q(RUNNER) .. COMMON .. " --out " .. q(TMP .. "/local"))
  T.eq(code, 0, out)
  code, out = sh(q(BIN) .. " run " .. q(RUNNER) .. COMMON .. " --backend " .. A .. " --backend " .. B .. " --concurrency 3 --out " .. q(TMP .. "/remote"))
  T.eq(code, 0, out)
  T.ok(out:find("worker 1/2: pid %d+ on " .. A:gsub("%p", "%%%0")) and out:find("worker 2/2: pid %d+ on " .. B:gsub("%p", "%%%0")),
       "one worker per replica by default:\n" .. out)
  local l, r = results(TMP .. "/local"), results(TMP .. "/remote")
  local n = 0
  for k, line in pairs(l) do
    n = n + 1
    local other = r[k]
    T.ok(other, "remote result for " .. k)
    T.eq(lm.json.encode(other.answer), lm.json.encode(line.answer), k .. " answer")
    T.eq(other.correct, line.correct, k .. " correct")
    T.eq(other.tokens.completion, line.tokens.completion, k .. " completion tokens")
    T.eq(other.model, "SmolLM2-135M-Instruct.Q4_1")
  end
  T.eq(n, 6)
  local meta = lm.json.decode(read(TMP .. "/remote/run.json"))
  T.eq(meta.backends[1], A); T.eq(meta.backends[2], B)
  T.ok(read(TMP .. "/remote/results.md"):find("served at " .. A .. ", " .. B, 1, true), "the report names the backends")
end)

-- The items whose calls the run store recorded as sent to each backend, e.g. {[A] = "1,3", [B] = "2"}.
local function items_by_backend(store, experiment)
  local code, out = sh("REFRAIN_STORE=" .. q(store) .. " " .. q(BIN) .. " -e " .. q(([[
    local by = {}
    for _, c in ipairs(lm.store.calls{experiment = %q}) do
      by[c.backend] = by[c.backend] or {}
      by[c.backend][tonumber(c.item:match("(%%d+)$"))] = true
    end
    for url, set in pairs(by) do
      local list = {}
      for i in pairs(set) do list[#list + 1] = i end
      table.sort(list)
      print(url .. " " .. table.concat(list, ","))
    end]]):format(experiment)))
  T.eq(code, 0, out)
  local by = {}
  for url, list in out:gmatch("(%S+) (%S+)\n") do by[url] = list end
  return by
end

T.test("two workers on two replicas: each replica serves its worker's items, the same results as one worker", function()
  local store = TMP .. "/store.sqlite"
  local W2, W1 = TMP .. "/w2", TMP .. "/w1"
  local code, out = sh("REFRAIN_STORE=" .. q(store) .. " " .. q(BIN) .. " run " .. q(RUNNER) .. COMMON .. " --backend " .. A .. " --backend " .. B .. " --workers 2 --out " .. q(W2))
  T.eq(code, 0, out)
  T.ok(out:find("6 to run, 0 skipped", 1, true), out)
  code, out = sh("REFRAIN_STORE=" .. q(store) .. " " .. q(BIN) .. " run " .. q(RUNNER) .. COMMON .. " --backend " .. A .. " --backend " .. B .. " --workers 1 --out " .. q(W1))
  T.eq(code, 0, out)
  T.ok(not out:find("worker 1/", 1, true), "--workers 1 runs in the one process:\n" .. out)
  -- Worker 1 takes items 1 and 3 to the first replica, worker 2 item 2 to the second.
  local by = items_by_backend(store, W2)
  T.eq(by[A], "1,3", "the items the first replica served")
  T.eq(by[B], "2", "the items the second replica served")
  local n = 0
  for _ in pairs(by) do n = n + 1 end
  T.eq(n, 2, "no other backend")
  local want, got = T.results_without_timing(W1), T.results_without_timing(W2)
  T.eq(#got, 6); T.eq(#want, 6)
  for i = 1, #want do T.eq(got[i], want[i], "line " .. i) end
  T.eq(T.report_without_timing(W2), T.report_without_timing(W1))
  T.eq(T.csv_without_timing(W2), T.csv_without_timing(W1))
  T.ok(read(W2 .. "/results.md"):find("served at " .. A .. ", " .. B, 1, true), "the report names both backends")
end)

T.test("--backend errors", function()
  local code, out = sh(q(BIN) .. " run " .. q(RUNNER) .. COMMON .. " --backend http://127.0.0.1:1/v1 --out " .. q(TMP .. "/none"))
  T.eq(code, 1, out)
  T.ok(out:find("cannot connect: connection refused", 1, true), out)
  code, out = sh(q(BIN) .. " run " .. q(RUNNER) .. COMMON .. " --backend " .. A .. " --model " .. q(MODEL) .. " --out " .. q(TMP .. "/both"))
  T.eq(code, 2, out); T.ok(out:find("give --model or --backend, not both", 1, true), out)
end)

os.execute("rm -rf " .. q(TMP))
T.done()
