-- lm.stats: the numbers an experiment reports. Means with bootstrap intervals, paired differences between two
-- conditions on the same items, McNemar's test for paired right/wrong, Cohen's d and AUC for two groups. Lists
-- hold numbers or booleans (true counts 1, false 0). Bootstraps draw from lm.random, so a seed fixes them.
local lm = require "lm"
local random = require "lm.random"
local M, doc = {}, {}

-- The list xs as numbers, checked: fname names the function, what the argument, min the fewest elements.
local function values(fname, xs, what, min)
  if type(xs) ~= "table" then
    error(("lm.stats.%s: %s must be a list of numbers or booleans, got %s"):format(fname, what, type(xs)), 3)
  end
  local out = {}
  for i = 1, #xs do
    local v = xs[i]
    if v == true then v = 1 elseif v == false then v = 0 end
    if type(v) ~= "number" or v ~= v then
      error(("lm.stats.%s: %s[%d] is %s, expected a number or boolean"):format(fname, what, i,
        v ~= v and "NaN" or type(v) == "string" and ("the string %q"):format(v) or "a " .. type(v)), 3)
    end
    out[i] = v
  end
  if #out < (min or 1) then
    error(("lm.stats.%s: %s needs at least %d element%s, got %d"):format(fname, what, min or 1,
      (min or 1) == 1 and "" or "s", #out), 3)
  end
  return out
end

local function sum(xs)
  local s = 0
  for i = 1, #xs do s = s + xs[i] end
  return s
end

local function mean(xs) return sum(xs) / #xs end

-- The sample variance (n - 1 in the denominator), two passes.
local function variance(xs)
  local m, s = mean(xs), 0
  for i = 1, #xs do s = s + (xs[i] - m) ^ 2 end
  return s / (#xs - 1)
end

-- The p-quantile of a sorted list, interpolating linearly between order statistics (numpy's default, R's type 7).
local function quantile(sorted, p)
  local h = (#sorted - 1) * p
  local lo = math.floor(h)
  local a, b = sorted[lo + 1], sorted[math.min(lo + 2, #sorted)]
  return a + (h - lo) * (b - a)
end

-- {level=, iters=, seed=, clusters=} from opts, checked.
local function bootstrap_options(fname, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error(("lm.stats.%s: options must be a table, got %s"):format(fname, type(opts)), 3) end
  for k in pairs(opts) do
    if k ~= "level" and k ~= "iters" and k ~= "seed" and k ~= "clusters" then
      error(("lm.stats.%s: unknown option '%s' (level, iters, seed, clusters)"):format(fname, tostring(k)), 3)
    end
  end
  local level, iters, seed = opts.level or 0.95, opts.iters or 2000, opts.seed or 1
  if type(level) ~= "number" or level <= 0 or level >= 1 then
    error(("lm.stats.%s: option 'level' must be between 0 and 1, got %s"):format(fname, tostring(opts.level)), 3)
  end
  if not math.tointeger(iters) or iters < 1 then
    error(("lm.stats.%s: option 'iters' must be an integer >= 1, got %s"):format(fname, tostring(opts.iters)), 3)
  end
  if not math.tointeger(seed) then
    error(("lm.stats.%s: option 'seed' must be an integer, got %s"):format(fname, tostring(opts.seed)), 3)
  end
  return level, math.tointeger(iters), math.tointeger(seed)
end

-- The clusters of n elements (opts.clusters: one label per element, a string or a number) as a list of lists of
-- element indices, in order of first appearance; nil when no clusters are given.
local function cluster_groups(fname, clusters, n)
  if clusters == nil then return nil end
  if type(clusters) ~= "table" then
    error(("lm.stats.%s: option 'clusters' must be a list of labels, got %s"):format(fname, type(clusters)), 3)
  end
  local groups, at = {}, {}
  for i = 1, n do
    local c = clusters[i]
    if type(c) ~= "string" and type(c) ~= "number" then
      error(("lm.stats.%s: clusters[%d] is %s, expected a label (string or number) for each of the %d values")
        :format(fname, i, c == nil and "missing" or "a " .. type(c), n), 3)
    end
    if not at[c] then at[c] = #groups + 1; groups[#groups + 1] = {} end
    local g = groups[at[c]]
    g[#g + 1] = i
  end
  return groups
end

-- The percentile bootstrap interval of the mean of xs: iters resamples of n indices drawn with replacement; with
-- groups (cluster_groups), iters resamples of as many clusters drawn with replacement, each bringing all its
-- elements (the mean over the elements drawn: a cluster bootstrap).
local function bootstrap(xs, level, iters, seed, groups)
  local r, n, means = random(seed), #xs, {}
  if groups then
    local sums, sizes, k = {}, {}, #groups
    for g, members in ipairs(groups) do
      local s = 0
      for _, i in ipairs(members) do s = s + xs[i] end
      sums[g], sizes[g] = s, #members
    end
    for b = 1, iters do
      local s, m = 0, 0
      for _ = 1, k do
        local g = r:int(1, k)
        s, m = s + sums[g], m + sizes[g]
      end
      means[b] = s / m
    end
  else
    for b = 1, iters do
      local s = 0
      for _ = 1, n do s = s + xs[r:int(1, n)] end
      means[b] = s / n
    end
  end
  table.sort(means)
  local tail = (1 - level) / 2
  return quantile(means, tail), quantile(means, 1 - tail)
end

doc.mean = {
  usage = "lm.stats.mean(xs) -> number",
  text = "The arithmetic mean of a list of numbers or booleans (true is 1: the mean of right/wrong is the accuracy).",
  example = "print(lm.stats.mean({true, false, true, true}))  --> 0.75",
}
function M.mean(xs) return mean(values("mean", xs, "xs")) end

doc.sd = {
  usage = "lm.stats.sd(xs) -> number",
  text = "The sample standard deviation (n - 1 in the denominator) of at least two numbers or booleans.",
  example = "print(lm.stats.sd({2, 4, 4, 4, 5, 5, 7, 9}))  --> 2.138...",
}
function M.sd(xs) return math.sqrt(variance(values("sd", xs, "xs", 2))) end

doc.bootstrap_ci = {
  usage = "lm.stats.bootstrap_ci(xs [, {level=0.95, iters=2000, seed=1, clusters=}]) -> lo, hi, mean",
  text = "A percentile bootstrap confidence interval for the mean of xs (numbers or booleans): iters resamples "
    .. "of #xs items drawn with replacement by lm.random(seed); lo and hi are the (1 - level)/2 and "
    .. "(1 + level)/2 quantiles of the resampled means, interpolated linearly as numpy.quantile does. The same "
    .. "seed gives the same interval. The third value is the mean itself. With clusters (a label per value: the "
    .. "template an item was made from, say) it is a cluster bootstrap: each resample draws as many clusters as "
    .. "there are, with replacement, each bringing all its values, so that items that rise and fall together are "
    .. "not counted as independent evidence.",
  example = "local lo, hi, m = lm.stats.bootstrap_ci({1, 0, 1, 1, 0, 1, 1, 1})\nprint(m, lo, hi)",
}
function M.bootstrap_ci(xs, opts)
  local x = values("bootstrap_ci", xs, "xs")
  local level, iters, seed = bootstrap_options("bootstrap_ci", opts)
  local lo, hi = bootstrap(x, level, iters, seed, cluster_groups("bootstrap_ci", opts and opts.clusters, #x))
  return lo, hi, mean(x)
end

doc.paired = {
  usage = "lm.stats.paired(a, b [, {level=0.95, iters=2000, seed=1, clusters=}]) -> {diff=, lo=, hi=, ...}",
  text = "The mean of the paired differences a[i] - b[i] (the same items under two conditions: a strategy and "
    .. "its baseline), with a percentile bootstrap interval that resamples items, keeping pairs together (as "
    .. "bootstrap_ci over the differences; with clusters, a cluster bootstrap as there). The result: diff, lo, hi, "
    .. "level, n, mean_a, mean_b, and wins, losses, ties (items where a is above, below, equal to b). The lists "
    .. "must be the same length.",
  example = "local d = lm.stats.paired({1, 1, 0, 1, 1}, {0, 1, 0, 0, 1})\nprint(d.diff, d.lo, d.hi)",
}
function M.paired(a, b, opts)
  local x, y = values("paired", a, "a"), values("paired", b, "b")
  if #x ~= #y then error(("lm.stats.paired: the two lists differ in length (%d and %d)"):format(#x, #y), 2) end
  local level, iters, seed = bootstrap_options("paired", opts)
  local d, wins, losses = {}, 0, 0
  for i = 1, #x do
    d[i] = x[i] - y[i]
    if d[i] > 0 then wins = wins + 1 elseif d[i] < 0 then losses = losses + 1 end
  end
  local lo, hi = bootstrap(d, level, iters, seed, cluster_groups("paired", opts and opts.clusters, #d))
  return {diff = mean(d), lo = lo, hi = hi, level = level, n = #d, mean_a = mean(x), mean_b = mean(y),
          wins = wins, losses = losses, ties = #d - wins - losses}
end

-- erfc(x), Numerical Recipes' Chebyshev fit (fractional error below 1.2e-7 everywhere).
local function erfc(x)
  local z = math.abs(x)
  local t = 1 / (1 + 0.5 * z)
  local r = t * math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 +
    t * 0.17087277)))))))))
  return x >= 0 and r or 2 - r
end

-- Two-sided exact binomial p-value for k of m discordant pairs at p = 1/2: 2 P(X <= min(k, m - k)), capped at 1.
local function binomial_two_sided(k, m)
  local low, c, tail = math.min(k, m - k), 1.0, 0.0
  for i = 0, low do
    if i > 0 then c = c * (m - i + 1) / i end
    tail = tail + c
  end
  return math.min(1, 2 * tail * 0.5 ^ m)
end

local function booleans(fname, xs, what)
  if type(xs) ~= "table" then error(("lm.stats.%s: %s must be a list of booleans or 0/1, got %s"):format(fname, what, type(xs)), 3) end
  local out = {}
  for i = 1, #xs do
    local v = xs[i]
    if v == 1 then v = true elseif v == 0 then v = false end
    if type(v) ~= "boolean" then
      error(("lm.stats.%s: %s[%d] is %s, expected a boolean or 0/1"):format(fname, what, i, tostring(xs[i])), 3)
    end
    out[i] = v
  end
  return out
end

doc.mcnemar = {
  usage = "lm.stats.mcnemar(a, b [, {exact=}]) -> {b01=, b10=, n=, p=, method=, statistic=}",
  text = "McNemar's test for two conditions scored right/wrong on the same items (lists of booleans or 0/1, "
    .. "the same length). b10 counts items a got right and b wrong, b01 the reverse; only these discordant "
    .. "pairs matter. When b01 + b10 < 25 (or exact = true) p is the exact two-sided binomial p-value, "
    .. "min(1, 2 P(X <= min(b01, b10))) for X ~ Binomial(b01 + b10, 1/2), method \"exact\"; otherwise (or "
    .. "exact = false) the chi-square test with continuity correction, statistic = max(0, |b01 - b10| - 1)^2 "
    .. "/ (b01 + b10) on one degree of freedom, method \"chi2\" (statistic is min(b01, b10) for the exact test). No "
    .. "discordant pairs give p = 1.",
  example = "local t = lm.stats.mcnemar({true, true, false, true}, {false, true, false, false})\nprint(t.b10, t.b01, t.p)",
}
function M.mcnemar(a, b, opts)
  local x, y = booleans("mcnemar", a, "a"), booleans("mcnemar", b, "b")
  if #x ~= #y then error(("lm.stats.mcnemar: the two lists differ in length (%d and %d)"):format(#x, #y), 2) end
  if opts ~= nil then
    if type(opts) ~= "table" then error("lm.stats.mcnemar: options must be a table, got " .. type(opts), 2) end
    for k in pairs(opts) do
      if k ~= "exact" then error(("lm.stats.mcnemar: unknown option '%s' (exact)"):format(tostring(k)), 2) end
    end
  end
  local b01, b10 = 0, 0
  for i = 1, #x do
    if x[i] and not y[i] then b10 = b10 + 1 elseif y[i] and not x[i] then b01 = b01 + 1 end
  end
  local m = b01 + b10
  local exact = opts and opts.exact
  if exact == nil then exact = m < 25 end
  local r = {b01 = b01, b10 = b10, n = #x}
  if m == 0 then
    r.p, r.method, r.statistic = 1, exact and "exact" or "chi2", 0
  elseif exact then
    r.p, r.method, r.statistic = binomial_two_sided(b01, m), "exact", math.min(b01, b10)
  else
    r.statistic = math.max(0, math.abs(b01 - b10) - 1) ^ 2 / m
    r.p, r.method = erfc(math.sqrt(r.statistic / 2)), "chi2"
  end
  return r
end

doc.sign_flip = {
  usage = "lm.stats.sign_flip(d [, {clusters=, iters=20000, seed=1}]) -> {p=, n=, units=, method=}",
  text = "A paired permutation test that the differences d (a strategy minus its baseline, per item: a number, or "
    .. "the mean over seed sets) are symmetric about 0: the sum of d against the sums under every assignment of "
    .. "signs. With clusters (a label per value) the signs flip per cluster (all items of a template together), "
    .. "as a cluster-robust test must. Exact (all 2^k assignments of the k units whose sum is not 0) when k <= 16, "
    .. "method \"exact\"; else iters random assignments by lm.random(seed), p = (1 + hits) / (1 + iters), method "
    .. "\"monte carlo\". Two-sided: an assignment counts when |its sum| >= |the observed sum|. On right/wrong "
    .. "differences of single items the exact test is McNemar's exact test. units: k.",
  example = "local t = lm.stats.sign_flip({1, 1, 0, 1, -1, 1, 0.5})\nprint(t.p, t.method)",
}
function M.sign_flip(d, opts)
  local x = values("sign_flip", d, "d")
  opts = opts or {}
  if type(opts) ~= "table" then error("lm.stats.sign_flip: options must be a table, got " .. type(opts), 2) end
  for k in pairs(opts) do
    if k ~= "clusters" and k ~= "iters" and k ~= "seed" then
      error(("lm.stats.sign_flip: unknown option '%s' (clusters, iters, seed)"):format(tostring(k)), 2)
    end
  end
  local iters, seed = opts.iters or 20000, opts.seed or 1
  if not math.tointeger(iters) or iters < 1 then
    error("lm.stats.sign_flip: option 'iters' must be an integer >= 1, got " .. tostring(opts.iters), 2)
  end
  if not math.tointeger(seed) then error("lm.stats.sign_flip: option 'seed' must be an integer, got " .. tostring(opts.seed), 2) end
  local groups = cluster_groups("sign_flip", opts.clusters, #x)
  local units = {}
  if groups then
    for _, members in ipairs(groups) do
      local s = 0
      for _, i in ipairs(members) do s = s + x[i] end
      units[#units + 1] = s
    end
  else
    units = x
  end
  local nz, observed = {}, 0
  for _, u in ipairs(units) do
    observed = observed + u
    if math.abs(u) > 1e-12 then nz[#nz + 1] = math.abs(u) end
  end
  local k, target = #nz, math.abs(observed) - 1e-9
  if k == 0 then return {p = 1, n = #x, units = 0, method = "exact"} end
  if k <= 16 then
    local hits = 0
    for mask = 0, (1 << k) - 1 do
      local s = 0
      for j = 1, k do
        if mask & (1 << (j - 1)) ~= 0 then s = s + nz[j] else s = s - nz[j] end
      end
      if math.abs(s) >= target then hits = hits + 1 end
    end
    return {p = math.min(1, hits / (1 << k)), n = #x, units = k, method = "exact"}
  end
  local r, hits = random(seed), 0
  for _ = 1, iters do
    local s = 0
    for j = 1, k do
      if r:float() < 0.5 then s = s + nz[j] else s = s - nz[j] end
    end
    if math.abs(s) >= target then hits = hits + 1 end
  end
  return {p = (1 + hits) / (1 + iters), n = #x, units = k, method = "monte carlo"}
end

doc.holm = {
  usage = "lm.stats.holm(ps) -> adjusted",
  text = "Holm's step-down adjustment of a family of p-values (a list of numbers in [0, 1]): sorted ascending, the "
    .. "i-th smallest of m becomes max over j <= i of min(1, (m - j + 1) p(j)); the result is in the order given. "
    .. "It controls the chance of any false rejection in the family at the level used, for any dependence.",
  example = "local adj = lm.stats.holm({0.01, 0.04, 0.03})\nprint(adj[1], adj[2], adj[3])  --> 0.03 0.06 0.06",
}
function M.holm(ps)
  local p = values("holm", ps, "ps", 0)
  local m, order = #p, {}
  for i = 1, m do
    if p[i] < 0 or p[i] > 1 then error(("lm.stats.holm: ps[%d] is %s, not a p-value in [0, 1]"):format(i, tostring(p[i])), 2) end
    order[i] = i
  end
  table.sort(order, function(a, b) if p[a] ~= p[b] then return p[a] < p[b] end return a < b end)
  local out, running = {}, 0
  for rank, i in ipairs(order) do
    running = math.max(running, math.min(1, (m - rank + 1) * p[i]))
    out[i] = running
  end
  return out
end

doc.ranks = {
  usage = "lm.stats.ranks(xs) -> list",
  text = "The rank of each value of xs (1 for the smallest), tied values sharing their average rank, in the order "
    .. "of xs.",
  example = "local r = lm.stats.ranks({30, 10, 20, 10})\nprint(r[1], r[2], r[3], r[4])  --> 4.0 1.5 3.0 1.5",
}
local function ranks(x)
  local order = {}
  for i = 1, #x do order[i] = i end
  table.sort(order, function(a, b) return x[a] < x[b] end)
  local r, i = {}, 1
  while i <= #order do
    local j = i
    while j < #order and x[order[j + 1]] == x[order[i]] do j = j + 1 end
    for k = i, j do r[order[k]] = (i + j) / 2 end
    i = j + 1
  end
  return r
end
function M.ranks(xs) return ranks(values("ranks", xs, "xs", 0)) end

-- Pearson's r of two lists of numbers of one length; nil when either is constant.
local function pearson(x, y)
  local n, mx, my = #x, mean(x), mean(y)
  local sxy, sxx, syy = 0, 0, 0
  for i = 1, n do
    local dx, dy = x[i] - mx, y[i] - my
    sxy, sxx, syy = sxy + dx * dy, sxx + dx * dx, syy + dy * dy
  end
  if sxx == 0 or syy == 0 then return nil end
  return sxy / math.sqrt(sxx * syy)
end

-- Two lists of numbers of one length (at least two), checked.
local function pair_of_lists(fname, xs, ys)
  local x, y = values(fname, xs, "xs", 2), values(fname, ys, "ys", 2)
  if #x ~= #y then error(("lm.stats.%s: the two lists differ in length (%d and %d)"):format(fname, #x, #y), 3) end
  return x, y
end

doc.pearson = {
  usage = "lm.stats.pearson(xs, ys) -> number or nil",
  text = "Pearson's correlation of two lists of numbers of the same length (at least two); nil when either list is "
    .. "constant.",
  example = "print(lm.stats.pearson({1, 2, 3, 4}, {2, 4, 5, 9}))",
}
function M.pearson(xs, ys) return pearson(pair_of_lists("pearson", xs, ys)) end

doc.spearman = {
  usage = "lm.stats.spearman(xs, ys) -> number or nil",
  text = "Spearman's rank correlation: Pearson's correlation of the two lists' ranks (lm.stats.ranks, ties sharing "
    .. "their average rank); nil when either list is constant.",
  example = "print(lm.stats.spearman({1, 2, 3, 4, 5}, {2, 1, 4, 3, 5}))  --> 0.8",
}
function M.spearman(xs, ys)
  local x, y = pair_of_lists("spearman", xs, ys)
  return pearson(ranks(x), ranks(y))
end

doc.cohens_d = {
  usage = "lm.stats.cohens_d(xs, ys) -> number or nil",
  text = "Cohen's d: (mean(xs) - mean(ys)) / s, with s the pooled standard deviation sqrt(((nx - 1) var(xs) + "
    .. "(ny - 1) var(ys)) / (nx + ny - 2)) (sample variances). Needs at least one value in each group and three "
    .. "in all; nil when s is 0 (both groups constant).",
  example = "print(lm.stats.cohens_d({14.2, 15.1, 13.8, 14.9}, {11.4, 12.0, 11.9, 10.8}))",
}
function M.cohens_d(xs, ys)
  local x, y = values("cohens_d", xs, "xs"), values("cohens_d", ys, "ys")
  if #x + #y < 3 then error("lm.stats.cohens_d: needs at least three values in all (for a pooled deviation)", 2) end
  local vx, vy = #x > 1 and variance(x) or 0, #y > 1 and variance(y) or 0
  local s = math.sqrt(((#x - 1) * vx + (#y - 1) * vy) / (#x + #y - 2))
  if s == 0 then return nil end
  return (mean(x) - mean(y)) / s
end

doc.auc = {
  usage = "lm.stats.auc(pos, neg) -> number",
  text = "The area under the ROC curve for scores of positive and negative items: the probability that a "
    .. "random positive scores above a random negative, ties counting 1/2 (the Mann-Whitney U statistic "
    .. "divided by #pos * #neg, from average ranks). 0.5 is chance; 1 separates perfectly.",
  example = "print(lm.stats.auc({0.9, 0.8, 0.4}, {0.5, 0.3, 0.4}))  --> 0.8333...",
}
function M.auc(pos, neg)
  local p, n = values("auc", pos, "pos"), values("auc", neg, "neg")
  local all = {}
  for _, v in ipairs(p) do all[#all + 1] = {v, true} end
  for _, v in ipairs(n) do all[#all + 1] = {v, false} end
  table.sort(all, function(u, v) return u[1] < v[1] end)
  local rank_sum, i = 0, 1
  while i <= #all do
    local j = i
    while j < #all and all[j + 1][1] == all[i][1] do j = j + 1 end
    local avg = (i + j) / 2                               -- tied values share their average rank
    for k = i, j do if all[k][2] then rank_sum = rank_sum + avg end end
    i = j + 1
  end
  local u = rank_sum - #p * (#p + 1) / 2
  return u / (#p * #n)
end

for name, entry in pairs(doc) do
  entry.name = "lm.stats." .. name
  lm.document(M[name], entry)
end
lm.document(M, {
  name = "lm.stats",
  usage = "lm.stats",
  text = "Statistics for experiments: mean, sd, bootstrap_ci, paired (difference with a paired bootstrap "
    .. "interval; both take clusters for a cluster bootstrap), mcnemar, sign_flip (a paired permutation test, by "
    .. "cluster), holm (multiple comparisons), ranks, pearson, spearman, cohens_d, auc. Lists hold numbers or "
    .. "booleans.",
  example = "local d = lm.stats.paired(correct_with, correct_without)\n"
    .. "print(string.format(\"%+.3f [%+.3f, %+.3f]\", d.diff, d.lo, d.hi))",
})
return M
