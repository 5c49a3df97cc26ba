-- The result lines of an experiment folder, for the report scripts (echo_report, selection_report, rise_report,
-- fields_report): DIR/results.jsonl decoded, grouped by strategy and keyed by item id.
--
--   local lines = require "experiments.lines"
--   local run = lines.read(dir, die)          -- die(message) is called for a missing file or a bad line
--   local run2 = lines.read(dir, die, 2)      -- the lines of seed set 2 (run.lua --seeds); set 1 by default
--   for _, r in ipairs(run:of("bon8")) do ... end   -- one strategy's lines in item order (die when it has none)
local M = {}

local Run = {}
Run.__index = Run

--- One strategy's lines, in item order; `die` is called when the folder has none of it.
function Run:of(name)
  local t = self.by[name]
  if not t then
    self.die(("no lines of strategy '%s' in %s (it has: %s)"):format(name, self.path, table.concat(self.order, ", ")))
  end
  local out = {}
  for _, r in pairs(t) do out[#out + 1] = r end
  table.sort(out, function(a, b) return a.index < b.index end)
  return out
end

--- Reads DIR/results.jsonl: the lines of seed set `set` (default 1; a line without seed_set is of set 1).
--- -> {path=, by = {strategy = {item id = line}}, order = {strategy names as first seen}}
function M.read(dir, die, set)
  set = set or 1
  local path = dir .. "/results.jsonl"
  local f = io.open(path, "r")
  if not f then die("cannot read " .. path) end
  local by, order, n = {}, {}, 0
  for line in f:lines() do
    n = n + 1
    local ok, r = pcall(lm.json.decode, line)
    if not ok then die(("%s:%d: %s"):format(path, n, tostring(r))) end
    if (math.tointeger(r.seed_set) or 1) == set then
      if not by[r.strategy] then by[r.strategy] = {}; order[#order + 1] = r.strategy end
      by[r.strategy][r.item] = r
    end
  end
  f:close()
  return setmetatable({path = path, by = by, order = order, die = die}, Run)
end

return M
