-- Reports on the runner's lines for the selection analyses that are not one accuracy per strategy:
--   refrain run scripts/experiments/selection_report.lua readouts DIR [STRATEGY] [BASELINE]
--     every read-out of best-of-N's one shared sample set (lines of selection.best_of_n, strategy STRATEGY,
--     default "bon8"): first sample, majority@N (self-consistency), highest and lowest mean log-probability, and
--     pass@N (an oracle), each with its accuracy and 95% bootstrap interval and, against BASELINE (default
--     "greedy"), the paired difference with its interval and McNemar's test; then the same read-outs by the common
--     final-answer grader (experiments.grading: each sample's text read again), as a second table where any
--     verdict differs.
--   refrain run scripts/experiments/selection_report.lua surprisal DIR [STRATEGY] [--experiment NAME] [--sets 2,3]
--     surprisal-guided picks (lines of selection.surprisal, default "surprisal8", or of selection.best_of_n, whose
--     sample sets are picked from here with selection.surprisal_pick): on the items with a correct
--     sample, the per-token surprisal (−mean log-probability, nats) of the least and the most confident correct
--     sample, and how often they differ; the strategy's accuracy is pass@N by construction (it picks among the
--     samples a verifier accepts). A line's sample set is its `samples`, else its `scores` (the set without
--     texts); lines of older runs that have neither (too large for the line) take it from the run store: the
--     line's sample call of experiment NAME (default: the absolute DIR, as run.lua names it), graded with
--     lm.extract.number and lm.verify.numeric and checked against the line's own read-outs. --sets reads only
--     those seed sets (the ones whose sample sets the run store at hand holds).
--   refrain run scripts/experiments/selection_report.lua early DIR [STRATEGY]
--     early rejection run with compare=true (lines of selection.early_rejection, default "early"), against
--     best-of-k by highest mean log-probability over the same candidates finished in full (the first k, k = 1, 2,
--     4, and all N): accuracy with its 95% interval, the paired difference to early rejection with McNemar's test,
--     tokens generated per item; the same by the common final-answer grader (each candidate's full text read
--     again) where any verdict differs; then how well the partial scores rank the full ones (mean Spearman rho, how
--     often the best full candidate survived).
--   refrain run scripts/experiments/selection_report.lua retry DIR
--     feedback-friction retries (lines of selection.retry, every strategy in DIR): per strategy, the share of items
--     right within 1, 2, ... rounds, and in the rounds after the first how often the kept answer was one already
--     tried and how often none of the round's draws offered a new answer.
-- DIR is run.lua's --out folder; the report goes to standard output as Markdown. On arithmetic data the intervals
-- resample templates and the tests are sign-flip tests by template (experiments.lines), as run.lua's table. With
-- several seed sets (run.lua --seeds) every item's score is its mean over the sets it has (a deterministic arm's
-- line stands for every set), the tests are sign-flip tests on those means, and the tables add each set's own
-- accuracy and their spread; counts over lines (tokens, rounds, picks) are over every item run.
local selection = require "strategies.selection"
local answers = require "strategies.answers"
local grading = require "experiments.grading"
local lines = require "experiments.lines"

local function die(msg) io.stderr:write("selection_report: " .. msg .. "\n"); os.exit(2) end

local mode, dir = arg[1], arg[2]
local USAGE = "usage: selection_report.lua readouts DIR [STRATEGY] [BASELINE] | surprisal DIR [STRATEGY] [--experiment NAME] | "
  .. "early DIR [STRATEGY] | retry DIR"
if (mode ~= "readouts" and mode ~= "surprisal" and mode ~= "retry" and mode ~= "early") or not dir then die(USAGE) end

local run = lines.read(dir, die)
local path, order, K = run.path, run.order, run.K

local function fmt_p(p) return p < 0.001 and "<0.001" or ("%.3f"):format(p) end

-- " × K seed sets" after a count of items when there are several sets.
local function times_sets() return K > 1 and (" × %d seed sets"):format(K) or "" end

-- A read-out table: one row per read-out against the baseline's scores. rows = {{label, scores}, ...}. With
-- several seed sets, sets = {[0] = the baseline's {per_set, spread}, [k] = row k's}: a seed-set spread column, and
-- each set's accuracy under the table.
local function readout_table(base_name, ref, rows, clusters, extra_head, extra, sets)
  local lo, hi, acc = lines.accuracy(ref, clusters)
  local function spread(k) return sets and (" %s |"):format(lines.spread_text(sets[k][2])) or "" end
  print(("| read-out | accuracy [95%% CI] |%s Δ vs %s [95%% CI] | p | Holm p | won / lost |%s"):format(
    sets and " seed-set spread |" or "", base_name, extra_head and (" %s |"):format(extra_head) or ""))
  print("|---|---|" .. (sets and "---|" or "") .. "---|--:|--:|--:|" .. (extra_head and "--:|" or ""))
  print(("| %s | %.3f [%.3f, %.3f] |%s (baseline) | — | — | — |%s"):format(base_name, acc, lo, hi, spread(0),
    extra_head and (" %s |"):format(extra and extra[base_name] or "—") or ""))
  local cs, ps = {}, {}
  for k, row in ipairs(rows) do cs[k] = lines.compare(row[2], ref, clusters); ps[k] = cs[k].p end
  local holm = lm.stats.holm(ps)
  for k, row in ipairs(rows) do
    local l, h, a = lines.accuracy(row[2], clusters)
    local c = cs[k]
    print(("| %s | %.3f [%.3f, %.3f] |%s %+.3f [%+.3f, %+.3f] | %s | %s | %d / %d |%s"):format(row[1], a, l, h,
      spread(k), c.diff, c.lo, c.hi, fmt_p(c.p), fmt_p(holm[k]), c.won, c.lost,
      extra_head and (" %s |"):format(extra and extra[row[1]] or "—") or ""))
  end
  if sets then
    print("\nAccuracy per seed set:\n")
    print(("- %s: %s"):format(base_name, lines.per_set_text(sets[0][1])))
    for k, row in ipairs(rows) do print(("- %s: %s"):format(row[1], lines.per_set_text(sets[k][1]))) end
  end
  print("\n" .. lines.method(clusters, K) .. (" Holm p: adjusted over this table's %d comparisons."):format(#rows))
end

-- The seed-set figures of a read-out table (nil with one set): pool series `base` for the baseline and keys[k]
-- for row k, over the items `used`.
local function table_sets(pool, used, base, keys)
  if K == 1 then return nil end
  local out = {[0] = {pool:per_set(base, used)}}
  for k, key in ipairs(keys) do out[k] = {pool:per_set(key, used)} end
  return out
end

if mode == "readouts" then
  local name, base_name = arg[3] or "bon8", arg[4] or "greedy"
  local rows = run:items(name)
  if not run.sets[base_name] then
    die(("no baseline '%s' in %s (it has: %s)"):format(base_name, path, table.concat(order, ", ")))
  end
  local base = {}
  for _, it in ipairs(run:items(base_name)) do base[it.item] = it end
  local names = {"first", "majority", "max_logprob", "min_logprob", "pass"}
  local label = {first = "first sample", majority = "majority@N (self-consistency)",
                 max_logprob = "highest mean log-prob", min_logprob = "lowest mean log-prob",
                 pass = "pass@N (oracle: any sample right)"}
  -- The read-outs by the common final-answer grader: every sample's text read again (grading.read), the vote over
  -- those answers, the samples the log-probability read-outs picked, any sample right. nil without the texts.
  local function common_readouts(r)
    local outs = r.calls and r.calls[1] and r.calls[1].outputs
    local reads = r.extra.readouts
    if type(outs) ~= "table" or #outs == 0 then return nil end
    local list = lm.list(#outs)
    for i, o in ipairs(outs) do list[i] = grading.read(o.text) end
    local function right(a) return grading.right(a, r.gold) end
    local out = {first = right(list[1]), majority = right((answers.majority(list)))}
    for _, k in ipairs({"max_logprob", "min_logprob"}) do
      local i = reads[k] and math.tointeger(reads[k].index)
      if not i then return nil end
      out[k] = right(list[i])
    end
    out.pass = false
    for i = 1, list.n do out.pass = out.pass or right(list[i]) end
    return out
  end
  -- Per item and seed set: each read-out as the line records it ("own:"), by the common grader ("common:"), and
  -- the baseline's verdicts ("own:base", "common:base"); n counts the lines' verdicts the two graders differ on.
  local pool, samples, used, common_ok, n, counted = run:pool(), nil, {}, true, 0, {}
  for _, it in ipairs(rows) do
    local b, reads_of = base[it.item], {}
    for j = 1, K do
      local r = it.sets[j]
      reads_of[j] = r and r.extra and r.extra.readouts
    end
    if b and next(reads_of) then
      used[#used + 1] = it
      for j = 1, K do
        local r, reads = it.sets[j], reads_of[j]
        if reads then
          local call = r.calls and r.calls[1]
          samples = samples or (r.extra.samples and #r.extra.samples) or (r.extra.scores and #r.extra.scores)
            or (call and call.kind == "sample" and call.n)
          local cr = common_readouts(r)
          if not cr then common_ok = false end
          for _, k in ipairs(names) do
            local own = reads[k] and reads[k].correct == true or false
            pool:add("own:" .. k, it.item, j, own)
            if cr then
              pool:add("common:" .. k, it.item, j, cr[k])
              if (cr[k] == true) ~= own then n = n + 1 end
            end
          end
        end
      end
      for j = 1, K do
        local r = b.sets[j]
        if r then
          local cb = grading.line(r).correct
          pool:add("own:base", it.item, j, r.correct == true)
          if cb == nil then common_ok = false else pool:add("common:base", it.item, j, cb) end
          if cb ~= nil and not counted[r] and cb ~= (r.correct == true) then n = n + 1 end
          counted[r] = true
        end
      end
    end
  end
  local ref = pool:scores("own:base", used)
  local clusters = run:clusters(used)
  print(("Read-outs of %s's %s samples per item on %d items%s (%s), against %s%s; graded as the lines record "
    .. "(the strategies' own grader)\n"):format(name, tostring(samples or "?"), #ref, times_sets(), dir, base_name,
    (K > 1 and run.deterministic[base_name]) and " (deterministic: its one line stands for every set)" or ""))
  local function list_of(grader)
    local list, keys = {}, {}
    for _, k in ipairs(names) do
      list[#list + 1] = {label[k], pool:scores(grader .. k, used)}
      keys[#keys + 1] = grader .. k
    end
    return list, table_sets(pool, used, grader .. "base", keys)
  end
  local list, sets = list_of("own:")
  readout_table(base_name, ref, list, clusters, nil, nil, sets)
  if not common_ok then
    print("\nThe lines do not hold every sample's text, so the read-outs are not graded again by the common grader.")
  else
    if n == 0 then
      print("\nThe common final-answer grader (" .. grading.rule .. ") gives the same verdict on every read-out of every item.")
    else
      print(("\nBy the common final-answer grader (%s): the same read-outs, each sample's answer read again from its "
        .. "text (%d verdicts differ from the table above)\n"):format(grading.rule, n))
      local clist, csets = list_of("common:")
      readout_table(base_name, pool:scores("common:base", used), clist, clusters, nil, nil, csets)
    end
  end
elseif mode == "early" then
  local name = arg[3] or "early"
  -- Per item and seed set: early rejection's verdict and each best-of-k's, as the lines record them ("own:") and by
  -- the common grader ("common:"); tokens, rho and survival are counted over every item run (line).
  local pool, tokens, n, ks, rho, rhos, kept, runs = run:pool(), {}, nil, {}, 0, 0, 0, 0
  local common_ok, d, used = true, 0, {}
  for _, it in ipairs(run:items(name)) do
    used[#used + 1] = it
    for j = 1, K do
      local r = it.sets[j]
      if r then
        local e = r.extra or {}
        if not (e.full_means and e.full_correct and e.full_tokens) then
          die(("%s: item %s of '%s' has no full_means/full_correct/full_tokens (run early_rejection with "
            .. "compare=true)"):format(path, tostring(r.item), name))
        end
        if not n then
          n = #e.full_means
          for _, k in ipairs({1, 2, 4}) do if k < n then ks[#ks + 1] = k end end
          ks[#ks + 1] = n
        end
        if #e.full_means ~= n then
          die(("%s: item %s of '%s' has %d candidates, the first one %d"):format(path, tostring(r.item), name,
            #e.full_means, n))
        end
        runs = runs + 1
        tokens.early = (tokens.early or 0) + e.generated
        -- The common grader's verdict on each candidate finished in full (nil where the line lacks its text).
        local common = {}
        for i = 1, n do
          local text = r.calls and grading.early_candidate(r, i)
          if text == nil then common_ok = false else common[i] = grading.right(grading.read(text), r.gold) end
        end
        local g = r.calls and grading.line(r).correct
        if g == nil then common_ok = false end
        local function add(key, own, com)
          pool:add("own:" .. key, it.item, j, own)
          pool:add("common:" .. key, it.item, j, com)
          if own ~= com then d = d + 1 end
        end
        add(name, r.correct == true, g == true)
        for _, k in ipairs(ks) do
          local key, best, spent = ("best of %d"):format(k), nil, 0
          for i = 1, k do
            spent = spent + e.full_tokens[i]
            if best == nil or e.full_means[i] > e.full_means[best] then best = i end
          end
          add(key, e.full_correct[best] == true, common[best] == true)
          tokens[key] = (tokens[key] or 0) + spent
        end
        local any, cany = false, false
        for i = 1, n do any, cany = any or e.full_correct[i] == true, cany or common[i] == true end
        add("pass", any, cany)
        if type(e.spearman) == "number" then rho, rhos = rho + e.spearman, rhos + 1 end
        if e.best_kept then kept = kept + 1 end
      end
    end
  end
  local items = #used
  local clusters = run:clusters(used)
  print(("Early rejection (%s) against best-of-k by highest mean log-probability over the same %d candidates "
    .. "finished in full, %d items%s (%s); graded as the lines record (the strategy's own grader)\n"):format(name, n,
    items, times_sets(), dir))
  local keys = {}
  for _, k in ipairs(ks) do keys[#keys + 1] = ("best of %d"):format(k) end
  keys[#keys + 1] = "pass"
  local function label(key) return key == "pass" and ("pass@%d (oracle: any candidate right)"):format(n) or key end
  -- Tokens per item run (with one seed set, per item).
  local spent = {[name] = ("%.1f"):format(tokens.early / runs)}
  for _, key in ipairs(keys) do spent[label(key)] = tokens[key] and ("%.1f"):format(tokens[key] / runs) or "—" end
  local function table_of(grader)
    local out, series = {}, {}
    for _, key in ipairs(keys) do
      out[#out + 1] = {label(key), pool:scores(grader .. key, used)}
      series[#series + 1] = grader .. key
    end
    readout_table(name, pool:scores(grader .. name, used), out, clusters, "tokens per item", spent,
      table_sets(pool, used, grader .. name, series))
  end
  table_of("own:")
  if not common_ok then
    print("\nThe lines do not hold every candidate's text, so the read-outs are not graded again by the common grader.")
  else
    if d == 0 then
      print("\nThe common final-answer grader (" .. grading.rule .. ") gives the same verdict on every read-out of every item.")
    else
      print(("\nBy the common final-answer grader (%s): the same read-outs, each candidate's full text read again "
        .. "(%d verdicts differ from the table above)\n"):format(grading.rule, d))
      table_of("common:")
    end
  end
  local unit = K > 1 and "item runs" or "items"
  print(("\nPartial scores against full ones: mean Spearman rho %s over %d %s with a defined rho; the best full "
    .. "candidate survived the cut on %d of %d %s (%.0f%%)."):format(rhos > 0 and ("%.3f"):format(rho / rhos) or "—",
    rhos, unit, kept, runs, unit, 100 * kept / runs))
elseif mode == "retry" then
  local most = 0
  for _, r in run:each_line() do most = math.max(most, #((r.extra or {}).history or {})) end
  if most == 0 then die(path .. " has no retry histories (lines of selection.retry)") end
  local head = {"| strategy | items |"}
  local rule = {"|---|--:|"}
  for k = 1, most do head[#head + 1] = (" right within %d |"):format(k); rule[#rule + 1] = "--:|" end
  head[#head + 1] = " later rounds | kept an answer already tried | no new answer among the draws |"
  rule[#rule + 1] = "--:|--:|--:|"
  print(("Retries over the lines of %s%s\n"):format(dir, K > 1
    and (" (%d seed sets: right within k is the mean over items of each item's share of sets right within k "
      .. "rounds; the rounds are counted over every item run)"):format(K) or ""))
  print(table.concat(head)); print(table.concat(rule))
  local per_set = {}
  for _, name in ipairs(order) do
    local rows, pool = run:items(name), run:pool()
    local later, repeated, none_new = 0, 0, 0
    for _, it in ipairs(rows) do
      for set = 1, K do
        local r = it.sets[set]
        if r then
          local h = (r.extra or {}).history or {}
          local first
          for k, round in ipairs(h) do if round.correct and not first then first = k end end
          for k = 1, most do pool:add(k, it.item, set, first ~= nil and first <= k) end
          local tried = {}
          for k, round in ipairs(h) do
            if k > 1 then
              later = later + 1
              if round.answer ~= nil and tried[selection.key(round.answer)] then repeated = repeated + 1 end
              local fresh = false
              -- Every draw of the round: the list has holes where a draw gave no number (not ipairs, which stops
              -- at the first); a line of an older runner holds it as an object ({"1": 9, "3": 16}).
              local call = r.calls and r.calls[k]
              local draws = grading.list(round.answers, call and math.tointeger(call.n) or nil)
              for j = 1, draws.n do
                local a = draws[j]
                if a ~= nil and not tried[selection.key(a)] then fresh = true end
              end
              if not fresh then none_new = none_new + 1 end
            end
            if round.answer ~= nil then tried[selection.key(round.answer)] = true end
          end
        end
      end
    end
    local cells = {("| %s | %s |"):format(name, run:items_label(name, rows))}
    for k = 1, most do
      local sum = 0
      for _, x in ipairs(pool:scores(k, rows)) do sum = sum + (x == true and 1 or x == false and 0 or x) end
      cells[#cells + 1] = (" %.3f |"):format(#rows > 0 and sum / #rows or 0)
    end
    cells[#cells + 1] = (" %d | %d (%.0f%%) | %d (%.0f%%) |"):format(later, repeated, later > 0 and 100 * repeated / later or 0,
      none_new, later > 0 and 100 * none_new / later or 0)
    print(table.concat(cells))
    per_set[#per_set + 1] = {name, pool:per_set(most, rows)}
  end
  if K > 1 then
    print(("\nRight within %d round%s, per seed set:\n"):format(most, most == 1 and "" or "s"))
    for _, x in ipairs(per_set) do
      print(("- %s: %s; spread %s"):format(x[1], lines.per_set_text(x[2]), lines.spread_text(x[3])))
    end
  end
else
  local name, experiment, only = "surprisal8", nil, nil
  local k = 3
  while arg[k] do
    if arg[k] == "--experiment" then
      experiment = arg[k + 1] or die("--experiment needs a NAME"); k = k + 2
    elseif arg[k] == "--sets" then
      -- Only these seed sets (say, the ones whose sample sets this machine's run store holds).
      only = {}
      for x in (arg[k + 1] or die("--sets needs a list, e.g. 2,3")):gmatch("[^,]+") do
        only[tonumber(x) or die("--sets: '" .. x .. "' is not a seed set number")] = true
      end
      k = k + 2
    else
      name = arg[k]; k = k + 1
    end
  end
  if not experiment then
    if dir:sub(1, 1) == "/" then experiment = dir:gsub("/+$", "") else
      experiment = lm.fs.cwd() .. "/" .. dir:gsub("^%./", ""):gsub("/+$", "")
    end
  end
  local sum = function(xs) local t = 0; for _, x in ipairs(xs) do t = t + x end; return t end
  -- A line's sample set: its own, else rebuilt from its sample call in the run store (texts graded here; the
  -- pair of seed set j > 1 is stored as strategy "NAME@j", as run.lua labels it).
  local function sample_set(r, set)
    local e = r.extra or {}
    if e.samples and #e.samples > 0 then return e.samples end
    if e.scores then return e.scores end
    local dropped = false
    for _, f in ipairs(r.dropped or {}) do dropped = dropped or f == "samples" or f == "scores" end
    if not dropped then return {} end
    local where = ("%s: item %s of '%s'%s"):format(path, tostring(r.item), tostring(r.strategy),
      (set or 1) > 1 and (", seed set %d"):format(set) or "")
    local ok, calls = pcall(lm.store.calls, {experiment = experiment, item = tostring(r.item),
                                             strategy = (set or 1) > 1 and ("%s@%d"):format(r.strategy, set) or r.strategy,
                                             kind = "sample"})
    if not ok then die(where .. ": its sample set was too large for the line, and the run store cannot be read ("
      .. tostring(calls) .. ")") end
    local call = calls[#calls]   -- the latest: a resumed run may have drawn an item again
    if not call then
      die(where .. ": its sample set was too large for the line, and the run store has no sample call for it "
        .. "under experiment " .. experiment .. " (give the run's --experiment NAME, or run on the machine that ran it)")
    end
    local out = {}
    for i, o in ipairs(call.outputs or {}) do
      local lp = o.logprobs or {}
      local a = lm.extract.number(o.text or "")
      out[i] = {answer = a, correct = a ~= nil and r.gold ~= nil and lm.verify.numeric(a, r.gold) == true,
                tokens = #lp, sum = sum(lp), mean = #lp > 0 and sum(lp) / #lp or 0}
    end
    -- The rebuilt set must give the line's own read-outs, or it is not the set the run used.
    local reads = e.readouts
    if reads and #out > 0 then
      local again = selection.readouts(out, function(a) return a ~= nil and lm.verify.numeric(a, r.gold) == true end)
      for _, key in ipairs({"first", "max_logprob", "min_logprob", "pass"}) do
        if reads[key] and (again[key].correct ~= (reads[key].correct == true)
            or (reads[key].index and again[key].index ~= reads[key].index and key ~= "pass")) then
          die(("%s: the run store's sample call %s does not give the line's read-out '%s'"):format(where,
            tostring(call.id), key))
        end
      end
    end
    return out
  end
  -- Per item: whether a set had a correct sample, and over the sets that had one the surprisal of the least and the
  -- most confident correct sample (with one seed set, the item's own values); picks that differ are counted over
  -- every item run.
  local rows, pool = run:items(name), run:pool()
  local least, most, differ, with, total, stored, runs, with_runs = {}, {}, 0, 0, 0, 0, 0, 0
  for _, it in ipairs(rows) do
    total = total + 1
    local l, m = {}, {}
    for set = 1, K do
      local r = it.sets[set]
      if r and (not only or only[set]) then
        runs = runs + 1
        local e = r.extra or {}
        local samples = sample_set(r, set)
        if not (e.samples and #e.samples > 0) and not e.scores and #samples > 0 then stored = stored + 1 end
        -- Lines of selection.surprisal carry their picks; best_of_n's lines carry the same kind of sample set.
        local picks = e.picks or selection.surprisal_pick(samples)
        local has = picks.least ~= nil and picks.most ~= nil
        pool:add("pass", it.item, set, has)
        if has then
          with_runs = with_runs + 1
          l[#l + 1], m[#m + 1] = -samples[picks.least].mean, -samples[picks.most].mean
          if picks.least ~= picks.most then differ = differ + 1 end
        end
      end
    end
    if #l > 0 then
      with = with + 1
      least[#least + 1] = #l == 1 and l[1] or lm.stats.mean(l)
      most[#most + 1] = #m == 1 and m[1] or lm.stats.mean(m)
    end
  end
  if K == 1 then
    print(("Surprisal-guided picks over %d items (%s): %d have a correct sample (the strategy's accuracy, %.3f, is "
      .. "pass@N)\n"):format(total, dir, with, total > 0 and with / total or 0))
  else
    local share = 0
    for _, x in ipairs(pool:scores("pass", rows)) do share = share + x end
    local per_set, spread = pool:per_set("pass", rows)
    print(("Surprisal-guided picks over %d items × %d seed sets (%s): %d of the %d item runs have a correct sample, "
      .. "on %d items; the strategy's accuracy (each item's share of sets with a correct sample, averaged over "
      .. "items), %.3f, is pass@N; per seed set %s (spread %s)\n"):format(total, K, dir, with_runs, runs, with,
      total > 0 and share / total or 0, lines.per_set_text(per_set), lines.spread_text(spread)))
  end
  if only then
    local which = {}
    for set = 1, K do if only[set] then which[#which + 1] = tostring(set) end end
    print(("Only seed sets %s are read here (--sets): the other sets' item runs are left out of every figure.\n")
      :format(table.concat(which, ", ")))
  end
  if stored > 0 then
    print(("The sample sets of %d of these lines come from the run store (experiment %s).\n"):format(stored, experiment))
  end
  if with == 0 then return end
  local d = lm.stats.paired(least, most)
  print("| pick among the correct samples | per-token surprisal (nats), mean |")
  print("|---|---|")
  print(("| least confident (the primary pick) | %.3f |"):format(d.mean_a))
  print(("| most confident | %.3f |"):format(d.mean_b))
  if K == 1 then
    print(("\nThe two picks differ on %d of %d items (on the others one sample is correct, or the correct ones "
      .. "tie); difference %+.3f [%+.3f, %+.3f] nats per token (95%% bootstrap). Without a quality score beyond "
      .. "right or wrong, the picks cannot be told apart further."):format(differ, with, d.diff, d.lo, d.hi))
  else
    print(("\nAn item's surprisal is its mean over the seed sets with a correct sample. The two picks differ on %d "
      .. "of %d item runs with a correct sample (on the others one sample is correct, or the correct ones tie); "
      .. "difference %+.3f [%+.3f, %+.3f] nats per token (95%% bootstrap over the %d items). Without a quality "
      .. "score beyond right or wrong, the picks cannot be told apart further."):format(differ, with_runs, d.diff,
      d.lo, d.hi, with))
  end
end
