-- lm.remote against `refrain serve` on the same model (arg[1] the server's /v1 URL): the same greedy text, token
-- ids and log-probabilities as the local model, the same scores, samples and choices; chat, template, tokenize;
-- clear errors for what a remote model cannot do; the strategy record working on a remote model.
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local url = assert(arg[1], "usage: test_remote.lua URL")
local m = lm.remote{url = url, timeout = 60}
local l = lm.model
local P = "The capital of France is"
local TOL = 1e-3

local function close(a, b, what)
  T.eq(#a, #b, what .. ": lengths")
  local worst = 0
  for i = 1, #a do worst = math.max(worst, math.abs(a[i] - b[i])) end
  T.ok(worst <= TOL, ("%s: max |Δ| %.2e over %d values exceeds %g"):format(what, worst, #a, TOL))
end

T.test("the model object", function()
  T.eq(m.info.backend, "remote")
  T.eq(m.model, "SmolLM2-135M-Instruct.Q4_1")
  T.eq(m.info.context, l.info.context); T.eq(m.info.vocab, l.info.vocab); T.eq(m.info.bos, l.info.bos)
  T.ok(tostring(m):find(url, 1, true))
  T.err(function() lm.remote{url = url, model = "gpt-4"} end, "does not serve 'gpt-4' (it serves: SmolLM2-135M-Instruct.Q4_1)")
  T.err(function() lm.remote{url = url, modle = "x"} end, "unknown field 'modle'")
  T.err(function() lm.remote{url = "ftp://x"} end, "must start with http://")
end)

T.test("greedy text, ids and log-probabilities equal the local model's", function()
  local opts = {max_tokens = 24, temperature = 0, logprobs = 3}
  local r, g = m:generate(P, opts), l:generate(P, opts)
  T.eq(r.text, g.text)
  T.eq(table.concat(r.ids, ","), table.concat(g.ids, ","))
  close(r.logprobs, g.logprobs, "logprobs")
  for i = 1, #g.top do
    T.eq(#r.top[i], 3)
    for j = 1, 3 do T.eq(r.top[i][j].piece, g.top[i][j].piece, "top piece"); T.ok(math.abs(r.top[i][j].logprob - g.top[i][j].logprob) <= TOL) end
  end
  T.eq(r.finish, g.finish); T.eq(r.usage.prompt, g.usage.prompt); T.eq(r.usage.completion, g.usage.completion)
  T.ok(r.seconds > 0)
end)

T.test("constrained generation through refrain serve equals the local model's, for each form", function()
  T.eq(m.server, "refrain")
  local U = "<|im_start|>user\nIs Paris in France? Then give a person as JSON.<|im_end|>\n<|im_start|>assistant\n"
  local schema = {type = "object", properties = {{"name", {type = "string", maxLength = 12}}, {"age", {type = "integer", minimum = 0}}}, required = {"name", "age"}}
  for _, c in ipairs({{regex = "(Yes|No)\\. [A-Z][a-z]+"}, {choices = {"Yes", "No", "Maybe"}}, {json_schema = schema},
                      {grammar = 'root ::= "Answer: " [0-9]+'}}) do
    local opts = {max_tokens = 40, temperature = 0, logprobs = 1}
    for k, v in pairs(c) do opts[k] = v end
    local r, g = m:generate(U, opts), l:generate(U, opts)
    local key = next(c)
    T.eq(r.text, g.text, key)
    T.eq(table.concat(r.ids, ","), table.concat(g.ids, ","), key)
    close(r.logprobs, g.logprobs, key .. " logprobs")
    if g.finish ~= "incomplete" then T.ok(lm.accepts(c, r.text), key .. ": " .. r.text) end
  end
end)

T.test("token-id prompts, stop strings and the end token", function()
  local ids = l:tokenize(P)
  local r, g = m:generate(ids, {max_tokens = 8, temperature = 0}), l:generate(ids, {max_tokens = 8, temperature = 0})
  T.eq(r.text, g.text)
  local s = m:generate(P, {max_tokens = 20, temperature = 0, stop = "."})
  T.eq(s.text, " Paris"); T.eq(s.finish, "stop")
  local france = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
  local e, le = m:generate(france, {temperature = 0}), l:generate(france, {temperature = 0})
  T.eq(e.text, "The capital of France is Paris."); T.eq(le.finish, "eos"); T.eq(e.finish, "eos")
end)

T.test("chat messages: text and log-probabilities as the local chat template gives", function()
  local msgs = {{role = "system", content = "Answer briefly."}, {role = "user", content = "What is 2 + 2?"}}
  local r, g = m:generate(msgs, {max_tokens = 16, temperature = 0, logprobs = 2}), l:generate(msgs, {max_tokens = 16, temperature = 0, logprobs = 2})
  T.eq(r.text, g.text)
  close(r.logprobs, g.logprobs, "chat logprobs")
  T.eq(r.top[1][1].piece, g.top[1][1].piece)
  T.eq(m:template(msgs), l:template(msgs))
end)

T.test("sample: seeds seed + i, as locally, sent in parallel", function()
  local opts = {max_tokens = 12, temperature = 0.9, seed = 11}
  local rs, gs = m:sample(P, 4, opts), l:sample(P, 4, opts)
  T.eq(#rs, 4)
  for i = 1, 4 do T.eq(rs[i].text, gs[i].text, "sample " .. i) end
  local again = m:sample(P, 2, opts)
  T.eq(again[2].text, rs[2].text)
end)

T.test("score equals the local score", function()
  for _, c in ipairs({" Paris", " Paris, the city of light.", " a city"}) do
    local s, g = m:score(P, c), l:score(P, c)
    T.eq(table.concat(s.ids, ","), table.concat(g.ids, ","))
    close(s.logprobs, g.logprobs, "score " .. c)
    T.ok(math.abs(s.sum - g.sum) <= TOL, "sum"); T.ok(math.abs(s.mean - g.mean) <= TOL, "mean")
  end
  local ids = l:tokenize(" Paris", {bos = false})
  T.ok(math.abs(m:score(l:tokenize(P), ids).sum - l:score(P, " Paris").sum) <= TOL, "ids in, ids out")
end)

T.test("choose by mean, sum and calibrated picks what the local model picks", function()
  local opts = {" Paris", " Rome", " the"}
  for _, by in ipairs({"mean", "sum", "calibrated"}) do
    local best, scores, i = m:choose(P, opts, {by = by})
    local lbest, lscores, li = l:choose(P, opts, {by = by})
    T.eq(best, lbest, by); T.eq(i, li, by)
    for k = 1, #opts do T.ok(math.abs(scores[k].score - lscores[k].score) <= TOL, by .. " score " .. k) end
  end
end)

T.test("tokenize, detokenize, token", function()
  T.eq(table.concat(m:tokenize("Hello world"), ","), table.concat(l:tokenize("Hello world"), ","))
  T.eq(table.concat(m:tokenize("<|im_start|>x", {special = true}), ","), table.concat(l:tokenize("<|im_start|>x", {special = true}), ","))
  T.eq(m:detokenize({19556, 905}), "Hello world")
  T.eq(m:token(2), l:token(2))
end)

T.test("what a server cannot do is an error naming it", function()
  T.err(function() m:attention(P) end, "attention: the remote backend (" .. url .. ") cannot give attention")
  T.err(function() m:hidden(P) end, "cannot give hidden states")
  T.err(function() m:logit_lens(P) end, "cannot give the logit lens")
  T.err(function() m:state(P) end, "cannot give a prompt state")
  T.err(function() m:generate(P, {on_token = function() end}) end, "on_token is not available on the remote backend")
  T.err(function() m:generate(P, {max_tokenz = 1}) end, "unknown option 'max_tokenz'")
  T.err(function() m:generate("", {}) end, "empty prompt")
end)

T.test("every bounded option of lm.options is checked before a request, as the local model checks it", function()
  local n = 0
  for k, spec in pairs(lm.options) do
    local bad = spec.max and spec.max + 1 or spec.min and spec.min - 1
    if bad and spec.type == "integer" then bad = math.tointeger(bad) end
    if bad then
      T.err(function() m:generate(P, {[k] = bad}) end, "option '" .. k .. "' must be")
      if lm.model then T.err(function() lm.model:generate(P, {[k] = bad}) end, "option '" .. k .. "' must be") end
      n = n + 1
    end
  end
  T.ok(n >= 8, "bounded options checked: " .. n)
end)

T.test("the server's 400s come back as errors with its message", function()
  T.err(function() m:generate({999999}, {max_tokens = 1}) end, "HTTP 400: 'prompt' token id 999999 at item 0 is outside the vocabulary")
  T.err(function() m:generate(P, {max_tokens = 9000}) end, "exceed the model's context of 8192 tokens")
end)

-- A raw request to the server: status and decoded body (or the raw text).
local function post(path, body)
  local r = lm.http({url = url .. path, method = "POST", body = body}, {retries = 0, timeout = 60})
  return r.status, lm.json.try_decode(r.body) or r.body, r.body
end

T.test("bad requests are 400s with an OpenAI error naming the problem", function()
  local cases = {
    {"/completions", "{not json", "not valid JSON"},
    {"/completions", "[1, 2]", "must be a JSON object, got array"},
    {"/completions", '{"prompt": "x", "max_tokens": "5"}', "'max_tokens' must be an integer, got string"},
    {"/completions", '{"prompt": "x", "temperature": true}', "'temperature' must be a number, got boolean"},
    {"/completions", '{"prompt": "x", "model": "gpt-4"}', "unknown model 'gpt-4'"},
    {"/completions", '{"max_tokens": 1}', "'prompt' is required"},
    {"/completions", '{"prompt": ["a", "b"]}', "send one prompt per request"},
    {"/completions", '{"prompt": "' .. ("x "):rep(9000) .. '"}', "the prompt is too long"},
    {"/chat/completions", '{"messages": []}', "'messages' must be a non-empty list"},
    {"/chat/completions", '{"messages": [{"role": "user"}]}', "has no 'content' string"},
  }
  for _, c in ipairs(cases) do
    local status, body, raw = post(c[1], c[2])
    T.eq(status, 400, c[2]:sub(1, 40))
    T.ok(type(body) == "table" and type(body.error) == "table", "an error object: " .. raw:sub(1, 80))
    T.ok(body.error.message:find(c[3], 1, true), ("%q in %q"):format(c[3], body.error.message))
    T.eq(body.error.type, "invalid_request_error")
  end
  local r = lm.http({url = url .. "/nowhere", method = "GET"}, {retries = 0})
  T.eq(r.status, 404)
end)

-- The events of a server-sent-event stream.
local function events(raw)
  local out = {}
  for data in raw:gmatch("data: ([^\n]*)\n\n") do out[#out + 1] = data end
  return out
end

T.test("streaming completions and chat: server-sent events ending in [DONE], the same text", function()
  local g = l:generate(P, {max_tokens = 12, temperature = 0})
  local status, _, raw = post("/completions", lm.json.encode({prompt = P, max_tokens = 12, temperature = 0, stream = true, logprobs = 1}))
  T.eq(status, 200)
  local ev = events(raw)
  T.eq(ev[#ev], "[DONE]")
  local text, lps = {}, {}
  for i = 1, #ev - 1 do
    local e = lm.json.decode(ev[i])
    for _, c in ipairs(e.choices) do
      text[#text + 1] = c.text
      if c.logprobs then for _, v in ipairs(c.logprobs.token_logprobs) do lps[#lps + 1] = v end end
    end
  end
  T.eq(table.concat(text), g.text)
  close(lps, g.logprobs, "streamed logprobs")
  T.ok(#ev >= 12, "one event per token at least")
  local msgs = {{role = "user", content = "Say hi"}}
  local gc = l:generate(msgs, {max_tokens = 10, temperature = 0})
  local _, _, craw = post("/chat/completions", lm.json.encode({messages = msgs, max_tokens = 10, temperature = 0, stream = true}))
  local cev, parts = events(craw), {}
  T.eq(cev[#cev], "[DONE]")
  for i = 1, #cev - 1 do
    for _, c in ipairs(lm.json.decode(cev[i]).choices) do parts[#parts + 1] = c.delta.content or "" end
  end
  T.eq(table.concat(parts), gc.text)
end)

T.test("echo gives the prompt's log-probabilities in OpenAI's legacy shape", function()
  local status, body = post("/completions", lm.json.encode({prompt = P .. " Paris", max_tokens = 0, echo = true, logprobs = 2}))
  T.eq(status, 200)
  local c = body.choices[1]
  T.eq(c.text, P .. " Paris")
  local lp = c.logprobs
  T.eq(#lp.tokens, 6); T.eq(lp.token_logprobs[1], nil); T.eq(lp.top_logprobs[1], nil)
  T.eq(lp.text_offset[6], #P); T.eq(lp.tokens[6], " Paris")
  T.ok(math.abs(lp.token_logprobs[6] - l:score(P, " Paris").sum) <= TOL)
  local n = 0
  for _ in pairs(lp.top_logprobs[6]) do n = n + 1 end
  T.eq(n, 2)
end)

T.test("echo over a prompt longer than one 256-position chunk equals the local scores", function()
  local ids = l:tokenize(("The cat sat on the mat, and then it slept. "):rep(23))
  T.ok(#ids > 256, #ids .. " tokens")
  local status, body = post("/completions", lm.json.encode({prompt = ids, max_tokens = 0, echo = true, logprobs = 0}))
  T.eq(status, 200)
  local got = {}
  for i = 2, #ids do got[i - 1] = body.choices[1].logprobs.token_logprobs[i] end
  local rest = {}
  for i = 2, #ids do rest[i - 1] = ids[i] end
  close(got, l:score({ids[1]}, rest).logprobs, "echo logprobs")
end)

T.test("remote calls are in the run store: backend, model, prompt, options, outputs, errors", function()
  if not (lm.store and lm.store.run()) then error("the run store is off for this test process") end
  local run = lm.store.run()
  local r = m:generate(P, {max_tokens = 5, temperature = 0, seed = 3})
  local c = lm.store.calls{id = lm.store.last()}[1]
  T.eq(c.run, run); T.eq(c.kind, "generate"); T.eq(c.backend, url); T.eq(c.model, "SmolLM2-135M-Instruct.Q4_1")
  T.eq(c.prompt, P); T.eq(c.options.seed, 3); T.eq(c.options.max_tokens, 5)
  T.eq(c.outputs[1].text, r.text); T.eq(#c.outputs[1].ids, 5); T.eq(c.outputs[1].finish, "length")
  m:sample(P, 3, {max_tokens = 2, seed = 1})
  T.eq(#lm.store.calls{id = lm.store.last()}[1].outputs, 3)
  local s = m:score(P, " Paris")
  local sc = lm.store.calls{id = lm.store.last()}[1]
  T.eq(sc.kind, "score"); T.ok(math.abs(sc.result.sum - s.sum) < 1e-9)
  pcall(m.generate, m, P, {max_tokens = 9000})
  local e = lm.store.calls{id = lm.store.last()}[1]
  T.ok(e.error and e.error:find("exceed the model's context", 1, true), "the failed call is recorded with its error")
end)

T.test("the strategy record works on a remote model", function()
  local record = require "strategies.record"
  local rec = record.new(m, {strategy = "t"})
  local r = rec:generate(P, {max_tokens = 4, temperature = 0})
  rec:score(P, " Paris")
  local best = rec:choose(P, {" Paris", " Rome"})
  local res = rec:result{answer = r.text}
  T.eq(res.tokens.calls, 3); T.eq(best, " Paris"); T.ok(res.tokens.scored >= 3)
end)

T.done()
