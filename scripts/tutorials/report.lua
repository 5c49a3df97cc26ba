-- A Markdown table comparing conditions run on the same items: accuracy on a field (default `correct`), the
-- paired difference to the baseline with its 95% bootstrap interval (lm.stats.paired), and the completion tokens
-- and model calls per item from each result's record. The tutorials print it; paste it as it comes.
--
--   local report = require "tutorials.report"
--   report({heart = {r1, r2, ...}, neutral = {...}}, {"neutral", "heart"}, {baseline = "neutral"})
return function(results, order, opts)
  opts = opts or {}
  local field, baseline = opts.field or "correct", opts.baseline or order[1]
  local function hits(rs)
    local xs = {}
    for i, r in ipairs(rs) do xs[i] = r[field] and 1 or 0 end
    return xs
  end
  local base = hits(results[baseline])
  print(("| condition | %s | vs %s (95%% CI) | completion tokens / item | calls / item |"):format(field, baseline))
  print("|---|---|---|---|---|")
  for _, name in ipairs(order) do
    local rs, xs = results[name], hits(results[name])
    local tokens, calls = 0, 0
    for _, r in ipairs(rs) do tokens, calls = tokens + r.tokens.completion, calls + r.tokens.calls end
    local diff = "baseline"
    if name ~= baseline then
      local d = lm.stats.paired(xs, base)
      diff = ("%+.2f [%+.2f, %+.2f]"):format(d.diff, d.lo, d.hi)
    end
    print(("| %s | %d/%d = %.2f | %s | %.1f | %.1f |"):format(name, lm.stats.mean(xs) * #xs // 1, #xs,
          lm.stats.mean(xs), diff, tokens / #rs, calls / #rs))
  end
end
