-- lm.remote against llama.cpp's own server (llama-cpp-python's, at arg[1]) on the default model: the same greedy
-- text as the local model, and generated tokens' log-probabilities within llama.cpp's numerical spread (median
-- |Δ| ≤ 0.05 nats, max ≤ 1.5, as Tests/EngineTests/ReferenceTests.swift allows). Scoring is not compared: this
-- server's echoed prompt log-probabilities are misaligned by one position (see docs/scale-out.md).
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local url = assert(arg[1], "usage: test_remote_llamacpp.lua URL")
local m = lm.remote{url = url, timeout = 120}
local l = lm.model

local PROMPTS = {
  "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
  "The capital of France is",
  "Once upon a time, there was a little",
  "def fibonacci(n):",
}

-- Compares a remote greedy generation with the local one token by token (by piece): identical up to the first
-- near-tie, where the local model's two best tokens are within MARGIN nats (the tie margin ReferenceTests uses for
-- SmolLM2), as llama.cpp's own runs differ there with batch shapes and caches. Returns the log-probability
-- differences before that point and the number of tokens compared.
local MARGIN = 0.5
local function compare(p, r, g, diffs)
  local n = math.min(#r.top, #g.top)
  for i = 1, n do
    local rp, gp = r.top[i][1].piece, g.top[i][1].piece
    if rp ~= gp then
      local margin = g.top[i][1].logprob - g.top[i][2].logprob
      T.ok(margin < MARGIN, ("%q: token %d differs (%q here, %q there) where the local margin is %.3f, not a near-tie"):format(p, i, gp, rp, margin))
      return i - 1
    end
    diffs[#diffs + 1] = math.abs(r.logprobs[i] - g.logprobs[i])
  end
  T.eq(#r.top, #g.top, p .. ": lengths")
  return n
end

local diffs, same = {}, 0
T.test("greedy text equals the local model's up to a near-tie, log-probabilities within llama.cpp's spread", function()
  for _, p in ipairs(PROMPTS) do
    local opts = {max_tokens = 16, temperature = 0, logprobs = 2}
    local r, g = m:generate(p, opts), l:generate(p, opts)
    local k = compare(p, r, g, diffs)
    if k == #g.top then same = same + 1 end
  end
  table.sort(diffs)
  local median, max = diffs[(#diffs + 1) // 2], diffs[#diffs]
  print(("llama.cpp server vs local: %d of %d texts identical; %d tokens compared, |Δ logprob| median %.4f max %.4f"):format(same, #PROMPTS, #diffs, median, max))
  T.eq(m:generate(PROMPTS[1], {temperature = 0}).text, "The capital of France is Paris.")
  T.ok(#diffs >= 24, "compared " .. #diffs .. " tokens")
  T.ok(median <= 0.05, ("median |Δ| %.4f > 0.05"):format(median))
  T.ok(max <= 1.5, ("max |Δ| %.4f > 1.5"):format(max))
end)

T.test("chat messages through the server's chat template", function()
  local msgs = {{role = "user", content = "What is the capital of France?"}}
  local opts = {max_tokens = 12, temperature = 0, logprobs = 2}
  local r, g = m:generate(msgs, opts), l:generate(msgs, opts)
  T.ok(compare("chat", r, g, {}) >= 3, "the first tokens agree")
end)

T.test("constrained greedy text equals the local model's up to a near-tie: the same GBNF grammar on both sides", function()
  T.eq(m.server, "llama.cpp")
  local U = "<|im_start|>user\nGive a person as JSON.<|im_end|>\n<|im_start|>assistant\n"
  local schema = '{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150}},"required":["name","age"]}'
  local n = 0
  for _, c in ipairs({{json_schema = schema}, {regex = "[A-Z][a-z]+ is [0-9]+ years old\\."}, {choices = {"Paris", "London", "Rome"}},
                      {grammar = 'root ::= "The answer is " ("yes" | "no") "."'}}) do
    local opts = {max_tokens = 40, temperature = 0, logprobs = 2}
    for k, v in pairs(c) do opts[k] = v end
    local r, g = m:generate(U, opts), l:generate(U, opts)
    local k = compare(next(c), r, g, {})
    if k == #g.top then n = n + 1 end
    print(("%s: local %q, llama.cpp %q"):format(next(c), g.text, r.text))
  end
  T.ok(n >= 2, n .. " of 4 constrained texts identical")
end)

T.test("what llama-cpp-python's server lacks is an error naming it", function()
  T.err(function() m:tokenize("Hello") end, "has no /tokenize")
  T.err(function() m:template({{role = "user", content = "Hi"}}) end, "has no /apply-template")
end)

T.done()
