-- lm.json: JSON text to Lua values and back, for data sets (lm.data) and result files. Plain Lua: objects are
-- tables with string keys, arrays are lists, null is nil. Encoding sorts object keys so that files compare.
--
-- Lists that can hold nil. `#` and `ipairs` stop at the first hole of a Lua list, so a list that may hold nil (the
-- answers of eight samples, some without a number) carries its length: lm.list(n) makes one (a table with the field
-- n and the metatable lm.list.meta, whose # is n). The writer writes it as an array of n values with null in the
-- holes, and the reader gives an array holding a null back as such a list, so a list survives a result file whole.
local lm = require "lm"
local M, doc = {}, {}

local LIST = {__name = "lm.list"}
LIST.__len = function(t) return rawget(t, "n") end

-- Whether t is a list made by lm.list (or read back from an array with a null in it).
local function is_list(t) return type(t) == "table" and getmetatable(t) == LIST end

-- A list of length n: t (default a new table) marked, its keys checked (only 1..n and n).
local function make_list(fname, n, t)
  if not math.tointeger(n) or n < 0 then
    error(("%s: the length must be an integer >= 0, got %s"):format(fname, tostring(n)), 3)
  end
  t = t or {}
  if type(t) ~= "table" then error(("%s: the values must be a table, got %s"):format(fname, type(t)), 3) end
  for k in pairs(t) do
    local i = math.tointeger(k)
    if k ~= "n" and not (math.type(k) == "integer" and i >= 1 and i <= n) then
      error(("%s: key %s is outside 1..%d"):format(fname, tostring(k), n), 3)
    end
  end
  rawset(t, "n", math.tointeger(n))
  return setmetatable(t, LIST)
end

-- Decoding. Each parse_* takes the text and a position and returns the value and the position after it; a
-- problem raises {msg=, at=} which decode turns into a one-line message.
local function fail(msg, at) error({msg = msg, at = at}, 0) end

local function skip(s, i) return s:find("[^ \t\r\n]", i) or #s + 1 end

-- Fails with `what`, or with "unexpected end of text" when the text ended first.
local function expected(s, i, what) fail(i > #s and "unexpected end of text" or "expected " .. what, i) end

local ESCAPES = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t'}

local function parse_string(s, i)
  local parts, j = {}, i + 1
  while true do
    local k = s:find('["\\%c]', j)
    if not k then fail("unterminated string", i) end
    parts[#parts + 1] = s:sub(j, k - 1)
    local c = s:sub(k, k)
    if c == '"' then return table.concat(parts), k + 1 end
    if c ~= "\\" then fail("control character in a string", k) end
    local e = s:sub(k + 1, k + 1)
    if e == "u" then
      local hex = s:match("^%x%x%x%x", k + 2)
      if not hex then fail("bad \\u escape", k) end
      local code, next = tonumber(hex, 16), k + 6
      if code >= 0xD800 and code <= 0xDBFF then             -- a UTF-16 surrogate pair
        local low = s:match("^\\u(%x%x%x%x)", next)
        low = low and tonumber(low, 16)
        if not low or low < 0xDC00 or low > 0xDFFF then fail("unpaired surrogate in \\u escape", k) end
        code, next = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), next + 6
      end
      parts[#parts + 1] = utf8.char(code)
      j = next
    elseif ESCAPES[e] then
      parts[#parts + 1] = ESCAPES[e]
      j = k + 2
    else
      fail("bad escape \\" .. e, k)
    end
  end
end

local function parse_number(s, i)
  local text = s:match("^-?%d+", i)
  if not text or text:match("^-?0%d") then fail("bad number", i) end
  local frac = s:match("^%.%d+", i + #text) or ""
  local exp = s:match("^[eE][-+]?%d+", i + #text + #frac) or ""
  local whole = text .. frac .. exp
  local v = tonumber(whole)
  if frac == "" and exp == "" then v = math.tointeger(v) or v end
  if v == 0 and whole:sub(1, 1) == "-" then v = -0.0 end   -- "-0" is the negative zero encode writes (fuzzing)
  -- A number past the doubles' range would decode to inf, which JSON cannot hold (found by fuzzing).
  if v == math.huge or v == -math.huge then fail("number out of range", i) end
  return v, i + #whole
end

local parse_value

-- An array: a plain list, or an lm.list carrying its length when it holds a null (a hole).
local function parse_array(s, i)
  local list, n, holes = {}, 0, false
  i = skip(s, i + 1)
  if s:sub(i, i) == "]" then return list, i + 1 end
  while true do
    local v
    v, i = parse_value(s, i)
    n = n + 1
    list[n] = v
    if v == nil then holes = true end
    i = skip(s, i)
    local c = s:sub(i, i)
    if c == "]" then
      if holes then list.n = n; setmetatable(list, LIST) end
      return list, i + 1
    end
    if c ~= "," then expected(s, i, "',' or ']'") end
    i = skip(s, i + 1)
  end
end

local function parse_object(s, i)
  local obj = {}
  i = skip(s, i + 1)
  if s:sub(i, i) == "}" then return obj, i + 1 end
  while true do
    if s:sub(i, i) ~= '"' then expected(s, i, "a string key") end
    local k, v
    k, i = parse_string(s, i)
    i = skip(s, i)
    if s:sub(i, i) ~= ":" then expected(s, i, "':'") end
    v, i = parse_value(s, skip(s, i + 1))
    obj[k] = v
    i = skip(s, i)
    local c = s:sub(i, i)
    if c == "}" then return obj, i + 1 end
    if c ~= "," then expected(s, i, "',' or '}'") end
    i = skip(s, i + 1)
  end
end

local LITERALS = {t = {"true", true}, f = {"false", false}, n = {"null", nil}}

parse_value = function(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then return parse_object(s, i) end
  if c == "[" then return parse_array(s, i) end
  if c == '"' then return parse_string(s, i) end
  if c == "-" or c:match("%d") then return parse_number(s, i) end
  local lit = LITERALS[c]
  if lit and s:sub(i, i + #lit[1] - 1) == lit[1] then return lit[2], i + #lit[1] end
  if c == "" then fail("unexpected end of text", i) end
  fail("unexpected character '" .. c .. "'", i)
end

-- The value of a JSON text, or nil and "message at byte N".
function M.try_decode(text)
  local ok, v, i = pcall(function() return parse_value(text, 1) end)
  if ok then
    i = skip(text, i)
    if i <= #text then return nil, "unexpected text after the value at byte " .. i end
    return v
  end
  if type(v) == "table" then return nil, v.msg .. " at byte " .. v.at end
  error(v, 0)
end

doc.decode = {
  usage = "lm.json.decode(text) -> value",
  text = "The Lua value of a JSON text: objects become tables with string keys, arrays lists, null nil (an "
    .. "object's null field is absent; an array holding a null becomes an lm.list, whose field n is the array's "
    .. "length, holes and all). Integers stay integers. Bad JSON is an error "
    .. "naming the byte (lm.json.try_decode returns nil and the message instead).",
  example = "local v = lm.json.decode('{\"a\": [1, 2.5, \"x\"], \"b\": null}')\nprint(v.a[2], v.b)",
}
function M.decode(text)
  if type(text) ~= "string" then error("lm.json.decode: text must be a string, got " .. type(text), 2) end
  local v, err = M.try_decode(text)
  if err then error("lm.json.decode: " .. err, 2) end
  return v
end

doc.try_decode = {
  usage = "lm.json.try_decode(text) -> value or nil, message",
  text = "As lm.json.decode, but bad JSON gives nil and the message (\"expected ':' at byte 7\") instead of an error.",
  example = "print(lm.json.try_decode('{\"a\" 1}'))",
}

-- Encoding.
local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local named = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
    return named[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

-- The shortest decimal text that reads back as the same float.
local function encode_number(x)
  if math.type(x) == "integer" then return tostring(x) end
  if x ~= x or x == math.huge or x == -math.huge then error("lm.json.encode: " .. tostring(x) .. " is not JSON", 0) end
  for digits = 15, 17 do
    local t = ("%." .. digits .. "g"):format(x)
    if tonumber(t) == x then return t end
  end
end

-- The length of the array a table is written as, or nil for an object. An lm.list: its n. A table whose keys are
-- all positive integers: up to the largest, with null in the holes (its holes at the end are lost: a list that can
-- end in nil is an lm.list), unless they are so sparse (the largest above twice their number) that it stays an
-- object. A table.pack-style table (integer keys within 1..n and an integer field n >= 1, no other key): n. An
-- empty table: 0 (written []).
local function array_length(v)
  if getmetatable(v) == LIST then
    local n = rawget(v, "n")
    for k in pairs(v) do
      if k ~= "n" and not (math.type(k) == "integer" and k >= 1 and k <= n) then
        error("lm.json.encode: an lm.list of length " .. n .. " has the key " .. tostring(k), 0)
      end
    end
    return n
  end
  local count, max, packed = 0, 0, nil
  for k in pairs(v) do
    if math.type(k) == "integer" and k >= 1 then
      count = count + 1
      if k > max then max = k end
    elseif k == "n" and math.type(v.n) == "integer" and v.n >= 1 then packed = v.n
    else return nil end
  end
  if packed then
    if count > 0 and max <= packed then return packed end
    return nil
  end
  if max <= 2 * count then return max end
  return nil
end

-- JSON text written as it is (lm.json.raw): a schema whose members' order matters, say.
local RAW = {__name = "lm.json.raw"}

local function encode_value(v, open, out)
  local t = type(v)
  if t == "nil" then out[#out + 1] = "null"
  elseif getmetatable(v) == RAW then out[#out + 1] = v.text
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then out[#out + 1] = encode_number(v)
  elseif t == "string" then out[#out + 1] = encode_string(v)
  elseif t == "table" then
    if open[v] then error("lm.json.encode: a table contains itself", 0) end
    open[v] = true
    local n = array_length(v)
    if n then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        encode_value(rawget(v, i), open, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) == "string" then keys[#keys + 1] = k
        elseif math.type(k) == "integer" then keys[#keys + 1] = tostring(k)
        else error("lm.json.encode: a key of type " .. type(k) .. " is not JSON", 0) end
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        local val = v[k]
        if val == nil then val = v[math.tointeger(tonumber(k))] end
        out[#out + 1] = encode_string(k) .. ":"
        encode_value(val, open, out)
      end
      out[#out + 1] = "}"
    end
    open[v] = nil
  else
    error("lm.json.encode: a " .. t .. " value is not JSON", 0)
  end
end

doc.encode = {
  usage = "lm.json.encode(value) -> text",
  text = "One line of JSON for a value: a table whose keys are 1..n is an array (an empty table is []); an "
    .. "lm.list is an array of its n values with null in the holes (as is a list with a few holes, up to its last "
    .. "value, and a table.pack result); any "
    .. "other table an object with its keys sorted (integer keys written as strings); floats in the shortest "
    .. "form that reads back equal, a whole float as an integer (3.0 as 3, as lua-cjson does, so that an API "
    .. "wanting an integer gets one): it decodes as the integer 3. Functions, userdata, NaN, "
    .. "infinities and cycles are errors.",
  example = "print(lm.json.encode({id = \"q1\", correct = true, scores = {0.5, 1}}))",
}
doc.raw = {
  usage = "lm.json.raw(text) -> value",
  text = "A value lm.json.encode writes as the JSON text given, unchanged (not checked): for JSON whose object "
    .. "members must keep their order, which a Lua table cannot (a JSON schema's properties, say).",
  example = "print(lm.json.encode({schema = lm.json.raw('{\"b\":1,\"a\":2}')}))",
}
function M.raw(text)
  if type(text) ~= "string" then error("lm.json.raw: expected JSON text (a string), got " .. type(text), 2) end
  return setmetatable({text = text}, RAW)
end

function M.encode(value)
  local out = {}
  local ok, err = pcall(encode_value, value, {}, out)
  if not ok then error(err, 2) end
  return table.concat(out)
end

for name, entry in pairs(doc) do
  entry.name = "lm.json." .. name
  lm.document(M[name], entry)
end
doc.list = {
  usage = "lm.list(n [, t]) -> list",
  text = "A list of length n that can hold nil: t (default a new table, whose keys must lie in 1..n) with the field "
    .. "n = n and the metatable lm.list.meta, so that #list is n. `#` and `ipairs` stop at the first nil of a "
    .. "plain list; iterate a list that can hold nil as `for i = 1, list.n`. lm.json.encode writes it as an array of "
    .. "n values, null in the holes, and lm.json.decode gives an array holding a null back as such a list. "
    .. "lm.list.is(t) says whether t is one; lm.list.len(t) is t.n for a list, #t for another table.",
  example = "local answers = lm.list(3)\nanswers[1], answers[3] = 9, 16   -- the second sample gave no number\n"
    .. "print(#answers, lm.json.encode(answers))  --> 3  [9,null,16]",
}
local list_api = {meta = LIST}
function list_api.is(t) return is_list(t) end
function list_api.len(t)
  if type(t) ~= "table" then error("lm.list.len: expected a table, got " .. type(t), 2) end
  local n = rawget(t, "n")
  if is_list(t) or math.type(n) == "integer" then return n end
  return #t
end
M.list = setmetatable(list_api, {__call = function(_, n, t) return make_list("lm.list", n, t) end})
lm.list = M.list
lm.document(M.list, {name = "lm.list", usage = doc.list.usage, text = doc.list.text, example = doc.list.example})
doc.list = nil

lm.document(M, {
  name = "lm.json",
  usage = "lm.json",
  text = "JSON for data sets and result files: decode, try_decode, encode.",
  example = "print(lm.json.encode(lm.json.decode('[1, {\"b\": 2, \"a\": 1}]')))  --> [1,{\"a\":1,\"b\":2}]",
})
return M
