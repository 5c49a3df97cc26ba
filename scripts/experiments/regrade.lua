-- Re-grades an experiment folder's result lines with the fixed strategy code, without the model: what a line
-- recorded (every sample's text) is read again. Written for the defects of lists with holes (docs/results/README.md,
-- errata): a sample without a number left a hole in the answers list, and the majority vote counted `#answers`,
-- which stops at a hole, so a vote could ignore the samples after it; and the JSON writer wrote such a list as an
-- object ({"1": 9, "3": 16}). For each line:
--   selection.self_consistency  the answers read again from the samples (as the strategy: lm.extract.number, or
--                               lm.extract.final over each sample and its constrained answer step), the
--                               vote over all of them, answer, correct, votes, counts and answers (an lm.list)
--   selection.best_of_n         the majority read-out likewise (the line's answer too when it is the arm's read-out)
--   selection.retry             each round's answers as lists of the round's draws (the trajectory itself cannot be
--                               re-graded: the arms that reject tried answers were re-run, see --drop)
--   echo.causal                 the continuations' answers as a list of the samples
--   arithmetic items          the item's template (made again from the seed), which lines of older runners lack
-- Lines change only where a value changed; each changed line gets `regraded` (what was fixed). --data-as SPEC
-- rewrites every line's data field (a GSM8K path of the machine that ran it, to the repository's copy of the same
-- file); --drop NAME removes a strategy's lines (to run them again with the runner's resume).
--
--   refrain run scripts/experiments/regrade.lua DIR [--data-as SPEC] [--drop NAME]... [--dry-run]
-- The strategies and the other experiment scripts are found next to this script, as run.lua finds them.
do
  local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
  package.path = here .. "/../?.lua;" .. here .. "/../?/init.lua;" .. package.path
end
local selection = require "strategies.selection"
local answers = require "strategies.answers"
local grading = require "experiments.grading"

local function die(msg) io.stderr:write("regrade.lua: " .. msg .. "\n"); os.exit(2) end

local dir, data_as, drop, dry = nil, nil, {}, false
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--data-as" then i = i + 1; data_as = arg[i] or die("--data-as needs a value")
    elseif a == "--drop" then i = i + 1; drop[arg[i] or die("--drop needs a strategy name")] = true
    elseif a == "--dry-run" then dry = true
    elseif a:sub(1, 2) == "--" then die("unknown argument " .. a)
    elseif dir then die("one folder at a time")
    else dir = a end
    i = i + 1
  end
end
if not dir then die("usage: refrain run scripts/experiments/regrade.lua DIR [--data-as SPEC] [--drop NAME]... [--dry-run]") end

local path = dir .. "/results.jsonl"
local f = io.open(path, "r") or die("cannot read " .. path)
local text = f:read("a")
f:close()

local function same(a, b) return answers.key(a) == answers.key(b) end

-- Whether a decoded list was written as an object by an older runner ({"1": 9, "3": 16}).
local function as_object(v)
  if type(v) ~= "table" then return false end
  for k in pairs(v) do if type(k) == "string" and k ~= "n" then return true end end
  return false
end

-- The samples' answers of a line's sample call as the strategy reads them, an lm.list: lm.extract.number (or the
-- spec's extract), or after a constrained answer step each sample with its step (grading.sample_texts) read with
-- lm.extract.final, as selection's draw does.
local function read_samples(l)
  local ok, spec = pcall(lm.json.decode, tostring(l.call):match("^[%w_%.]+(%b{})") or "{}")
  spec = ok and type(spec) == "table" and spec or {}
  local step = answers.answer_constraint(spec.answer_step)
  local extract = answers.extractor({extract = type(spec.extract) == "string" and spec.extract or nil}, step and "final" or "number")
  local texts = grading.sample_texts(l)
  local list = lm.list(#texts)
  for i, t in ipairs(texts) do list[i] = extract(t) end
  return list
end

local function check(answer, gold)
  if gold == nil then return nil end
  return answer ~= nil and lm.verify.numeric(answer, gold) == true
end

-- The template of an arithmetic item (lines of runners before items carried it): the items made again from the
-- line's data spec and seed (lm.tasks.arithmetic gives the same items on every machine), by id.
local templates = {}
local function template_of(l)
  local steps = tostring(l.data):match("^arithmetic:?(.*)$")
  if not steps or l.seed_base == nil and l.seed == nil then return nil end
  local seed = math.tointeger(l.seed_base) or 1
  local key = steps .. "/" .. seed
  if not templates[key] then
    local s = steps == "" and "mixed" or (math.tointeger(tonumber(steps)) or steps)
    local by = {}
    for _, it in ipairs(lm.tasks.arithmetic({n = 2000, seed = seed, steps = s})) do by[it.id] = it.template end
    templates[key] = by
  end
  return templates[key][l.item]
end

local out, changed, dropped, votes_fixed, total = {}, 0, 0, 0, 0
for line in text:gmatch("([^\n]+)") do
  local l = lm.json.decode(line)
  total = total + 1
  if drop[l.strategy] then
    dropped = dropped + 1
  else
    local fixed = {}
    local name = tostring(l.call):match("^([%w_%.]+)")
    local e = l.extra or {}
    if data_as and l.data ~= data_as then l.data = data_as; fixed[#fixed + 1] = "data" end
    if l.template == nil then
      local t = template_of(l)
      if t then l.template = t; fixed[#fixed + 1] = "template" end
    end
    if name == "selection.self_consistency" then
      local list = read_samples(l)
      local winner, votes, counts = selection.vote(list)
      if not same(winner, l.answer) then
        votes_fixed = votes_fixed + 1
        fixed[#fixed + 1] = ("vote: %s -> %s"):format(tostring(l.answer), tostring(winner))
        l.answer, l.correct = winner, check(winner, l.gold)
      end
      if as_object(e.answers) then fixed[#fixed + 1] = "answers as a list" end
      if e.answers ~= nil or e.counts ~= nil then e.answers, e.votes, e.counts = list, votes, counts end
    elseif name == "selection.best_of_n" and e.readouts and e.readouts.majority then
      local list = read_samples(l)
      local winner, votes = selection.vote(list)
      local m = e.readouts.majority
      if not same(winner, m.answer) then
        votes_fixed = votes_fixed + 1
        fixed[#fixed + 1] = ("majority read-out: %s -> %s"):format(tostring(m.answer), tostring(winner))
        m.answer, m.votes, m.correct = winner, votes, check(winner, l.gold)
        if (e.readout or "majority") == "majority" then l.answer, l.correct = winner, m.correct end
      end
    elseif name == "selection.retry" and type(e.history) == "table" then
      local objects = false
      for k, round in ipairs(e.history) do
        if type(round.answers) == "table" then
          objects = objects or as_object(round.answers)
          local call = l.calls and l.calls[k]
          round.answers = grading.list(round.answers, call and math.tointeger(call.n))
        end
      end
      if objects then fixed[#fixed + 1] = "answers as lists" end
    elseif name == "echo.causal" and type(e.answers) == "table" then
      local call = l.calls and l.calls[2]
      if as_object(e.answers) then fixed[#fixed + 1] = "answers as a list" end
      e.answers = grading.list(e.answers, call and math.tointeger(call.n))
    end
    if #fixed > 0 then
      l.regraded = (l.regraded and l.regraded .. "; " or "") .. table.concat(fixed, "; ")
      changed = changed + 1
    end
    out[#out + 1] = lm.json.encode(l)
  end
end
print(("%s: %d lines, %d re-graded (%d votes changed), %d dropped%s"):format(path, total, changed, votes_fixed,
  dropped, dry and " (dry run: nothing written)" or ""))
if not dry then
  local w = io.open(path .. ".tmp", "w") or die("cannot write " .. path .. ".tmp")
  w:write(table.concat(out, "\n"), #out > 0 and "\n" or "")
  w:close()
  assert(os.rename(path .. ".tmp", path))
end
