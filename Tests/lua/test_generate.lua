-- Generation: generate (text, ids, messages), its options and errors, on_token, lm.defaults, sample.
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local m = lm.model
local FRANCE_IDS = {1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198}
local FRANCE = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
local greedy = {temperature = 0}

T.test("greedy answer equals llama.cpp's (ids prompt)", function()
  local r = m:generate(FRANCE_IDS, {temperature = 0, logprobs = 3})
  T.eq(r.text, "The capital of France is Paris.")
  T.eq(table.concat(r.ids, ","), "504,3575,282,4649,314,7042,30")
  T.eq(r.finish, "eos")
  T.eq(r.usage.prompt, 16); T.eq(r.usage.completion, 7)
  T.eq(#r.logprobs, 7); T.eq(#r.top, 7)
  for i, lp in ipairs(r.logprobs) do
    T.ok(lp <= 0, "logprob " .. i)
    T.eq(#r.top[i], 3); T.eq(r.top[i][1].id, r.ids[i], "greedy picks the top alternative")
    T.eq(r.top[i][1].piece, m:token(r.ids[i]))
  end
  T.ok(r.seconds > 0)
end)

T.test("a text prompt parses control tokens", function()
  T.eq(m:generate(FRANCE, greedy).text, "The capital of France is Paris.")
  T.eq(lm.generate(FRANCE, greedy).text, "The capital of France is Paris.")
end)

T.test("messages go through the chat template", function()
  local msgs = {{role = "user", content = "What is the capital of France?"}}
  local a = m:generate(msgs, {temperature = 0, max_tokens = 8})
  local b = m:generate(m:template(msgs), {temperature = 0, max_tokens = 8})
  T.eq(a.text, b.text)
  T.eq(a.usage.prompt, #m:tokenize(m:template(msgs), {special = true}))
end)

T.test("max_tokens, stop, ignore_eos", function()
  local r = m:generate("The capital of France is", {temperature = 0, max_tokens = 3})
  T.eq(r.finish, "length"); T.eq(#r.ids, 3)
  local s = m:generate("The capital of France is", {temperature = 0, max_tokens = 20, stop = "."})
  T.eq(s.finish, "stop"); T.eq(s.text, " Paris")
  local l = m:generate("The capital of France is", {temperature = 0, max_tokens = 20, stop = {"\n", "Par"}})
  T.eq(l.text, " ")
  local e = m:generate(FRANCE_IDS, {temperature = 0, max_tokens = 10, ignore_eos = true})
  T.eq(e.finish, "length"); T.eq(#e.ids, 10)
  T.eq(m:generate("Hi", {max_tokens = 0}).text, "")
end)

T.test("sampling options and seeds", function()
  local o = {temperature = 1.0, top_k = 50, top_p = 0.9, min_p = 0.01, repeat_penalty = 1.1, repeat_last_n = 32,
             presence_penalty = 0.1, frequency_penalty = 0.1, seed = 42, max_tokens = 16}
  local a, b = m:generate("Once upon a time", o), m:generate("Once upon a time", o)
  T.eq(table.concat(a.ids, ","), table.concat(b.ids, ","), "same seed, same tokens")
  o.seed = 43
  T.ok(table.concat(m:generate("Once upon a time", o).ids, ",") ~= table.concat(a.ids, ","), "another seed differs")
end)

T.test("on_token sees each token and can stop", function()
  local pieces, infos = {}, {}
  local r = m:generate(FRANCE_IDS, {temperature = 0, logprobs = 2, on_token = function(piece, info)
    pieces[#pieces + 1] = piece; infos[#infos + 1] = info
  end})
  T.eq(table.concat(pieces), r.text)
  T.eq(infos[1].index, 1); T.eq(infos[1].id, 504); T.eq(#infos[1].top, 2)
  T.eq(infos[2].logprob, r.logprobs[2])
  local n = 0
  local c = m:generate(FRANCE_IDS, {temperature = 0, on_token = function() n = n + 1; return n < 3 end})
  T.eq(c.finish, "cancelled"); T.eq(#c.ids, 3); T.eq(c.text, "The capital of")
  T.err(function() m:generate(FRANCE_IDS, {on_token = function() error("boom") end}) end, "boom")
end)

T.test("stream writes the text as it comes", function()
  local r = m:generate(FRANCE_IDS, {temperature = 0, stream = true})
  io.write("\n")
  T.eq(r.text, "The capital of France is Paris.")
end)

T.test("lm.defaults", function()
  local saved = lm.defaults.temperature
  T.eq(lm.defaults.max_tokens, 128)
  lm.defaults.temperature = 0
  lm.defaults.max_tokens = 4
  local r = m:generate("The capital of France is")
  T.eq(#r.ids, 4); T.eq(r.text, " Paris.\n\n")
  T.eq(#m:generate("The capital of France is", {max_tokens = 2}).ids, 2, "opts override defaults")
  lm.defaults.temprature = 1
  T.err(function() m:generate("x") end, "lm.defaults: unknown option 'temprature' (did you mean 'temperature'?)")
  lm.defaults.temprature = nil
  lm.defaults.top_p = "high"
  T.err(function() m:generate("x") end, "lm.defaults: option 'top_p' must be a number, got string")
  lm.defaults.top_p = 0.95
  lm.defaults.temperature = saved
  lm.defaults.max_tokens = 128
end)

T.test("generate errors", function()
  T.err(function() m:generate("x", 5) end, "bad argument #2 to 'generate' (table expected, got number)")
  T.err(function() lm.generate("x", 5) end, "bad argument #2 to 'generate' (table expected, got number)")
  T.err(function() m:generate(nil) end, "bad argument #1 to 'generate' (string or table expected, got nil)")
  T.err(function() m:generate(true) end, "bad argument #1 to 'generate' (string or table expected, got boolean)")
  T.err(function() m:generate("x", {temprature = 0}) end, "generate: unknown option 'temprature' (did you mean 'temperature'?)")
  T.err(function() m:generate("x", {max_tokns = 1}) end, "(did you mean 'max_tokens'?)")
  T.err(function() m:generate("x", {zzzzzz = 1}) end, "generate: unknown option 'zzzzzz'")
  T.err(function() m:generate("x", {[1] = 2}) end, "generate: option names are strings, got number key 1")
  T.err(function() m:generate("x", {temperature = "hot"}) end, "bad argument #2 to 'generate' (option 'temperature' must be a number, got string)")
  T.err(function() m:generate("x", {temperature = -1}) end, "option 'temperature' must be at least 0")
  T.err(function() m:generate("x", {top_p = 1.5}) end, "option 'top_p' must be between 0 and 1, got 1.5")
  T.err(function() m:generate("x", {max_tokens = 1.5}) end, "option 'max_tokens' must be an integer, got 1.5")
  T.err(function() m:generate("x", {max_tokens = -1}) end, "option 'max_tokens' must be at least 0, got -1")
  T.err(function() m:generate("x", {seed = -1}) end, "option 'seed' must be at least 0")
  T.err(function() m:generate("x", {stop = 1}) end, "option 'stop' must be a string or a list of strings, got number")
  T.err(function() m:generate("x", {stop = {"a", 2}}) end, "option 'stop' must be a list of strings (item 2 is a number)")
  T.err(function() m:generate("x", {ignore_eos = 1}) end, "option 'ignore_eos' must be a boolean, got number")
  T.err(function() m:generate("x", {on_token = 1}) end, "option 'on_token' must be a function, got number")
  T.err(function() m:generate("") end, "generate: empty prompt")
  T.err(function() m:generate({}) end, "generate: empty prompt")
  T.err(function() m:generate({1, 99999}) end, "token id 99999 at position 2 is outside the vocabulary")
  T.err(function() m:generate({{role = "user"}}) end, "message 1 has no 'content' string")
end)

T.test("sample", function()
  local rs = m:sample("Once upon a time", 3, {max_tokens = 8, seed = 5, temperature = 1})
  T.eq(#rs, 3)
  for _, r in ipairs(rs) do T.eq(#r.ids, 8); T.eq(r.usage.prompt, 4) end
  T.ok(rs[1].text ~= rs[2].text or rs[2].text ~= rs[3].text, "distinct seeds give distinct samples")
  local again = m:sample("Once upon a time", 3, {max_tokens = 8, seed = 5, temperature = 1})
  for i = 1, 3 do T.eq(again[i].text, rs[i].text, "reproducible sample " .. i) end
  local one = m:generate("Once upon a time", {max_tokens = 8, seed = 6, temperature = 1})
  T.eq(one.text, rs[2].text, "sample i uses seed + i - 1")
  local seen = {}
  lm.sample("Hi", 2, {max_tokens = 2, on_token = function(_, info) seen[info.sample] = true end})
  T.ok(seen[1] and seen[2])
  T.err(function() m:sample("x", 0) end, "bad argument #2 to 'sample' (expected an integer ≥ 1, got 0)")
  T.err(function() m:sample("x", "two") end, "bad argument #2 to 'sample' (integer expected, got string)")
  T.err(function() m:sample("x", 2, {temprature = 1}) end, "sample: unknown option 'temprature'")
  T.err(function() m:sample("", 2) end, "sample: empty prompt")
  -- Streamed samples run one after another and give the same texts.
  local streamed = m:sample("Once upon a time", 3, {max_tokens = 8, seed = 5, temperature = 1, stream = true})
  for i = 1, 3 do T.eq(streamed[i].text, rs[i].text, "streamed sample " .. i) end
  -- on_token returning false stops that sample only.
  local cut = m:sample("Once upon a time", 3, {max_tokens = 8, seed = 5, temperature = 1,
    on_token = function(_, info) return info.sample ~= 2 end})
  T.eq(cut[2].finish, "cancelled"); T.eq(#cut[2].ids, 1)
  T.eq(cut[1].text, rs[1].text); T.eq(cut[3].text, rs[3].text)
end)

T.test("prefix cache", function()
  local head = string.rep("The quick brown fox jumps over the lazy dog. ", 10)
  local a = m:generate(head .. "Why?", {max_tokens = 4, temperature = 0})
  local b = m:generate(head .. "How?", {max_tokens = 4, temperature = 0})
  T.ok(b.usage.cached >= #m:tokenize(head) - 1, "the shared prefix is reused: " .. b.usage.cached)
  T.ok(b.usage.cached < b.usage.prompt)
  local again = m:generate(head .. "How?", {max_tokens = 4, temperature = 0})
  T.eq(again.text, b.text)
  T.ok(again.usage.cached >= again.usage.prompt - 1)
end)

T.test("lm.grammar and lm.accepts: a constraint outside a generation", function()
  T.eq(lm.grammar{regex = "[0-9]+"}, "root ::= ([0-9])+\n")
  T.eq(lm.grammar{}, nil)
  local g, schema = lm.grammar{json_schema = {type = "object", properties = {{"b", {type = "integer"}}, {"a", {type = "boolean"}}}, required = {"b"}}}
  T.eq(schema, '{"properties":{"b":{"type":"integer"},"a":{"type":"boolean"}},"required":["b"],"type":"object"}')
  T.ok(g:find('root ::= "{" space b-kv ( "," space ( a-kv ) )? space "}"', 1, true), g)
  T.ok(lm.accepts({json_schema = schema}, '{"b": 3, "a": true}'))
  T.ok(not lm.accepts({json_schema = schema}, '{"a": true, "b": 3}'), "properties in the schema's order")
  T.ok(lm.accepts({choices = {"yes", "no"}}, "no")); T.ok(not lm.accepts({choices = {"yes", "no"}}, "n"))
  T.err(function() lm.grammar{regex = "(a"} end, "regex: position")
  T.err(function() lm.grammar{json_schema = {type = "object", properties = {a = {type = "strin"}}}} end, "at #/properties/a: unrecognized type strin")
  T.err(function() lm.grammar{json_schema = {type = "object", f = function() end}} end, "holds a function at json_schema.f")
  T.err(function() lm.grammar{temperature = 0} end, "unknown option 'temperature'")
  T.err(function() lm.accepts({}, "x") end, "give grammar, regex, choices or json_schema")
  -- a generation under a schema given as a table parses and holds the schema
  local r = lm.generate("A person as JSON:\n", {json_schema = {type = "object", properties = {{"name", {type = "string", maxLength = 8}}, {"age", {type = "integer", minimum = 0, maximum = 120}}}, required = {"name", "age"}}, temperature = 0, max_tokens = 40})
  if r.finish ~= "incomplete" then
    local v = lm.json.decode(r.text)
    T.eq(type(v.name), "string"); T.eq(math.type(v.age), "integer"); T.ok(v.age >= 0 and v.age <= 120)
  end
  -- constrained log-probabilities come when asked for, and asking does not change the tokens drawn
  for _, sampling in ipairs{{top_k = 40}, {top_k = 0, top_p = 1, min_p = 0}} do
    local opts = {grammar = 'root ::= ("red" | "green" | "blue") "."', temperature = 1, seed = 3, max_tokens = 8}
    for k, v in pairs(sampling) do opts[k] = v end
    local a = lm.generate("Pick a color:", opts)
    T.eq(a.constrained_logprobs, nil)
    opts.constrained_logprobs = true
    local b = lm.generate("Pick a color:", opts)
    T.eq(b.text, a.text); T.ok(b.text:match("^%a+%.$"), b.text)
    T.eq(#b.constrained_logprobs, #b.logprobs)
    for i = 1, #b.logprobs do
      T.ok(b.constrained_logprobs[i] >= b.logprobs[i] - 1e-4 and b.constrained_logprobs[i] <= 1e-4, b.constrained_logprobs[i])
    end
  end
end)

T.done()
