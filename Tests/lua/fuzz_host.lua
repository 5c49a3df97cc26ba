-- Seeded fuzzing through the host, run by Tests/HostTests/FuzzHostTests.swift and Tests/fuzz.sh:
--   refrain run --sandbox=DIR Tests/lua/fuzz_host.lua RUNS SEED DIR
-- json: mutated JSON texts into lm.json.try_decode / decode (a value, or nil and a message; a value re-encodes
-- to text that decodes to the same encoding); jsonl: mutated files into lm.data.jsonl and lm.data.gsm8k (items,
-- or an error naming the file and line); api: the model's methods called with arguments of every type and
-- edge values (a result or a Lua error). A crash ends the process, which the caller sees; anything else that
-- breaks a property is a finding, printed with its input. One line per target: inputs, executions, findings.
local runs, seed, dir = tonumber(arg[1]) or 1000, tonumber(arg[2]) or 1, arg[3] or "."
math.randomseed(seed)
local json, data = lm.json, lm.data

local findings = {}
local function finding(target, what, input)
  findings[target] = (findings[target] or 0) + 1
  if findings[target] <= 5 then io.stderr:write(("finding %s: %s: %q\n"):format(target, what, input)) end
end

local function report(target, inputs, executions, t0)
  print(("fuzz %s: %d inputs, %d executions, %d findings, %.1f s (seed %d)"):format(
    target, inputs, executions, findings[target] or 0, os.clock() - t0, seed))
end

local SEEDS = {
  '{"a": [1, 2.5, -3e-2, "x"], "b": null, "c": {"d": true, "e": false}}',
  '[{"question": "What is 6 * 7?", "answer": "It is 42.\\n#### 42"}, 1e300, -0, 12345678901234567890]',
  '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00 \\u0000"',
  '{"nested": [[[[[]]]]], "empty": {}, "s": ""}',
  '123', 'true', 'null', '"\\u20AC"', '[1,2,3]',
}
local PIECES = { "{", "}", "[", "]", '"', "\\", "\\u", "\\ud800", "\\udc00", ",", ":", "1e999", "-", "-0.0e+",
                 "null", "tru", "0x1F", "\0", "\255", " ", "\n", "9223372036854775808", "1.7976931348623157e309" }

local function mutate(s)
  for _ = 1, math.random(1, 4) do
    local n = #s
    local at = math.random(0, n)
    local op = math.random(8)
    if op == 1 and n > 0 then
      s = s:sub(1, at - 1) .. string.char(math.random(0, 255)) .. s:sub(at + 1)
    elseif op == 2 and n > 0 then
      s = s:sub(1, at - 1) .. s:sub(at + math.random(1, 8))
    elseif op == 3 then
      s = s:sub(1, at) .. PIECES[math.random(#PIECES)] .. s:sub(at + 1)
    elseif op == 4 then
      s = s:sub(1, at)
    elseif op == 5 and n > 0 then
      local from = math.random(1, n)
      s = s:sub(1, at) .. s:sub(from, from + math.random(0, 32)) .. s:sub(at + 1)
    elseif op == 6 then
      local depth = math.random(1, 1 << math.random(1, 14))
      s = ("["):rep(depth) .. s .. ("]"):rep(math.random(0, depth))
    elseif op == 7 then
      s = s .. SEEDS[math.random(#SEEDS)]
    else
      s = s:sub(1, at) .. ("9"):rep(math.random(1, 400)) .. s:sub(at + 1)
    end
  end
  return s
end

-- json
do
  local t0, executions = os.clock(), 0
  for _ = 1, runs do
    local text = mutate(SEEDS[math.random(#SEEDS)])
    local ok, v, err = pcall(json.try_decode, text)
    executions = executions + 1
    if not ok then
      if not tostring(v):find("stack overflow", 1, true) then finding("json", "try_decode raised " .. tostring(v), text) end
    elseif v == nil and err ~= nil and type(err) ~= "string" then
      finding("json", "a message that is not a string", text)
    elseif v ~= nil then
      local ok2, encoded = pcall(json.encode, v)
      executions = executions + 1
      if not ok2 then
        finding("json", "a decoded value does not encode: " .. tostring(encoded), text)
      else
        local again = json.try_decode(encoded)
        executions = executions + 1
        if again == nil or json.encode(again) ~= encoded then finding("json", "encode/decode is not stable", text) end
      end
    end
  end
  report("json", runs, executions, t0)
end

-- jsonl (files in the sandbox folder)
do
  local t0, executions, inputs = os.clock(), 0, math.max(1, runs // 20)
  local path = dir .. "/fuzz.jsonl"
  for _ = 1, inputs do
    local lines = {}
    for i = 1, math.random(1, 6) do
      local line = '{"question": "q' .. i .. '", "answer": "a\\n#### ' .. i .. '"}'
      lines[i] = math.random() < 0.3 and mutate(line) or line
    end
    local f = assert(io.open(path, "wb"))
    f:write(table.concat(lines, math.random() < 0.1 and "\r\n" or "\n"))
    f:close()
    for _, reader in ipairs { "jsonl", "gsm8k" } do
      local ok, v = pcall(data[reader], path, math.random() < 0.5 and { n = math.random(0, 3), offset = math.random(0, 3) } or nil)
      executions = executions + 1
      if ok and type(v) ~= "table" then finding("jsonl", reader .. " returned a " .. type(v), table.concat(lines, "\n")) end
      if not ok and not tostring(v):find("lm.data." .. reader, 1, true) and not tostring(v):find("stack overflow", 1, true) then
        finding("jsonl", reader .. " raised an error that does not name it: " .. tostring(v), table.concat(lines, "\n"))
      end
    end
  end
  report("jsonl", inputs, executions, t0)
end

-- api: every argument position gets values of every type and edge values; generation is kept short.
local m = lm.model
if m then
  local t0, executions, inputs = os.clock(), 0, math.max(1, runs // 20)
  local VALUES = { 0, 1, 2, -1, 7, 1e12, math.maxinteger, math.mininteger, 0.5, 0 / 0, math.huge, -math.huge,
                   "", "x", "Hello, world", "\0\255", true, false, {}, { 1, 2, 3 }, { 49151 }, { -1 }, { "a" },
                   { layers = "all" }, { layers = { 0 } }, { heads = { 0, 0 } }, function() end }
  local function value() return VALUES[math.random(#VALUES)] end
  local function opts()
    local o = {}
    for _, k in ipairs { "temperature", "top_k", "top_p", "min_p", "seed", "stop", "logprobs", "layers", "heads",
                         "special", "bos", "n", "repeat_penalty", "nope" } do
      if math.random() < 0.2 then o[k] = value() end
    end
    o.max_tokens, o.stream = math.random(0, 3), false
    return o
  end
  local CALLS = {
    function() return m:tokenize(value(), opts()) end,
    function() return m:detokenize(value(), opts()) end,
    function() return m:token(value()) end,
    function() return m:generate(value(), opts()) end,
    function() return m:sample(value(), math.random(-1, 3), opts()) end,
    function() return m:score(value(), value()) end,
    function() return m:choose(value(), value()) end,
    function() return m:state(value()) end,
    function() local st = m:state("Hi") st:append(value()) st:rewind(math.random(-2, 4)) return st:generate(opts()) end,
    function() return m:attention(value(), opts()) end,
    function() return m:template(value(), opts()) end,
    function() return lm.matrix(value()) end,
  }
  for _ = 1, inputs do
    local ok, err = pcall(CALLS[math.random(#CALLS)])
    executions = executions + 1
    if not ok and type(err) ~= "string" then finding("api", "an error that is not a message: " .. type(err), "") end
  end
  report("api", inputs, executions, t0)
end

local total = 0
for _, n in pairs(findings) do total = total + n end
if total > 0 then error(total .. " findings") end
