-- lm.remote against a misbehaving server (Tests/tools/fake_openai.py at arg[1]): time-outs, bad JSON, retries on
-- 5xx and 429 with backoff, the API key, and a server that dies mid-run; each ends in a clear error or a success.
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local url = assert(arg[1], "usage: test_remote_faults.lua URL")
local KEY = os.getenv("FAKE_KEY")

local function remote(spec)
  spec.url = url
  return lm.remote(spec)
end

T.test("a slow server is a time-out error naming the request", function()
  local m = remote{timeout = 0.5, retries = 1, backoff = 0.05}
  local t = lm.clock()
  local msg = T.err(function() m:generate("slow", {max_tokens = 1}) end, "no response within 0.5 s (timeout) (2 attempts)")
  T.ok(msg:find("POST " .. url .. "/completions", 1, true), msg)
  T.ok(lm.clock() - t < 3, "two half-second attempts, not the server's five seconds")
end)

T.test("a response that is not JSON is a clear error", function()
  local m = remote{retries = 0}
  T.err(function() m:generate("malformed", {max_tokens = 1}) end, "the response is not a JSON object")
end)

T.test("a 500 is retried and the retry succeeds", function()
  local m = remote{retries = 2, backoff = 0.05}
  local r = m:generate("flaky500", {max_tokens = 1})
  T.eq(r.text, "asked 2 times")
  T.eq(r.logprobs[1], -0.5)
end)

T.test("429s are retried with exponential backoff", function()
  local m = remote{retries = 3, backoff = 0.2}
  local t = lm.clock()
  T.eq(m:generate("flaky429", {max_tokens = 1}).text, "asked 3 times")
  T.ok(lm.clock() - t >= 0.2 + 0.4, "waited 0.2 s then 0.4 s")
  local t2 = lm.clock()
  T.eq(m:generate("retry-after", {max_tokens = 1}).text, "asked 2 times")
  T.ok(lm.clock() - t2 >= 1, "Retry-After: 1 is honoured")
end)

T.test("5xx past the retries is an error with the server's message and the attempts", function()
  local m = remote{retries = 2, backoff = 0.01}
  T.err(function() m:generate("always500", {max_tokens = 1}) end, "HTTP 503: overloaded (after 3 attempts)")
end)

T.test("sample requests go in parallel up to the concurrency limit", function()
  local m = remote{retries = 0, concurrency = 4}
  local rs = m:sample("parallel", 4, {max_tokens = 1})
  local seen = {}
  for _, r in ipairs(rs) do seen[r.text] = true end
  for i = 1, 4 do T.ok(seen["asked " .. i .. " times"], "request " .. i) end
end)

T.test("the API key comes from the named variable and never shows", function()
  T.err(function() remote{api_key_env = "REFRAIN_NO_SUCH_VARIABLE"} end, "the environment variable REFRAIN_NO_SUCH_VARIABLE (api_key_env) is not set")
  local bad = remote{retries = 0}
  local msg = T.err(function() bad:generate("auth", {max_tokens = 1}) end, "HTTP 401: bad key")
  local m = remote{api_key_env = "FAKE_KEY", retries = 0}
  T.eq(m:generate("auth", {max_tokens = 1}).text, "asked 2 times")
  T.ok(not msg:find(KEY, 1, true) and not tostring(m):find(KEY, 1, true) and not lm.pretty(m):find(KEY, 1, true))
  T.ok(lm.store and lm.store.run(), "the run store is on for this test process")
  local calls = lm.store.calls{run = lm.store.run()}
  T.ok(#calls >= 2, "the calls are recorded")
  T.ok(not lm.json.encode(calls):find(KEY, 1, true), "the key is not in the store")
end)

T.test("scoring without /tokenize: by text offsets, or a clear error", function()
  local m = remote{retries = 0}
  local s = m:score("scored", " text")
  T.eq(#s.logprobs, 2); T.eq(s.sum, -1.75); T.eq(s.mean, -0.875); T.eq(s.tokens[1], " te"); T.eq(s.ids, nil)
  T.err(function() m:score("straddle", " x") end, "the server's tokens straddle the prefix/continuation boundary")
  T.err(function() m:score("noecho", " x") end, "gave no prompt log-probabilities (echo with logprobs): it cannot score")
  T.err(function() m:tokenize("x") end, "has no /tokenize")
  T.err(function() m:score({1, 2}, " x") end, "has no /tokenize")
  T.err(function() m:template({{role = "user", content = "x"}}) end, "has no /apply-template")
end)

T.test("scoring through prompt_logprobs (vLLM's form), chosen by lm.remote's scoring field", function()
  local v = remote{retries = 0, scoring = "prompt_logprobs"}
  local s = v:score({900, 5}, {6, 7})
  T.eq(#s.ids, 2); T.eq(s.ids[1], 6); T.eq(s.ids[2], 7); T.eq(s.logprobs[1], -0.5); T.eq(s.logprobs[2], -0.75)
  T.eq(s.sum, -1.25); T.eq(s.mean, -0.625)
  T.err(function() v:score("text prefix", " x") end, "scoring with prompt_logprobs needs the server's /tokenize")
  -- The same server with echo scoring (the default) refuses: its error comes through.
  T.err(function() remote{retries = 0}:score({900, 5}, {6, 7}) end, "HTTP 400: echo is not supported")
  T.err(function() remote{scoring = "guess"} end, "lm.remote: scoring must be \"echo\" or \"prompt_logprobs\", got \"guess\"")
end)

T.test("constraints go out as each server names them; a server without them is an error naming the option", function()
  local schema = '{"type":"object","properties":{"z":{"type":"integer"},"a":{"type":"string"}},"required":["z","a"]}'
  local openai = remote{}
  T.err(function() openai:generate("constrained", {regex = "[0-9]+"}) end,
    "regex is not available on the server at " .. url .. " (openai servers take only json_schema)")
  T.err(function() openai:generate("constrained", {choices = {"a", "b"}}) end, "choices is not available")
  T.eq(openai:generate("constrained", {json_schema = schema}).text,
    '{"response_format":{"json_schema":{"name":"output","schema":' .. schema .. ',"strict":true},"type":"json_schema"}}')
  local vllm = remote{server = "vllm"}
  T.eq(vllm:generate("constrained", {regex = "[0-9]+"}).text, '{"guided_regex":"[0-9]+"}')
  T.eq(vllm:generate("constrained", {choices = {"yes", "no"}}).text, '{"guided_choice":["yes","no"]}')
  T.eq(vllm:generate("constrained", {json_schema = schema}).text, '{"guided_json":' .. schema .. '}')
  -- a Lua table: its keys sorted, properties given as pairs in their order
  T.eq(vllm:generate("constrained", {json_schema = {type = "object", properties = {{"z", {type = "integer"}}, {"a", {type = "string"}}}}}).text,
    '{"guided_json":{"properties":{"z":{"type":"integer"},"a":{"type":"string"}},"type":"object"}}')
  T.eq(vllm:generate("constrained", {grammar = 'root ::= "a"'}).text, '{"guided_grammar":"root ::= \\"a\\""}')
  T.err(function() vllm:generate("constrained", {regex = "[0-9"}) end, "regex: position")
  T.err(function() vllm:generate("constrained", {regex = "a", choices = {"a"}}) end, "give at most one of grammar, regex, choices and json_schema")
  -- llama.cpp: the GBNF grammar itself; the echoed fields are not a sentence of it, so the result is refused
  local llama = remote{server = "llama.cpp"}
  T.err(function() llama:generate("constrained", {regex = "[0-9]+"}) end,
    "returned text outside the constraint (regex): it did not apply it: \"{\\\"grammar\\\":\\\"root ::= ([0-9])+")
  T.err(function() remote{server = "tgi"} end, 'server must be "llama.cpp", "vllm", "refrain" or "openai", got "tgi"')
end)

T.test("a server killed mid-run is a clear connection error", function()
  local m = remote{retries = 2, backoff = 0.05, timeout = 5}
  local msg = T.err(function() m:generate("die", {max_tokens = 1}) end, "POST " .. url .. "/completions: ")
  T.ok(msg:find("the connection closed before the response ended") or msg:find("cannot connect: connection refused"), msg)
  T.ok(msg:find("(3 attempts)", 1, true), msg)
  T.err(function() m:generate("after", {max_tokens = 1}) end, "cannot connect: connection refused (3 attempts)")
end)

T.done()

