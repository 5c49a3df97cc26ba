-- lm.data: data sets as lists of plain tables. JSON Lines in general, and GSM8K's {question, answer} lines with
-- the gold number read from the answer's "#### 42" line. A line that does not parse is a one-line error naming
-- the file and line, so a broken download is found before an experiment starts.
local lm = require "lm"
local json = require "lm.json"
local extract = require "lm.extract"
local M, doc = {}, {}

-- {n=, offset=} from an options table, checked; fname names the caller in messages.
local function window(fname, opts)
  if opts == nil then return math.huge, 0 end
  if type(opts) ~= "table" then error(("lm.data.%s: options must be a table, got %s"):format(fname, type(opts)), 3) end
  for k in pairs(opts) do
    if k ~= "n" and k ~= "offset" then error(("lm.data.%s: unknown option '%s' (n, offset)"):format(fname, tostring(k)), 3) end
  end
  local n, offset = opts.n or math.huge, opts.offset or 0
  if n ~= math.huge and (not math.tointeger(n) or n < 0) then
    error(("lm.data.%s: option 'n' must be an integer >= 0, got %s"):format(fname, tostring(opts.n)), 3)
  end
  if not math.tointeger(offset) or offset < 0 then
    error(("lm.data.%s: option 'offset' must be an integer >= 0, got %s"):format(fname, tostring(opts.offset)), 3)
  end
  return n, offset
end

-- Calls each(value, line_number, index) for the records of a JSON Lines file after `offset` of them, at most
-- `n`; blank lines are skipped and not counted.
local function read_lines(fname, path, n, offset, each)
  if type(path) ~= "string" then error(("lm.data.%s: path must be a string, got %s"):format(fname, type(path)), 3) end
  local f, err = io.open(path, "r")
  if not f then error(("lm.data.%s: cannot open %s"):format(fname, err), 3) end
  local index, taken, line_number = 0, 0, 0
  for line in f:lines() do
    line_number = line_number + 1
    if taken >= n then break end
    if line:match("%S") then
      index = index + 1
      if index > offset then
        local v, msg = json.try_decode(line)
        if msg then
          f:close()
          error(("lm.data.%s: %s:%d: %s"):format(fname, path, line_number, msg), 3)
        end
        local problem = each(v, line_number, index)
        if problem then
          f:close()
          error(("lm.data.%s: %s:%d: %s"):format(fname, path, line_number, problem), 3)
        end
        taken = taken + 1
      end
    end
  end
  f:close()
end

doc.jsonl = {
  usage = "lm.data.jsonl(path [, {n=, offset=}]) -> {value, ...}",
  text = "The records of a JSON Lines file (one JSON value a line) as a list, read with lm.json.decode. offset "
    .. "skips that many records first, n keeps at most n; blank lines are skipped. A line that is not JSON is an "
    .. "error naming the file and line (\"lm.data.jsonl: data.jsonl:3: expected ',' or '}' at byte 17\").",
  example = "for i, item in ipairs(lm.data.jsonl(\"items.jsonl\", {n = 10})) do print(i, item.question) end",
}
function M.jsonl(path, opts)
  local n, offset = window("jsonl", opts)
  local list = {}
  read_lines("jsonl", path, n, offset, function(v) list[#list + 1] = v end)
  return list
end

doc.gsm8k = {
  usage = "lm.data.gsm8k(path [, {n=, offset=}]) -> {item, ...}",
  text = "GSM8K problems from its JSON Lines form ({\"question\": ..., \"answer\": \"... #### 42\"}), each item "
    .. "{id=, question=, answer=, solution=}: answer is the number after the last \"####\" (commas and signs "
    .. "read as lm.extract.number does), solution the whole answer text, calculator marks <<6*7=42>> included. "
    .. "id is \"gsm8k-\" and the record's position in the file (from 1), so items keep their ids under offset. "
    .. "A record without question, answer or a number after \"####\" is an error naming the file and line.",
  example = "local items = lm.data.gsm8k(\"../shared/data/gsm8k/test.jsonl\", {n = 100})\nprint(#items, items[1].answer)",
}
function M.gsm8k(path, opts)
  local n, offset = window("gsm8k", opts)
  local items = {}
  read_lines("gsm8k", path, n, offset, function(v, _, index)
    if type(v) ~= "table" or type(v.question) ~= "string" or type(v.answer) ~= "string" then
      return "expected an object with string fields question and answer"
    end
    local marks = {}
    for pos in v.answer:gmatch("()####") do marks[#marks + 1] = pos end
    local gold = marks[1] and extract.number(v.answer:sub(marks[#marks] + 4))
    if gold == nil then return "no number after '####' in the answer" end
    items[#items + 1] = {id = "gsm8k-" .. index, question = v.question, answer = gold, solution = v.answer}
  end)
  return items
end

for name, entry in pairs(doc) do
  entry.name = "lm.data." .. name
  lm.document(M[name], entry)
end
lm.document(M, {
  name = "lm.data",
  usage = "lm.data",
  text = "Data sets as lists of tables: jsonl (any JSON Lines file) and gsm8k (GSM8K's #### answers). For "
    .. "generated arithmetic problems see lm.tasks.",
  example = "local items = lm.data.gsm8k(\"test.jsonl\", {n = 5, offset = 10})",
})
return M
