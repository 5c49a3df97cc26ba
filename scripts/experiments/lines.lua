-- The result lines of an experiment folder, for the report scripts (echo_report, selection_report, rise_report,
-- fields_report): DIR/results.jsonl decoded, grouped by strategy and keyed by item id, over every seed set.
--
--   local lines = require "experiments.lines"
--   local run = lines.read(dir, die)          -- die(message) is called for a missing file or a bad line
--   for _, r in ipairs(run:of("bon8")) do ... end   -- one strategy's lines of seed set 1 in item order
--   for _, it in ipairs(run:items("bon8")) do ... it.sets[j] ... end   -- its items, each with its line per set
--   local pool = run:pool()                   -- per-line scores, pooled per item over the seed sets
--   local clusters = run:clusters(rows)       -- each row's template on arithmetic data (nil on other data)
--   local c = lines.compare(a, b, clusters)    -- paired difference and test, by template when clustered
--   local one = lines.read(dir, die, 2)       -- seed set 2 alone, as a run of one set
--
-- Seed sets (run.lua --seeds K): run.K is the number of sets (the largest seed_set of the lines, or run.json's
-- `seeds`); run.sets[strategy][item][j] is the line of set j, and an arm run.json lists as `deterministic` (greedy
-- decoding: it ran in set 1 only) has its set-1 line in every set. run.by keeps the lines of set 1 (run:of). As
-- run.lua's table does, the reports score an item by its mean over the sets it has (pool:scores), resample items
-- and test the items' differences with the sign-flip test when K > 1 (numbers in 0..1, not right/wrong); with
-- K = 1 the scores stay right/wrong and every report reads as before.
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

--- One strategy's items over every seed set, in item order: {item = id, index = i, sets = {[j] = line}, line = its
--- line of the lowest set}; a deterministic arm's one line is in every set. `die` is called when it has none.
function Run:items(name)
  local t = self.sets[name]
  if not t then
    self.die(("no lines of strategy '%s' in %s (it has: %s)"):format(name, self.path, table.concat(self.order, ", ")))
  end
  local out = {}
  for id, sets in pairs(t) do
    for j = 1, self.K do
      if sets[j] then out[#out + 1] = {item = id, index = sets[j].index, sets = sets, line = sets[j]}; break end
    end
  end
  table.sort(out, function(a, b) return a.index < b.index end)
  return out
end

--- Every line of the run (each once, in no particular order): for id, line in run:each_line() do ... end
function Run:each_line()
  local list, seen = {}, {}
  for _, t in pairs(self.sets) do
    for id, sets in pairs(t) do
      for j = 1, self.K do
        local r = sets[j]
        if r and not seen[r] then seen[r] = true; list[#list + 1] = {id, r} end
      end
    end
  end
  local k = 0
  return function()
    k = k + 1
    if list[k] then return list[k][1], list[k][2] end
  end
end

--- How an arm's items read in a table: "N" with one seed set, else "N × m" (m the mean number of sets an item
--- has, one decimal) or "N × 1 (deterministic)". `items` as Run:items gives them (or any list with `sets`).
function Run:items_label(name, items)
  if self.K == 1 then return tostring(#items) end
  if self.deterministic[name] then return ("%d × 1 (deterministic)"):format(#items) end
  local runs = 0
  for _, it in ipairs(items) do
    for j = 1, self.K do if it.sets[j] then runs = runs + 1 end end
  end
  return ("%d × %s"):format(#items, #items > 0 and ("%.1f"):format(runs / #items) or "0")
end

--- Scores pooled over seed sets: pool:add(series, item, set, x) for each line (x true/false, or a number in 0..1;
--- nil leaves the line out), then pool:scores(series, items) gives each item's score: with one seed set the value
--- as added (true/false stay booleans, so lines.compare tests them with McNemar's test), else the mean over the
--- sets that have one (a number in 0..1). pool:per_set(series, items) gives the accuracy of each set alone.
local Pool = {}
Pool.__index = Pool

function Run:pool() return setmetatable({K = self.K, v = {}}, Pool) end

function Pool:add(series, item, set, x)
  if x == nil then return end
  local s = self.v[series]
  if not s then s = {}; self.v[series] = s end
  local t = s[item]
  if not t then t = {}; s[item] = t end
  t[set] = x
end

local function number(x) if x == true then return 1 elseif x == false or x == nil then return 0 end return x end

--- One item's score in a series (nil when none of its sets has one).
function Pool:score(series, item)
  local t = self.v[series] and self.v[series][item]
  if not t then return nil end
  if self.K == 1 then return t[1] end
  local sum, n = 0, 0
  for j = 1, self.K do
    if t[j] ~= nil then sum, n = sum + number(t[j]), n + 1 end
  end
  return n > 0 and sum / n or nil
end

--- The scores of a list of items (ids, or rows with an `item` field), in its order.
function Pool:scores(series, items)
  local out = {}
  for k, it in ipairs(items) do out[k] = self:score(series, type(it) == "table" and it.item or it) end
  return out
end

--- The accuracy of each seed set alone over the given items (those the set has a score for), and their spread.
--- -> {{set = j, items = n, accuracy = x}, ...}, {min =, max =, sd =} (nil with fewer than two sets)
function Pool:per_set(series, items)
  local out, accs = {}, {}
  local s = self.v[series] or {}
  for j = 1, self.K do
    local sum, n = 0, 0
    for _, it in ipairs(items) do
      local t = s[type(it) == "table" and it.item or it]
      if t and t[j] ~= nil then sum, n = sum + number(t[j]), n + 1 end
    end
    if n > 0 then
      out[#out + 1] = {set = j, items = n, accuracy = sum / n}
      accs[#accs + 1] = sum / n
    end
  end
  return out, M.spread(accs)
end

--- The spread of per-set accuracies: {min =, max =, sd =}, nil with fewer than two.
function M.spread(accs)
  if #accs < 2 then return nil end
  local sorted = {}
  for k, x in ipairs(accs) do sorted[k] = x end
  table.sort(sorted)
  return {min = sorted[1], max = sorted[#sorted], sd = lm.stats.sd(sorted)}
end

--- "0.210–0.250 (sd 0.020)", or "—" without a spread (one set).
function M.spread_text(spread)
  if not spread then return "—" end
  return ("%.3f–%.3f (sd %.3f)"):format(spread.min, spread.max, spread.sd)
end

--- "1: 0.230, 2: 0.250, 3: 0.240", or "—" when no set has a score.
function M.per_set_text(per_set)
  local parts = {}
  for _, p in ipairs(per_set or {}) do parts[#parts + 1] = ("%d: %.3f"):format(p.set, p.accuracy) end
  return #parts > 0 and table.concat(parts, ", ") or "—"
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
  for id, r in self:each_line() do
    if r.template ~= nil then out[id] = tostring(r.template); own = true end
  end
  if not steps and not own then self._templates = false; return nil end
  if steps then
    local offset, last = math.tointeger(meta.offset) or 0, 0
    for _, r in self:each_line() do last = math.max(last, math.tointeger(r.index) or 0) end
    steps = steps == "" and "mixed" or (math.tointeger(tonumber(steps)) or steps)
    local items = {}
    for _, item in ipairs(lm.tasks.arithmetic({n = last + offset, seed = math.tointeger(meta.seed) or 1, steps = steps})) do
      items[tostring(item.id)] = item
    end
    for id, r in self:each_line() do
      local item = items[tostring(id)]
      if out[id] == nil and item and item.template ~= nil and r.gold ~= nil
          and lm.verify.numeric(r.gold, item.answer) == true then
        out[id] = tostring(item.template)
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

--- What the intervals and tests of a report were: a sentence for under its table. With K > 1 seed sets it begins
--- with how they were pooled, and the test is the sign-flip test (the items' scores are means, not right/wrong).
function M.method(clusters, K)
  local sets = ""
  if K and K > 1 then
    sets = ("Seed sets: %d; an item's score is its mean over the sets it has, and the per-set accuracies are each "
      .. "set's alone. "):format(K)
  end
  if not clusters then
    if sets ~= "" then
      return sets .. "Intervals: 95% bootstrap over items; p: a sign-flip permutation test on the items' differences."
    end
    return "Intervals: 95% bootstrap over items; p: McNemar's exact test on the items' right/wrong pairs."
  end
  local seen, k = {}, 0
  for _, c in ipairs(clusters) do if not seen[c] then seen[c] = true; k = k + 1 end end
  return sets .. ("Intervals: 95%% cluster bootstrap that resamples the %d templates the items come from; p: a sign-flip "
    .. "permutation test on the items' differences, signs flipped per template."):format(k)
end

--- Reads DIR/results.jsonl (and DIR/run.json's `seeds` and `deterministic`, when it has them): every seed set, or
--- with `set` that seed set alone, as a run of one set (a deterministic arm's set-1 line standing for it). A line
--- without seed_set is of set 1.
--- -> {path=, dir=, K=, by = {strategy = {item id = line of set 1 (or `set`)}},
---     sets = {strategy = {item id = {[j] = line}}}, deterministic = {name = true}, order = {strategy names}}
function M.read(dir, die, set)
  local path = dir .. "/results.jsonl"
  local f = io.open(path, "r")
  if not f then die("cannot read " .. path) end
  local want = set or 1
  local lines, n, most = {}, 0, 1
  for line in f:lines() do
    n = n + 1
    local ok, r = pcall(lm.json.decode, line)
    if not ok then die(("%s:%d: %s"):format(path, n, tostring(r))) end
    local j = math.tointeger(r.seed_set) or 1
    most = math.max(most, j)
    lines[#lines + 1] = {r, j}
  end
  f:close()
  local meta = {}
  local g = io.open(dir .. "/run.json", "r")
  if g then
    local ok, m = pcall(lm.json.decode, g:read("a"))
    g:close()
    if ok and type(m) == "table" then meta = m end
  end
  local fixed = {}
  for _, name in ipairs(type(meta.deterministic) == "table" and meta.deterministic or {}) do fixed[name] = true end
  -- set 1 (or `set`) first, as the reports always read it; then every set.
  local by, order, sets, seen = {}, {}, {}, {}
  for _, x in ipairs(lines) do
    local r, j = x[1], x[2]
    if j == want or (j == 1 and fixed[r.strategy]) then
      if not by[r.strategy] then by[r.strategy] = {}; order[#order + 1] = r.strategy; seen[r.strategy] = true end
      if j == want or by[r.strategy][r.item] == nil then by[r.strategy][r.item] = r end
    end
  end
  local K
  if set then
    K = 1
    for name, t in pairs(by) do
      sets[name] = {}
      for id, r in pairs(t) do sets[name][id] = {r} end
    end
  else
    K = math.max(most, math.tointeger(meta.seeds) or 1)
    for _, x in ipairs(lines) do
      local r, j = x[1], x[2]
      if not seen[r.strategy] then order[#order + 1] = r.strategy; seen[r.strategy] = true end
      sets[r.strategy] = sets[r.strategy] or {}
      local t = sets[r.strategy][r.item] or {}
      sets[r.strategy][r.item] = t
      t[j] = r
    end
    for name in pairs(fixed) do
      for _, t in pairs(sets[name] or {}) do
        for j = 2, K do t[j] = t[j] or t[1] end
      end
    end
  end
  return setmetatable({path = path, dir = dir, K = K, by = by, sets = sets, order = order, deterministic = fixed,
                       die = die}, Run)
end

return M
