-- lm.extract: the answer in a model's text, as a verifier needs it: the last number, the last \boxed{...}, a
-- choice letter, or the answer by the usual precedence. Each returns nil when there is nothing to extract.
local lm = require "lm"
local M, doc = {}, {}

local function check_text(fname, text)
  if type(text) ~= "string" then
    error(("lm.extract.%s: text must be a string, got %s"):format(fname, type(text)), 3)
  end
end

-- Every number in text, in order: {value=, first=, last=} (byte positions). The rules are in doc.number.
local function numbers(text)
  local found, i = {}, 1
  while true do
    local s = text:find("%d", i)
    if not s then break end
    local e = s + #text:match("^%d+", s) - 1
    local digits = text:sub(s, e)
    -- Thousands groups: "1,234,567" (one to three digits, then groups of exactly three).
    if #digits <= 3 and (s == 1 or not text:sub(s - 1, s - 1):match("[%d,]")) then
      while text:match("^,%d%d%d", e + 1) and not text:match("^%d", e + 5) do
        digits = digits .. text:sub(e + 2, e + 4)
        e = e + 4
      end
    end
    local value, decimal = nil, text:match("^%.(%d+)", e + 1)
    if decimal then
      value = tonumber(digits .. "." .. decimal)
      e = e + 1 + #decimal
    else
      local den = text:match("^/(%d+)", e + 1)
      if den and tonumber(den) ~= 0 and not text:sub(s - 1, s - 1):match("[%d/%.]") then
        value = tonumber(digits) / tonumber(den)          -- a fraction "3/4"
        e = e + 1 + #den
      else
        value = math.tointeger(tonumber(digits)) or tonumber(digits)
      end
    end
    -- A sign: "-" (or U+2212) right before the digits or before a "$", not after a letter or digit ("5-3").
    local before = s - 1
    if text:sub(before, before) == "$" then before = before - 1 end
    local first = s
    local minus_len = (text:sub(before, before) == "-" and 1) or (text:sub(before - 2, before) == "\u{2212}" and 3)
    if minus_len then
      local prev = text:sub(before - minus_len, before - minus_len)
      if not prev:match("[%w%)%]]") then value = -value; first = before - minus_len + 1 end
    end
    if math.type(value) == "float" and value == math.floor(value) and not decimal then
      value = math.tointeger(value) or value                 -- "8/2" is 4, an integer
    end
    found[#found + 1] = {value = value, first = first, last = e}
    i = e + 1
  end
  return found
end

doc.number = {
  usage = "lm.extract.number(text) -> number or nil",
  text = "The last number in text. Understands thousands separators (\"1,234\" is 1234; \"1,2,3\" is three "
    .. "numbers), signs (\"-3.5\", \"-$12\"; the \"-\" of \"5-3\" is not a sign), currency (\"$12\" is 12), a "
    .. "sentence's full stop (\"It is 12.\" gives 12), percentages (\"50%\" gives 50) and GSM8K's \"#### 42\". "
    .. "A fraction written a/b with whole numbers (\"3/4\") is its value, 0.75; a date like 12/25 reads as one "
    .. "too. Integers come back as Lua integers, numbers written with a decimal point as floats.",
  example = "print(lm.extract.number(\"She pays $1,234.50, so the answer is 1,234.\"))  --> 1234",
}
function M.number(text)
  check_text("number", text)
  local all = numbers(text)
  return all[#all] and all[#all].value
end

-- The contents of the last \boxed{...} (or \fbox{...}), braces balanced; nil when it is not closed.
doc.boxed = {
  usage = "lm.extract.boxed(text) -> string or nil",
  text = "The contents of the last \\boxed{...} (or \\fbox{...}) in text, nested braces included, spaces "
    .. "trimmed. nil when there is none or the last one is not closed (a generation cut off inside it).",
  example = "print(lm.extract.boxed(\"so \\\\boxed{\\\\frac{1}{2}} and finally \\\\boxed{42}\"))  --> 42",
}
function M.boxed(text)
  check_text("boxed", text)
  local open
  for word, brace in text:gmatch("\\(%a+)%s*(){") do
    if word == "boxed" or word == "fbox" then open = brace end
  end
  if not open then return nil end
  local depth = 1
  for j = open + 1, #text do
    local c = text:sub(j, j)
    if c == "{" then depth = depth + 1
    elseif c == "}" then
      depth = depth - 1
      if depth == 0 then return (text:sub(open + 1, j - 1):match("^%s*(.-)%s*$")) end
    end
  end
  return nil
end

-- The letters a choice may take: "ABCD" by default, or a string or list of letters.
local function letter_set(letters)
  local set, list = {}, {}
  if letters == nil then letters = "ABCD" end
  if type(letters) == "string" then
    for c in letters:gmatch("%a") do list[#list + 1] = c end
  elseif type(letters) == "table" then
    for i, c in ipairs(letters) do
      if type(c) ~= "string" or not c:match("^%a$") then
        error(("lm.extract.choice: letters[%d] must be a single letter, got %s"):format(i, tostring(c)), 3)
      end
      list[#list + 1] = c
    end
  else
    error("lm.extract.choice: letters must be a string or a list, got " .. type(letters), 3)
  end
  if #list == 0 then error("lm.extract.choice: no letters to choose from", 3) end
  for _, c in ipairs(list) do set[c:upper()] = c end
  return set
end

doc.choice = {
  usage = "lm.extract.choice(text [, letters=\"ABCD\"]) -> letter or nil",
  text = "The option letter a model chose, among letters (a string \"ABCDE\" or a list {\"A\", \"B\"}). In order "
    .. "of precedence: the last \"answer is (B)\" / \"Answer: b\" (any case); a text that opens with the letter "
    .. "(\"B\", \"B) Paris\", \"(B).\"); the last \"(B)\"; the last capital letter standing alone as a word, "
    .. "skipping \"A\" and \"I\" used as words (\"A cat\"). Returns the letter as written in letters.",
  example = "print(lm.extract.choice(\"I think the answer is (c).\"))  --> C",
}
function M.choice(text, letters)
  check_text("choice", text)
  local set = letter_set(letters)
  local function take(c) return c and set[c:upper()] end
  local best
  -- "answer is B", "answer: (b)", "Answer - B"
  for c, after in text:gmatch("[Aa][Nn][Ss][Ww][Ee][Rr]%s*[:%-]?%s*[iI]?[sS]?%s*[:%-]?%s*%(?(%a)%f[^%a]()") do
    local article = (c == "a" or c == "i") and text:match("^%s+%a", after)
    if not article then best = take(c) or best end
  end
  if best then return best end
  local opening = text:match("^%s*%(?(%a)%)?%f[^%a]")
  if opening and take(opening) then
    local after = text:match("^%s*%(?%a(.?)")
    -- "A cat ..." opens with a word, not a choice; "B", "B)", "B." and "(A)" do not.
    if text:match("^%s*%(%a%)") or after == "" or after:match("[%).:,]") or opening ~= "A" and opening ~= "I" then
      return take(opening)
    end
  end
  for c in text:gmatch("%((%a)%)") do best = take(c) or best end
  if best then return best end
  for pos, c in text:gmatch("()%f[%a](%u)%f[^%a]") do
    local article = (c == "A" or c == "I") and text:match("^%s+%l", pos + 1)
    if set[c] and not article then best = set[c] end
  end
  return best
end

doc.answer = {
  usage = "lm.extract.answer(text) -> value, how",
  text = "The answer by the usual precedence: the last \\boxed{...}; else the number after the last \"####\"; "
    .. "else the number after the last \"answer is\" / \"Answer:\" (the result of a calculation written there: "
    .. "\"the answer is 19 - 16 = 3\" gives 3); else the last number. value is a number "
    .. "(a boxed text holding exactly one number gives that number: \\boxed{1,000} gives 1000, \\boxed{x = 5} "
    .. "gives 5), else the boxed string (\\boxed{\\frac{1}{2}}); how is \"boxed\", "
    .. "\"####\", \"answer is\" or \"last\". nil when nothing is found.",
  example = "print(lm.extract.answer(\"3 + 4 = 7. The answer is 7, not 8 apples... 9\"))  --> 7  answer is",
}
function M.answer(text)
  check_text("answer", text)
  local boxed = M.boxed(text)
  if boxed then
    local all = numbers(boxed)
    if #all == 1 then return all[1].value, "boxed" end
    return boxed, "boxed"
  end
  local marks = {}
  for pos in text:gmatch("()####") do marks[#marks + 1] = pos end
  if #marks > 0 then
    local n = numbers(text:sub(marks[#marks] + 4))
    if n[1] then return n[1].value, "####" end
  end
  local said
  for pos in text:gmatch("[Aa]nswer%s*[:is]*%s*()") do said = pos end
  if said then
    local rest = text:sub(said)
    local n = numbers(rest)
    if n[1] and n[1].first <= 3 then
      -- "The answer is 19 - 16 = 3 dollars": a calculation whose result follows its last "=" (on the same line).
      local line = rest:match("^[^\n]*")
      local tail = line:sub(n[1].last + 1)
      local op = tail:match("^%s*[%+%-%*/x]()") or tail:match("^%s*×()") or tail:match("^%s*÷()")
      if op and tail:sub(op):match("^%s*%$?%d") then
        local after = line:match(".*=%s*(.*)$")
        local r = after and numbers(after)
        if r and r[1] and r[1].first <= 3 then return r[1].value, "answer is" end
      end
      return n[1].value, "answer is"
    end
  end
  local v = M.number(text)
  if v ~= nil then return v, "last" end
  return nil
end

doc.final = {
  usage = "lm.extract.final(text [, phrase=\"The answer is\"]) -> number or nil",
  text = "The number right after the last occurrence of phrase (blanks and a $ may come between): what a "
    .. "constrained answer step writes (the strategies' answer_step = \"number\" holds the model to "
    .. "\"The answer is <number>\" after its reasoning), read exactly, where lm.extract.number would take the "
    .. "text's last number whatever it is. nil when the phrase is missing or no number follows it. The "
    .. "strategies take extract = \"final\" (or \"number\", \"answer\", \"boxed\": the lm.extract function of "
    .. "that name, or a function) and default to it when they ran the answer step.",
  example = "print(lm.extract.final(\"40 + 32 = 72 clips... The answer is 72\"))  --> 72",
}
function M.final(text, phrase)
  check_text("final", text)
  phrase = phrase or "The answer is"
  if type(phrase) ~= "string" or phrase == "" then
    error("lm.extract.final: phrase must be a non-empty string, got " .. type(phrase), 2)
  end
  local at
  local i = 1
  while true do
    local s, e = text:find(phrase, i, true)
    if not s then break end
    at, i = e + 1, s + 1
  end
  if not at then return nil end
  local n = numbers(text:sub(at))
  if n[1] and text:sub(at, at + n[1].first - 2):match("^[%s%$]*%-?$") then return n[1].value end
  return nil
end

for name, entry in pairs(doc) do
  entry.name = "lm.extract." .. name
  lm.document(M[name], entry)
end
lm.document(M, {
  name = "lm.extract",
  usage = "lm.extract",
  text = "Reading answers out of model text: number, boxed, choice, answer, final. Each returns nil when the text holds "
    .. "no answer of that kind, so that a verifier can count it wrong.",
  example = "local r = lm.generate(\"Q: What is 2 + 3?\\nA:\", {max_tokens = 16, temperature = 0})\n"
    .. "print(lm.extract.number(r.text))",
})
return M
