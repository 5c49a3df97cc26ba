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
local echo = require "strategies.echo"
local grading = require "experiments.grading"
local lines = require "experiments.lines"

local function die(msg) io.stderr:write("echo_report: " .. msg .. "\n"); os.exit(2) end

local mode, dir = arg[1], arg[2]
if (mode ~= "gap" and mode ~= "causal") or not dir then
  die("usage: echo_report.lua gap DIR [STRATEGY] | causal DIR [WITH] [WITHOUT]")
end

local run = lines.read(dir, die)
local path, by, order = run.path, run.by, run.order
local function lines_of(name) return run:of(name) end

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
  local rows = lines_of(arg[3] or order[1])
  local results, common, differ, texts = {}, {}, {}, true
  for i, r in ipairs(rows) do
    local e = r.extra or {}
    results[i] = {correct = r.correct, echo = e.echo, prefix = e.prefix, heavy = e.heavy}
    local g = r.calls and grading.line(r).correct
    if g == nil then texts = false end
    common[i] = {correct = g, echo = e.echo, prefix = e.prefix, heavy = e.heavy}
    if g ~= nil and g ~= (r.correct == true) then differ[#differ + 1] = tostring(r.item) end
  end
  print(("ΔL over %d traces (%s, strategy %s); right and wrong as the lines record them (the strategy's own grader)\n"):format(
    #rows, dir, rows[1] and rows[1].call or "?"))
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
  local with, without = lines_of(arg[3] or "reminder"), lines_of(arg[4] or "plain")
  local plain = {}
  for _, r in ipairs(without) do plain[r.item] = r end
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
  local a, b, fa, fb, skipped, samples, used = {}, {}, {}, {}, 0, nil, {}
  local ca, cb, ea, eb, cfa, cfb, common_ok = {}, {}, {}, {}, {}, {}, true
  local totals = {with = {right = 0, finished = 0, n = 0}, without = {right = 0, finished = 0, n = 0}}
  for _, r in ipairs(with) do
    local p = plain[r.item]
    local e, pe = r.extra or {}, p and p.extra or {}
    if e.skipped or not p or pe.skipped then
      skipped = skipped + 1
    else
      a[#a + 1], b[#b + 1] = e.accuracy, pe.accuracy
      fa[#fa + 1], fb[#fb + 1] = r.correct == true, p.correct == true
      used[#used + 1] = r
      -- The continuations: the sample call's n (the answers list has holes where a continuation gave no number).
      samples = samples or (r.calls and r.calls[2] and r.calls[2].n) or (e.answers and lm.list.len(e.answers))
      local x, y = common(r), common(p)
      if x and y then
        local k = #a
        ca[k], cb[k], ea[k], eb[k], cfa[k], cfb[k] = x.share, y.share, x.ended, y.ended, x.first, y.first
        for key, c in pairs({with = x, without = y}) do
          local t = totals[key]
          t.right, t.finished, t.n = t.right + c.right, t.finished + c.finished, t.n + c.n
        end
      else
        common_ok = false
      end
    end
  end
  print(("Causal variant over %d items (%s): %d failed traces continued in both conditions, %d skipped "
    .. "(trace correct, or a condition missing)\n"):format(#with, dir, #a, skipped))
  if #a == 0 then return end
  local clusters = run:clusters(used)
  local opts = clusters and {clusters = clusters} or nil
  local d = lm.stats.paired(a, b, opts)
  local t = lines.compare(fa, fb, clusters)
  local function count(xs) local n = 0; for i = 1, #xs do if xs[i] then n = n + 1 end end; return n end
  local function pv(p) return p < 0.001 and "< 0.001" or ("= " .. fmt(p, 3)) end
  print("| condition | mean accuracy of the continuations | first continuation correct |")
  print("|---|---|---|")
  print(("| with the reminder | %.3f | %d/%d |"):format(d.mean_a, count(fa), #fa))
  print(("| without | %.3f | %d/%d |"):format(d.mean_b, count(fb), #fb))
  local diffs = {}
  for i = 1, #a do diffs[i] = (a[i] or 0) - (b[i] or 0) end
  local sf = lm.stats.sign_flip(diffs, opts)
  print(("\nPaired difference (with − without), %d continuations per trace: %+.3f [%+.3f, %+.3f] (95%% %sbootstrap%s); "
    .. "items better with the reminder %d, worse %d, equal %d%s. %s on the first continuation: %d/%d discordant, "
    .. "p %s (%s)."):format(samples or 0, d.diff, d.lo, d.hi, clusters and "cluster " or "",
    clusters and " over templates" or "", d.wins, d.losses, d.ties,
    clusters and ("; sign-flip test by template p " .. pv(sf.p)) or "",
    t.test == "McNemar" and "McNemar" or "Sign-flip test by template", t.won, t.lost, pv(t.p), t.method))
  if not common_ok then
    print("\nThe lines do not hold every continuation's text, so they are not graded again by the common grader.")
    return
  end
  print(("\nBy the common final-answer grader (%s), and counting only the right continuations that ended within "
    .. "the budget (the others were cut at the token limit with the right number last):\n"):format(grading.rule))
  print("| condition | continuations right | right and ended within the budget | first continuation correct |")
  print("|---|--:|--:|--:|")
  for _, c in ipairs({{"with the reminder", totals.with, cfa}, {"without", totals.without, cfb}}) do
    local t2 = c[2]
    print(("| %s | %d/%d (%.3f) | %d/%d (%.3f) | %d/%d |"):format(c[1], t2.right, t2.n, t2.right / t2.n, t2.finished,
      t2.n, t2.finished / t2.n, count(c[3]), #c[3]))
  end
  print("")
  for _, c in ipairs({{"continuations right", ca, cb}, {"right and ended within the budget", ea, eb}}) do
    local dd = lm.stats.paired(c[2], c[3], opts)
    local df = {}
    for i = 1, #c[2] do df[i] = c[2][i] - c[3][i] end
    local st = lm.stats.sign_flip(df, opts)
    print(("%s, paired (with − without): %+.3f [%+.3f, %+.3f]; better %d, worse %d; sign-flip test%s p %s."):format(
      c[1]:gsub("^%l", string.upper), dd.diff, dd.lo, dd.hi, dd.wins, dd.losses, clusters and " by template" or "", pv(st.p)))
  end
  print("\n" .. lines.method(clusters))
end
