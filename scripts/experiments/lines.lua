-- The result lines of an experiment folder, for the report scripts (echo_report, selection_report, rise_report,
-- fields_report): DIR/results.jsonl decoded, grouped by strategy and keyed by item id.
--
--   local lines = require "experiments.lines"
--   local run = lines.read(dir, die)          -- die(message) is called for a missing file or a bad line
--   local run2 = lines.read(dir, die, 2)      -- the lines of seed set 2 (run.lua --seeds); set 1 by default
--   for _, r in ipairs(run:of("bon8")) do ... end   -- one strategy's lines in item order (die when it has none)
--   local clusters = run:clusters(rows)       -- each row's template on arithmetic data (nil on other data)
--   local c = lines.compare(a, b, clusters)    -- paired difference and test, by template when clustered
--
-- The 200 arithmetic items come from about 20 templates whose items rise and fall together, so on that data the
-- reports resample whole templates and test by template, as run.lua's table does; GSM8K items count as independent.
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

--- The template of each item of an arithmetic run (item id -> template): a line's own `template`, else the
--- generator's for lines written before the runner recorded it (lm.tasks.arithmetic from DIR/run.json's data, seed
--- and offset; matched by item id and gold, as run.lua's report does). nil when the run is not on arithmetic data.
function Run:templates()
  if self._templates ~= nil then return self._templates or nil end
  local f = io.open(self.dir .. "/run.json", "r")
  local ok, meta = false, nil
  if f then ok, meta = pcall(lm.json.decode, f:read("a")); f:close() end
  meta = ok and type(meta) == "table" and meta or {}
  local steps = tostring(meta.data or ""):match("^arithmetic:?(.*)$")
  local out, own = {}, false
  for _, t in pairs(self.by) do
    for id, r in pairs(t) do
      if r.template ~= nil then out[id] = tostring(r.template); own = true end
    end
  end
  if not steps and not own then self._templates = false; return nil end
  if steps then
    local offset, last = math.tointeger(meta.offset) or 0, 0
    for _, t in pairs(self.by) do
      for _, r in pairs(t) do last = math.max(last, math.tointeger(r.index) or 0) end
    end
    steps = steps == "" and "mixed" or (math.tointeger(tonumber(steps)) or steps)
    local items = {}
    for _, item in ipairs(lm.tasks.arithmetic({n = last + offset, seed = math.tointeger(meta.seed) or 1, steps = steps})) do
      items[tostring(item.id)] = item
    end
    for _, t in pairs(self.by) do
      for id, r in pairs(t) do
        local item = items[tostring(id)]
        if out[id] == nil and item and item.template ~= nil and r.gold ~= nil
            and lm.verify.numeric(r.gold, item.answer) == true then
          out[id] = tostring(item.template)
        end
      end
    end
  end
  self._templates = out
  return out
end

--- The templates of a list of lines (one label each, for lm.stats' `clusters`), or nil when any has none.
function Run:clusters(rows)
  local t = self:templates()
  if not t then return nil end
  local out = {}
  for k, r in ipairs(rows) do
    out[k] = t[r.item]
    if out[k] == nil then return nil end
  end
  return out
end

local function number(x) if x == true then return 1 elseif x == false or x == nil then return 0 end return x end

--- The accuracy of per-item scores (booleans, or numbers in 0..1) with its 95% interval, resampling whole clusters
--- when given. -> lo, hi, mean
function M.accuracy(xs, clusters)
  return lm.stats.bootstrap_ci(xs, clusters and {clusters = clusters} or nil)
end

--- Scores a against b on the same items (booleans, or numbers in 0..1): the paired difference with its 95% interval
--- (a cluster bootstrap when clusters are given), items won and lost, and a test: McNemar's exact test on
--- right/wrong items, else (clusters, or scores between 0 and 1) a sign-flip permutation test, signs flipped per
--- cluster. -> {diff=, lo=, hi=, won=, lost=, p=, test=, method=} (test "McNemar", "sign-flip" or "sign-flip by
--- template"; method "exact" or "monte carlo")
function M.compare(a, b, clusters)
  local opts = clusters and {clusters = clusters} or nil
  local d = lm.stats.paired(a, b, opts)
  local out = {diff = d.diff, lo = d.lo, hi = d.hi, won = d.wins, lost = d.losses}
  local binary = clusters == nil
  for k = 1, #a do
    if type(a[k]) ~= "boolean" or type(b[k]) ~= "boolean" then binary = false end
  end
  if binary then
    local t = lm.stats.mcnemar(a, b)
    out.p, out.test, out.method = t.p, "McNemar", t.method
  else
    local diffs = {}
    for k = 1, #a do diffs[k] = number(a[k]) - number(b[k]) end
    local t = lm.stats.sign_flip(diffs, opts)
    out.p, out.test, out.method = t.p, "sign-flip" .. (clusters and " by template" or ""), t.method
  end
  return out
end

--- What the intervals and tests of a report were: a sentence for under its table.
function M.method(clusters)
  if not clusters then
    return "Intervals: 95% bootstrap over items; p: McNemar's exact test on the items' right/wrong pairs."
  end
  local seen, k = {}, 0
  for _, c in ipairs(clusters) do if not seen[c] then seen[c] = true; k = k + 1 end end
  return ("Intervals: 95%% cluster bootstrap that resamples the %d templates the items come from; p: a sign-flip "
    .. "permutation test on the items' differences, signs flipped per template."):format(k)
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
  return setmetatable({path = path, dir = dir, by = by, order = order, die = die}, Run)
end

return M
