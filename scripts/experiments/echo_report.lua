-- Reports on the runner's lines for the two echo analyses that are not an accuracy table (run.lua writes those):
--   refrain run scripts/experiments/echo_report.lua gap DIR [STRATEGY]
--     the echo likelihood gap ΔL (lines of echo.likelihood_gap): for each remover (prefix, heavy), the items
--     grouped by correct and wrong with n, the echo rate, and the means of ΔL per token, the summed gap, the gap per
--     removed token and the suffix-only gap (echo.gap_summary); then how well ΔL per token, and the gap per removed
--     token, separate correct from wrong traces (AUC, Cohen's d) over the items where the remover changed the trace;
--     correct and wrong as the lines record them, then, where the common final-answer grader (experiments.grading)
--     grades any trace otherwise, the same tables by its verdicts.
--   refrain run scripts/experiments/echo_report.lua causal DIR [WITH] [WITHOUT]
--     the causal variant (lines of echo.causal with and without the reminder, strategy names WITH and WITHOUT,
--     default "reminder" and "plain"): on the items whose greedy trace failed (continued in both conditions), the
--     mean accuracy of the continuations with its paired difference and 95% bootstrap interval, and a test on the
--     first continuation (McNemar's); then by the common final-answer grader, the continuations right and those
--     right that also ended within the budget (not cut at the token limit with the right number last), paired.
-- DIR is run.lua's --out folder; the report goes to standard output as Markdown. On arithmetic data the intervals
-- resample templates and the tests are sign-flip tests by template (experiments.lines), as run.lua's table.
-- With several seed sets (run.lua --seeds): gap pools the traces of every set (each trace one case of the AUC) and
-- gives each set's share of correct traces; causal pairs the two conditions within each set, scores an item by its
-- mean over the sets where both continued its failed trace, tests those means with the sign-flip test, and gives
-- each set's own figures and their spread.
local echo = require "strategies.echo"
local grading = require "experiments.grading"
local lines = require "experiments.lines"

local function die(msg) io.stderr:write("echo_report: " .. msg .. "\n"); os.exit(2) end

local mode, dir = arg[1], arg[2]
if (mode ~= "gap" and mode ~= "causal") or not dir then
  die("usage: echo_report.lua gap DIR [STRATEGY] | causal DIR [WITH] [WITHOUT]")
end

local run = lines.read(dir, die)
local order, K = run.order, run.K

local function fmt(x, p) return x and ("%." .. (p or 3) .. "f"):format(x) or "–" end

-- The ΔL tables of a set of traces (results: {correct=, echo=, prefix=, heavy=} each), grouped by correct and wrong.
local function gap_tables(results)
  for _, which in ipairs({"prefix", "heavy"}) do
    local s = echo.gap_summary(results, which)
    print(("**%s remover**\n"):format(which))
    print("| traces | n | echo rate | changed by the remover | ΔL per token | summed | per removed token | suffix-only |")
    print("|---|---|---|---|---|---|---|---|")
    for _, g in ipairs({"correct", "wrong"}) do
      local x = s[g]
      if x then
        print(("| %s | %d | %.2f | %d | %s | %s | %s | %s |"):format(g, x.n, x.echo_rate, x.gaps, fmt(x.delta),
          fmt(x.sum), fmt(x.per_removed), fmt(x.suffix)))
      end
    end
    print()
    for _, field in ipairs({{"delta", "ΔL per token"}, {"per_removed", "the gap per removed token"}}) do
      local pos, neg = {}, {}
      for _, r in ipairs(results) do
        local d = r[which]
        if d and d[field[1]] then
          if r.correct then pos[#pos + 1] = d[field[1]] else neg[#neg + 1] = d[field[1]] end
        end
      end
      if #pos > 0 and #neg > 0 then
        print(("%s as a score for a correct trace: AUC %.3f (%d correct, %d wrong); Cohen's d %s"):format(field[2],
          lm.stats.auc(pos, neg), #pos, #neg, fmt((#pos > 1 and #neg > 1) and lm.stats.cohens_d(pos, neg) or nil)))
      else
        print(("No AUC for %s: %d correct and %d wrong traces were changed by the remover."):format(field[2], #pos, #neg))
      end
    end
    print()
  end
end

if mode == "gap" then
  -- Every trace: with several seed sets, the traces of every set, item by item.
  local items, rows, pool = run:items(arg[3] or order[1]), {}, run:pool()
  for _, it in ipairs(items) do
    for set = 1, K do
      local r = it.sets[set]
      if r then
        rows[#rows + 1] = r
        pool:add("correct", it.item, set, r.correct == true)
      end
    end
  end
  local results, common, differ, texts = {}, {}, {}, true
  for i, r in ipairs(rows) do
    local e = r.extra or {}
    results[i] = {correct = r.correct, echo = e.echo, prefix = e.prefix, heavy = e.heavy}
    local g = r.calls and grading.line(r).correct
    if g == nil then texts = false end
    common[i] = {correct = g, echo = e.echo, prefix = e.prefix, heavy = e.heavy}
    if g ~= nil and g ~= (r.correct == true) then
      differ[#differ + 1] = tostring(r.item) .. (K > 1 and ("@%d"):format(math.tointeger(r.seed_set) or 1) or "")
    end
  end
  print(("ΔL over %d traces (%s, strategy %s); right and wrong as the lines record them (the strategy's own grader)\n"):format(
    #rows, dir, rows[1] and rows[1].call or "?"))
  if K > 1 then
    local per_set, spread = pool:per_set("correct", items)
    print(("The traces of %d items × %d seed sets, each trace a case of its own (the traces of one item are not "
      .. "independent across sets). Share of correct traces per seed set: %s (spread %s).\n"):format(#items, K,
      lines.per_set_text(per_set), lines.spread_text(spread)))
  end
  gap_tables(results)
  if not texts then
    print("The lines do not hold every trace's text, so they are not graded again by the common grader.")
  elseif #differ == 0 then
    print(("The common final-answer grader (%s) gives the same verdict on every trace."):format(grading.rule))
  else
    print(("By the common final-answer grader (%s), which grades %d trace%s otherwise (%s):\n"):format(grading.rule,
      #differ, #differ == 1 and "" or "s", table.concat(differ, ", ")))
    gap_tables(common)
  end
else
  local with, plain = run:items(arg[3] or "reminder"), {}
  for _, it in ipairs(run:items(arg[4] or "plain")) do plain[it.item] = it end
  -- Per line, by the common grader: the share of its continuations right, of those right and ended within the
  -- budget (not cut at the token limit), and whether the first is right. nil when the line holds no texts.
  local function common(r)
    local outs = r.calls and r.calls[2] and r.calls[2].outputs
    if type(outs) ~= "table" or #outs == 0 then return nil end
    local right, ended = 0, 0
    for _, o in ipairs(outs) do
      if grading.right(grading.read(o.text), r.gold) then
        right = right + 1
        if o.finish ~= "length" then ended = ended + 1 end
      end
    end
    return {share = right / #outs, ended = ended / #outs, first = grading.right(grading.read(outs[1].text), r.gold),
            right = right, finished = ended, n = #outs}
  end
  -- Per item and seed set where both conditions continued the failed trace: the continuations' accuracy ("a", "b"),
  -- the first continuation right ("fa", "fb"), and by the common grader the share right ("ca", "cb"), right and
  -- ended within the budget ("ea", "eb") and the first right ("cfa", "cfb"); the totals count continuations.
  local pool, skipped, samples, used, runs, common_ok = run:pool(), 0, nil, {}, 0, true
  local totals = {with = {right = 0, finished = 0, n = 0}, without = {right = 0, finished = 0, n = 0}}
  for _, it in ipairs(with) do
    local pit, any = plain[it.item], false
    for set = 1, K do
      local r, p = it.sets[set], pit and pit.sets[set]
      local e, pe = r and r.extra or {}, p and p.extra or {}
      if r and p and not e.skipped and not pe.skipped then
        any, runs = true, runs + 1
        pool:add("a", it.item, set, e.accuracy); pool:add("b", it.item, set, pe.accuracy)
        pool:add("fa", it.item, set, r.correct == true); pool:add("fb", it.item, set, p.correct == true)
        -- The continuations: the sample call's n (the answers list has holes where a continuation gave no number).
        samples = samples or (r.calls and r.calls[2] and r.calls[2].n) or (e.answers and lm.list.len(e.answers))
        local x, y = common(r), common(p)
        if x and y then
          pool:add("ca", it.item, set, x.share); pool:add("cb", it.item, set, y.share)
          pool:add("ea", it.item, set, x.ended); pool:add("eb", it.item, set, y.ended)
          pool:add("cfa", it.item, set, x.first); pool:add("cfb", it.item, set, y.first)
          for key, c in pairs({with = x, without = y}) do
            local t = totals[key]
            t.right, t.finished, t.n = t.right + c.right, t.finished + c.finished, t.n + c.n
          end
        else
          common_ok = false
        end
      end
    end
    if any then used[#used + 1] = it else skipped = skipped + 1 end
  end
  local a, b, fa, fb = pool:scores("a", used), pool:scores("b", used), pool:scores("fa", used), pool:scores("fb", used)
  if K == 1 then
    print(("Causal variant over %d items (%s): %d failed traces continued in both conditions, %d skipped "
      .. "(trace correct, or a condition missing)\n"):format(#with, dir, #a, skipped))
  else
    print(("Causal variant over %d items × %d seed sets (%s): %d failed traces continued in both conditions (%d item "
      .. "runs, paired within their seed set), %d skipped (trace correct, or a condition missing); an item's figures "
      .. "are its means over the sets where both continued it\n"):format(#with, K, dir, #a, runs, skipped))
  end
  if #a == 0 then return end
  local clusters = run:clusters(used)
  local opts = clusters and {clusters = clusters} or nil
  local d = lm.stats.paired(a, b, opts)
  local t = lines.compare(fa, fb, clusters)
  local function count(xs) local n = 0; for i = 1, #xs do if xs[i] then n = n + 1 end end; return n end
  -- The first continuation right: "k/n" items with one seed set, else the mean over items of their share of sets.
  local function firsts(xs)
    if K == 1 then return ("%d/%d"):format(count(xs), #xs) end
    return ("%.3f"):format(lm.stats.mean(xs))
  end
  local function pv(p) return p < 0.001 and "< 0.001" or ("= " .. fmt(p, 3)) end
  print("| condition | mean accuracy of the continuations | first continuation correct |"
    .. (K > 1 and " seed-set spread (continuations) |" or ""))
  print("|---|---|---|" .. (K > 1 and "---|" or ""))
  for _, c in ipairs({{"with the reminder", d.mean_a, fa, "a"}, {"without", d.mean_b, fb, "b"}}) do
    local spread = K > 1 and (" %s |"):format(lines.spread_text(select(2, pool:per_set(c[4], used)))) or ""
    print(("| %s | %.3f | %s |%s"):format(c[1], c[2], firsts(c[3]), spread))
  end
  if K > 1 then
    print("\nPer seed set (mean accuracy of the continuations; first continuation correct):\n")
    for _, c in ipairs({{"with the reminder", "a", "fa"}, {"without", "b", "fb"}}) do
      print(("- %s: %s; %s"):format(c[1], lines.per_set_text((pool:per_set(c[2], used))),
        lines.per_set_text((pool:per_set(c[3], used)))))
    end
  end
  local diffs = {}
  for i = 1, #a do diffs[i] = (a[i] or 0) - (b[i] or 0) end
  local sf = lm.stats.sign_flip(diffs, opts)
  local first_test = t.test == "McNemar" and "McNemar"
    or t.test == "sign-flip" and "Sign-flip test" or "Sign-flip test by template"
  print(("\nPaired difference (with − without), %d continuations per trace: %+.3f [%+.3f, %+.3f] (95%% %sbootstrap%s); "
    .. "items better with the reminder %d, worse %d, equal %d%s. %s on the first continuation: %s, "
    .. "p %s (%s)."):format(samples or 0, d.diff, d.lo, d.hi, clusters and "cluster " or "",
    clusters and " over templates" or "", d.wins, d.losses, d.ties,
    (clusters or K > 1) and ("; sign-flip test%s p %s"):format(clusters and " by template" or "", pv(sf.p)) or "",
    first_test, K == 1 and ("%d/%d discordant"):format(t.won, t.lost)
      or ("items better %d, worse %d (each item's share of sets)"):format(t.won, t.lost), pv(t.p), t.method))
  if not common_ok then
    print("\nThe lines do not hold every continuation's text, so they are not graded again by the common grader.")
    if K > 1 then print("\n" .. lines.method(clusters, K)) end
    return
  end
  print(("\nBy the common final-answer grader (%s), and counting only the right continuations that ended within "
    .. "the budget (the others were cut at the token limit with the right number last):\n"):format(grading.rule))
  print("| condition | continuations right | right and ended within the budget | first continuation correct |")
  print("|---|--:|--:|--:|")
  local cfa, cfb = pool:scores("cfa", used), pool:scores("cfb", used)
  for _, c in ipairs({{"with the reminder", totals.with, cfa}, {"without", totals.without, cfb}}) do
    local t2 = c[2]
    print(("| %s | %d/%d (%.3f) | %d/%d (%.3f) | %s |"):format(c[1], t2.right, t2.n, t2.right / t2.n, t2.finished,
      t2.n, t2.finished / t2.n, firsts(c[3])))
  end
  print("")
  local ca, cb, ea, eb = pool:scores("ca", used), pool:scores("cb", used), pool:scores("ea", used), pool:scores("eb", used)
  for _, c in ipairs({{"continuations right", ca, cb}, {"right and ended within the budget", ea, eb}}) do
    local dd = lm.stats.paired(c[2], c[3], opts)
    local df = {}
    for i = 1, #c[2] do df[i] = c[2][i] - c[3][i] end
    local st = lm.stats.sign_flip(df, opts)
    print(("%s, paired (with − without): %+.3f [%+.3f, %+.3f]; better %d, worse %d; sign-flip test%s p %s."):format(
      c[1]:gsub("^%l", string.upper), dd.diff, dd.lo, dd.hi, dd.wins, dd.losses, clusters and " by template" or "", pv(st.p)))
  end
  print("\n" .. lines.method(clusters, K))
end
