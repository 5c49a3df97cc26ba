-- lm.verify: is an extracted answer correct? Numeric equality with a stated tolerance, exact match, and a match
-- after the normalisation answer-matching code usually does. A missing prediction (nil) is wrong, never an error.
local lm = require "lm"
local M, doc = {}, {}

-- A number written as a whole string ("1,234", "$12", "-3.5", "50%", "12.", "3/4"), or nil.
local function parse_number(s)
  if math.type(s) then return s end
  if type(s) ~= "string" then return nil end
  local t = s:match("^%s*(.-)%s*$")
  t = t:gsub("\u{2212}", "-"):gsub("%.$", "")
  local sign, rest = t:match("^([%-+]?)%$?(.*)$")
  rest = rest:gsub("%%$", "")
  local int, frac = rest:match("^([%d,]+)(%.?%d*)$")
  if int and int:find(",", 1, true) then                      -- thousands: 1,234,567 and nothing else
    if not int:gsub(",%d%d%d%f[^%d]", ""):match("^%d%d?%d?$") then return nil end
    rest = int:gsub(",", "") .. frac
  end
  local a, b = rest:match("^(%d+)/(%d+)$")
  local v
  if a then
    if tonumber(b) == 0 then return nil end
    v = tonumber(a) / tonumber(b)
  elseif rest:match("^%d*%.?%d+$") or rest:match("^%d+%.?%d*[eE][%-+]?%d+$") then
    v = tonumber(rest)
  end
  if v == nil then return nil end
  return sign == "-" and -v or v
end

local DEFAULT_ABS, DEFAULT_REL = 1e-6, 1e-6

doc.numeric = {
  usage = "lm.verify.numeric(pred, gold [, tol]) -> boolean",
  text = "Whether pred equals gold as numbers. Each is a number or a string that is a number as a whole (\"1,234\", "
    .. "\"$12\", \"-3.5\", \"50%\", \"12.\", \"3/4\"; not \"about 12\": extract first). A pred that is nil or not a "
    .. "number is false; a gold that is not a number is an error. Equal when |pred - gold| <= max(abs, rel * "
    .. "|gold|): tol is a number (abs = tol, rel = 0) or {abs=, rel=}; the default {abs = 1e-6, rel = 1e-6} "
    .. "accepts 18.0000001 for 18 but not 18.01.",
  example = "print(lm.verify.numeric(\"$1,234\", 1234), lm.verify.numeric(0.33, 1/3, 0.01), lm.verify.numeric(nil, 3))",
}
function M.numeric(pred, gold, tol)
  local g = parse_number(gold)
  if g == nil then
    error("lm.verify.numeric: gold must be a number or a numeric string, got " ..
      (type(gold) == "string" and ("%q"):format(gold) or type(gold)), 2)
  end
  local abs, rel = DEFAULT_ABS, DEFAULT_REL
  if type(tol) == "number" then abs, rel = tol, 0
  elseif type(tol) == "table" then abs, rel = tol.abs or 0, tol.rel or 0
  elseif tol ~= nil then error("lm.verify.numeric: tol must be a number or {abs=, rel=}, got " .. type(tol), 2) end
  if type(abs) ~= "number" or type(rel) ~= "number" or abs < 0 or rel < 0 then
    error("lm.verify.numeric: tolerances must be numbers >= 0", 2)
  end
  local p = parse_number(pred)
  if p == nil or p ~= p then return false end
  return math.abs(p - g) <= math.max(abs, rel * math.abs(g))
end

doc.exact = {
  usage = "lm.verify.exact(a, b) -> boolean",
  text = "Whether a and b are the same string, byte for byte (numbers compared through tostring, so 42 matches "
    .. "\"42\" and 42.0 does not). nil on either side is false.",
  example = "print(lm.verify.exact(\"Paris\", \"Paris\"), lm.verify.exact(\"Paris\", \"paris\"))",
}
function M.exact(a, b)
  if a == nil or b == nil then return false end
  local function str(v, which)
    if type(v) == "string" then return v end
    if type(v) == "number" then return tostring(v) end
    error(("lm.verify.exact: %s must be a string or number, got %s"):format(which, type(v)), 3)
  end
  return str(a, "a") == str(b, "b")
end

-- The text normalised answers are compared by (see doc.normalized).
local function normalize(s)
  s = s:lower():match("^%s*(.-)%s*$")
  s = s:gsub("^%$+%s*", ""):gsub("%s*%$+$", "")          -- $x$ (LaTeX) or a currency sign
  s = s:gsub("[%.!?;:]+$", "")                           -- a sentence's end
  s = s:gsub("(%d),(%d%d%d)%f[^%d]", "%1%2"):gsub("(%d),(%d%d%d)%f[^%d]", "%1%2")  -- thousands: 1,234,567
  -- Other punctuation becomes a space, except . - / ' inside a word or number (3.5, e-mail, 1/2, don't).
  s = s:gsub("()(%p)", function(pos, c)
    if c:match("[%.%-/']") and s:sub(pos - 1, pos - 1):match("%w") and s:sub(pos + 1, pos + 1):match("%w") then
      return c
    end
    if c == "-" and pos == 1 and s:sub(2, 2):match("%d") then return c end   -- -5
    return " "
  end)
  return (s:gsub("%s+", " "):match("^%s*(.-)%s*$"))
end

doc.normalized = {
  usage = "lm.verify.normalized(a, b) -> boolean",
  text = "Whether a and b match after normalising both: lower case; surrounding spaces and $ signs removed; "
    .. "trailing . ! ? ; : removed; thousands commas dropped (1,000 = 1000); any other punctuation turned into a "
    .. "space, except . - / ' between letters or digits (3.5, e-mail, 1/2) and a leading minus; runs of spaces "
    .. "made one. nil on either side is false. lm.verify.normalize(s) returns the normalised text.",
  example = "print(lm.verify.normalized(\"  The Eiffel-Tower. \", \"the eiffel-tower\"), lm.verify.normalized(\"$1,000$\", \"1000\"))",
}
function M.normalized(a, b)
  if a == nil or b == nil then return false end
  for i, v in ipairs({a, b}) do
    if type(v) ~= "string" and type(v) ~= "number" then
      error(("lm.verify.normalized: %s must be a string or number, got %s"):format(i == 1 and "a" or "b", type(v)), 2)
    end
  end
  return normalize(tostring(a)) == normalize(tostring(b))
end

doc.normalize = {
  usage = "lm.verify.normalize(s) -> string",
  text = "The normalised text lm.verify.normalized compares (see help(lm.verify.normalized)).",
  example = "print(lm.verify.normalize(\"  Hello, World! \"))  --> hello world",
}
function M.normalize(s)
  if type(s) ~= "string" and type(s) ~= "number" then
    error("lm.verify.normalize: s must be a string or number, got " .. type(s), 2)
  end
  return normalize(tostring(s))
end

for name, entry in pairs(doc) do
  entry.name = "lm.verify." .. name
  lm.document(M[name], entry)
end
lm.document(M, {
  name = "lm.verify",
  usage = "lm.verify",
  text = "Checking answers: numeric (with a tolerance), exact, normalized (and the normalize it uses). A nil "
    .. "prediction is simply wrong.",
  example = "local ok = lm.verify.numeric(lm.extract.number(\"so she has 18 eggs\"), 18)",
})
return M
