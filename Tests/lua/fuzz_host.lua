-- Seeded fuzzing through the host, run by Tests/HostTests/FuzzHostTests.swift and Tests/fuzz.sh:
--   refrain run --sandbox=DIR Tests/lua/fuzz_host.lua RUNS SEED DIR
-- json: mutated JSON texts into lm.json.try_decode / decode (a value, or nil and a message; a value re-encodes
-- to text that decodes to the same encoding); json-values: generated values survive encode and decode; jsonl:
-- files into lm.data.jsonl and lm.data.gsm8k (clean ones read back as written; mutated ones give items, or an
-- error naming the file and line); api: the model's methods called with arguments of every type and
-- edge values (a result or a Lua error). A crash ends the process, which the caller sees; anything else that
-- breaks a property is a finding, printed with its input. One line per target: inputs, executions, findings.
local runs, seed, dir = tonumber(arg[1]) or 1000, tonumber(arg[2]) or 1, arg[3] or "."
math.randomseed(seed)
local json, data = lm.json, lm.data
-- REFRAIN_FUZZ_TARGETS=json,jsonl runs only those targets (all of them when unset).
local only = os.getenv("REFRAIN_FUZZ_TARGETS")
local function wanted(target) return not only or (("," .. only .. ","):find("," .. target .. ",", 1, true)) ~= nil end

local findings = {}
local function finding(target, what, input)
  findings[target] = (findings[target] or 0) + 1
  if findings[target] <= 5 then io.stderr:write(("finding %s: %s: %q\n"):format(target, what, input)) end
end

-- In the long mode, a line on standard error every 100,000 inputs, so that a run stopped early still tells how far
-- it went.
local function progress(target, done, executions, t0)
  if done > 0 and done % 100000 == 0 then
    io.stderr:write(("progress %s: %d inputs, %d executions, %d findings, %.1f s\n"):format(
      target, done, executions, findings[target] or 0, os.clock() - t0))
  end
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
if wanted("json") then
  local t0, executions = os.clock(), 0
  for input = 1, runs do
    progress("json", input - 1, executions, t0)
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

-- json-values: generated Lua values (integers of every size, floats with their bits random or at edges,
-- strings of any bytes, lists, objects, nesting) survive encode and decode: the same value, integers still
-- integers, floats still floats except that a whole float (3.0) is written as an integer and reads back as one,
-- as lm.json.encode's help says; negative zero keeps its sign.
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    local whole = math.type(a) == "float" and math.tointeger(a) ~= nil
    if math.type(a) ~= math.type(b) and not whole then return false end
    return a == b and (a ~= 0 or 1 / a == 1 / b)
  end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function random_string()
  local n = math.random(0, 12)
  local bytes = {}
  for i = 1, n do
    local r = math.random(4)
    bytes[i] = r == 1 and math.random(0, 255) or r == 2 and math.random(0, 31) or r == 3 and ('"\\/'):byte(math.random(3)) or math.random(32, 126)
  end
  return string.char(table.unpack(bytes))
end

local FLOATS = { 0.0, -0.0, 0.5, -1.5, 1e300, -1e-300, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                 2.0, -3.0, 1e15, 1e16, 2^53, 2^63, -2^63, 0.1, 1 / 3 }
local INTEGERS = { 0, 1, -1, 2^53 // 1, 2^53 // 1 + 1, math.maxinteger, math.mininteger, 1000000000000000 }
local function random_value(depth)
  local r = math.random(depth >= 6 and 4 or 6)
  if r == 1 then
    return math.random(3) == 1 and INTEGERS[math.random(#INTEGERS)] or math.random(math.mininteger, math.maxinteger) >> math.random(0, 63)
  elseif r == 2 then
    local k = math.random(3)
    if k == 1 then return FLOATS[math.random(#FLOATS)] end
    if k == 2 then return math.random() * 10.0 ^ math.random(-320, 308) * (math.random(2) == 1 and -1 or 1) end
    local x = string.unpack("<d", string.pack("<i8", math.random(math.mininteger, math.maxinteger)))
    return (x == x and x ~= math.huge and x ~= -math.huge) and x or 1.25
  elseif r == 3 then
    return ({ true, false })[math.random(2)]
  elseif r == 4 then
    return random_string()
  elseif r == 5 then
    local list = {}
    for i = 1, math.random(0, 4) do list[i] = random_value(depth + 1) end
    return list
  else
    local obj = {}
    for _ = 1, math.random(1, 4) do obj["k" .. random_string()] = random_value(depth + 1) end
    return obj
  end
end

if wanted("json-values") then
  local t0, executions = os.clock(), 0
  for input = 1, runs do
    progress("json-values", input - 1, executions, t0)
    local v = random_value(0)
    local ok, text = pcall(json.encode, v)
    executions = executions + 1
    if not ok then
      finding("json-values", "encode raised " .. tostring(text), lm.pretty(v))
    else
      local back, err = json.try_decode(text)
      executions = executions + 1
      if err then finding("json-values", "encoded text does not decode: " .. err, text)
      elseif not same(v, back) then finding("json-values", "decode(encode(x)) differs from x", text) end
    end
  end
  report("json-values", runs, executions, t0)
end

-- jsonl (files in the sandbox folder): 1-6 lines, GSM8K records or generated values, some mutated. A file with
-- no mutated line reads back as the values written (the window {n=, offset=} applied); otherwise items or an
-- error naming the reader.
if wanted("jsonl") then
  local t0, executions, inputs = os.clock(), 0, runs
  local path = dir .. "/fuzz.jsonl"
  for input = 1, inputs do
    progress("jsonl", input - 1, executions, t0)
    local lines, values, clean, records = {}, {}, true, true
    for i = 1, math.random(1, 6) do
      local line
      if math.random() < 0.7 then
        line = '{"question": "q' .. i .. '", "answer": "a\\n#### ' .. i .. '"}'
        values[i] = { question = "q" .. i, answer = "a\n#### " .. i }
      else
        values[i] = random_value(1)
        line, records = json.encode(values[i]), false
      end
      if math.random() < 0.3 then line, clean = mutate(line), false end
      lines[i] = line
    end
    local f = assert(io.open(path, "wb"))
    f:write(table.concat(lines, math.random() < 0.1 and "\r\n" or "\n"))
    f:close()
    for _, reader in ipairs { "jsonl", "gsm8k" } do
      local opts = math.random() < 0.5 and { n = math.random(0, 3), offset = math.random(0, 3) } or nil
      local ok, v = pcall(data[reader], path, opts)
      executions = executions + 1
      local text = table.concat(lines, "\n")
      if ok and type(v) ~= "table" then finding("jsonl", reader .. " returned a " .. type(v), text) end
      if not ok and not tostring(v):find("lm.data." .. reader, 1, true) and not tostring(v):find("stack overflow", 1, true) then
        finding("jsonl", reader .. " raised an error that does not name it: " .. tostring(v), text)
      end
      if clean and (reader == "jsonl" or records) then
        local offset, n = opts and opts.offset or 0, opts and opts.n or #values
        local want = math.max(0, math.min(n, #values - offset))
        if not ok then finding("jsonl", reader .. " failed on a clean file: " .. tostring(v), text)
        elseif #v ~= want then finding("jsonl", ("%s gave %d items, not %d"):format(reader, #v, want), text)
        else
          for i = 1, want do
            local expect = values[offset + i]
            if reader == "gsm8k" then
              expect = { id = "gsm8k-" .. (offset + i), question = expect.question, answer = offset + i, solution = expect.answer }
            end
            if not same(expect, v[i]) then finding("jsonl", reader .. " item " .. i .. " differs from its line", text) break end
          end
        end
      end
    end
  end
  report("jsonl", inputs, executions, t0)
end

-- api: every argument position gets values of every type and edge values; generation is kept short.
local m = lm.model
if m and wanted("api") then
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
