-- The experiment runner with --backend: the same experiment on the local model and on two `refrain serve`
-- replicas of it gives the same answers, grades and token counts; run.json and the report name the backends.
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

T.test("--backend errors", function()
  local code, out = sh(q(BIN) .. " run " .. q(RUNNER) .. COMMON .. " --backend http://127.0.0.1:1/v1 --out " .. q(TMP .. "/none"))
  T.eq(code, 1, out)
  T.ok(out:find("cannot connect: connection refused", 1, true), out)
  code, out = sh(q(BIN) .. " run " .. q(RUNNER) .. COMMON .. " --backend " .. A .. " --model " .. q(MODEL) .. " --out " .. q(TMP .. "/both"))
  T.eq(code, 2, out); T.ok(out:find("give --model or --backend, not both", 1, true), out)
end)

os.execute("rm -rf " .. q(TMP))
T.done()
