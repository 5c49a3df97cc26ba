-- lm.choice: the rule m:choose follows, written once for every backend. A backend scores each option after the
-- prefix (and, for "calibrated", with no context) its own way: the local model in Swift, lm.remote in batched
-- requests; then `check` and `rank` decide the same way for both: which options and `by` are allowed, what an
-- option's score is, and which option wins (the highest score, the first among equals).
local lm = require "lm"

local M = {}
local BY = {sum = true, mean = true, calibrated = true}

-- The edit distance between two strings (for the did-you-mean of an unknown option, as the local options say it).
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = {[0] = i}
    for j = 1, #b do
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a:byte(i) == b:byte(j) and 0 or 1))
    end
    prev = cur
  end
  return prev[#b]
end

-- Raises `message` as an error about argument n of choose, `level` frames up (as luaL_argerror words it).
local function bad(n, message, level)
  error(("bad argument #%d to 'choose' (%s)"):format(n, message), level + 1)
end

function M.check(options, opts, level)
  level = (level or 1) + 1
  if type(options) ~= "table" then bad(2, "table expected, got " .. type(options), level) end
  if #options == 0 then bad(2, "no options to choose from", level) end
  for i = 1, #options do
    local c = options[i]
    if type(c) ~= "string" or c == "" then bad(2, ("option %d is not a non-empty string"):format(i), level) end
  end
  if opts == nil then return "mean" end
  if type(opts) ~= "table" then bad(3, "table expected, got " .. type(opts), level) end
  for k in pairs(opts) do
    if k ~= "by" then
      local near = type(k) == "string" and distance(k, "by") <= 2 and " (did you mean 'by'?)" or ""
      error(("choose: unknown option '%s'%s"):format(tostring(k), near), level)
    end
  end
  local by = opts.by
  if by == nil then return "mean" end
  if not BY[by] then
    bad(3, ("option 'by' must be \"sum\", \"mean\" or \"calibrated\", got %s"):format(tostring(by)), level)
  end
  return by
end

function M.rank(options, scores, by, calibration)
  local best = 1
  for i = 1, #options do
    local s = scores[i]
    s.option = options[i]
    if by == "calibrated" then s.calibrated = s.sum - calibration[i].sum end
    s.score = by == "sum" and s.sum or by == "mean" and s.mean or s.calibrated
    if s.score > scores[best].score then best = i end
  end
  return options[best], scores, best
end

lm.document(M.check, {
  name = "lm.choice.check",
  usage = "lm.choice.check(options, opts [, level]) -> by",
  text = "Checks m:choose's options (a list of non-empty strings) and opts ({by = \"mean\" | \"sum\" | "
    .. "\"calibrated\"}) and returns by, raising the error m:choose raises (level as error()'s, 1 by default).",
  example = "print(lm.choice.check({\" Paris\", \" Rome\"}, {by = \"sum\"}))",
})
lm.document(M.rank, {
  name = "lm.choice.rank",
  usage = "lm.choice.rank(options, scores, by [, calibration]) -> best, scores, index",
  text = "Decides as m:choose does: scores[i] is option i's score table after the prefix ({sum=, mean=, ...}), "
    .. "calibration[i] (by = \"calibrated\") its score with no context; each score gets option, score (and "
    .. "calibrated) fields, and the winner is the highest score, the first among equals.",
  example = "print(lm.choice.rank({\"a\", \"b\"}, {{sum = -2, mean = -1}, {sum = -1, mean = -1}}, \"mean\"))",
})
lm.document(M, {
  name = "lm.choice",
  usage = "lm.choice",
  text = "The rule m:choose follows on every backend (the local model and lm.remote): check (the options and by "
    .. "allowed) and rank (each option's score, and the winner). A backend only scores.",
  example = "local best, scores, i = lm.choice.rank(opts, my_scores, \"mean\")",
})
return M
