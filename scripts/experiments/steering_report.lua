-- The dose-response of a steering experiment (strategies.steering): accuracy by scale for the steering vector and
-- for the random direction of the same norms, per family, beside the no-stimulus and text-stimulus arms, graded by
-- the common final-answer grader (experiments.grading) as every arm of every table is; with the share of traces cut
-- at the budget. Writes DIR/dose.md (a table; paired differences against the "none" arm: 95% bootstrap interval and
-- McNemar's test) and DIR/dose.svg (the chart), and prints the table.
--   refrain run scripts/experiments/steering_report.lua DIR [--title TEXT]
local grading = require "experiments.grading"
local lines = require "experiments.lines"

local function die(msg) io.stderr:write("steering_report: " .. msg .. "\n"); os.exit(2) end
local dir, title = nil, nil
local i = 1
while i <= #arg do
  if arg[i] == "--title" then title = arg[i + 1] or die("--title needs text"); i = i + 2
  else dir = dir and die("one folder only") or arg[i]; i = i + 1 end
end
if not dir then die("usage: steering_report.lua DIR [--title TEXT]") end

local run = lines.read(dir, die)
-- Each strategy's arm, family and scale, from its lines' extra fields.
local arms = {}
for _, name in ipairs(run.order) do
  local any
  for _, l in pairs(run.by[name]) do any = l; break end
  local e = any.extra or {}
  arms[#arms + 1] = {name = name, arm = e.arm or "none", family = e.family or "positive", scale = e.scale}
end
local base
for _, a in ipairs(arms) do if a.arm == "none" then base = a.name end end
if not base then die("no arm \"none\" in " .. dir) end

local items = {}
for id in pairs(run.by[base]) do items[#items + 1] = id end
table.sort(items, function(a, b) return tostring(a) < tostring(b) end)

-- Per strategy: the common grader's verdicts by item, and the share cut at the budget.
local function verdicts(name)
  local xs, cut, n = {}, 0, 0
  for k, id in ipairs(items) do
    local l = run.by[name][id]
    local g = l and grading.line(l)
    xs[k] = g and g.correct and 1 or 0
    if l then
      n = n + 1
      if (l.extra or {}).finish == "length" then cut = cut + 1 end
    end
  end
  return xs, n > 0 and cut / n or 0
end

local md = {("# Dose-response: %s\n"):format(title or dir:match("[^/]+$")),
            ("%d items; accuracy by the common final-answer grader; Δ against `%s` (paired, 95%% bootstrap interval, McNemar p; no correction: read the Holm-adjusted p of the run's own table, results.md); cut: traces that reached the token budget.\n"):format(#items, base),
            "| strategy | arm | family | scale | accuracy | Δ vs none [95% CI] | p | won / lost | cut |",
            "|---|---|---|--:|--:|---|--:|--:|--:|"}
local baseX = verdicts(base)
local series = {}
for _, a in ipairs(arms) do
  local xs, cut = verdicts(a.name)
  local acc = lm.stats.mean(xs)
  local diff, p, won, lost = "(baseline)", "—", "—", "—"
  if a.name ~= base then
    local d = {}
    local w, l = 0, 0
    for k = 1, #items do
      d[k] = xs[k] - baseX[k]
      if d[k] > 0 then w = w + 1 elseif d[k] < 0 then l = l + 1 end
    end
    local lo, hi, mu = lm.stats.bootstrap_ci(d)
    diff = ("%+.3f [%+.3f, %+.3f]"):format(mu, lo, hi)
    local a1, b1 = {}, {}
    for k = 1, #items do a1[k] = xs[k] == 1; b1[k] = baseX[k] == 1 end
    p = ("%.3f"):format(lm.stats.mcnemar(a1, b1).p)
    won, lost = tostring(w), tostring(l)
  end
  md[#md + 1] = ("| %s | %s | %s | %s | %.3f | %s | %s | %s | %.0f%% |"):format(a.name, a.arm, a.family,
    a.scale and ("%g"):format(a.scale) or "", acc, diff, p, won == "—" and "—" or won .. " / " .. lost, 100 * cut)
  if a.arm == "steer" or a.arm == "random" then
    local key = a.arm .. " (" .. a.family .. ")"
    series[key] = series[key] or {}
    table.insert(series[key], {a.scale, acc})
  end
end

-- The chart: accuracy against scale, one line per arm and family, the none arm at scale 0 on every line.
local noneAcc = lm.stats.mean(baseX)
local names, xsAll, seen = {}, {}, {[0] = true}
for key, pts in pairs(series) do
  names[#names + 1] = key
  for _, pt in ipairs(pts) do seen[pt[1]] = true end
end
table.sort(names)
for x in pairs(seen) do xsAll[#xsAll + 1] = x end
table.sort(xsAll)
local chart = {}
for _, key in ipairs(names) do
  local byScale = {[0] = noneAcc}
  for _, pt in ipairs(series[key]) do byScale[pt[1]] = pt[2] end
  local values = {}
  for k, x in ipairs(xsAll) do values[k] = byScale[x] or (0 / 0) end
  chart[#chart + 1] = {name = key, values = values}
end
if #chart > 0 then
  lm.plot.lines(chart, {file = dir .. "/dose.svg", xs = xsAll, ymin = 0, xlabel = "scale of the added direction",
    ylabel = "accuracy (common grader)", title = "Steering dose-response: " .. (title or dir:match("[^/]+$"))})
end
local f = assert(io.open(dir .. "/dose.md", "w"))
f:write(table.concat(md, "\n") .. "\n")
f:close()
print(table.concat(md, "\n"))
print("wrote " .. dir .. "/dose.md" .. (#chart > 0 and ", dose.svg" or ""))
