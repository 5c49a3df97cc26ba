-- Selection and rejection: many samples of one question, one answer. Each strategy is (model, item, opts) ->
-- result, item = {id=, question=, answer=}; every model call goes through a record (strategies.record) and every
-- string put into a prompt is marked with rec:inject.
--
--   self_consistency  sample N paths, majority-vote their answers (Wang et al., "Self-Consistency Improves
--                     Chain of Thought Reasoning in Language Models")
--   best_of_n         read-outs of ONE shared set of N samples: pass@N, majority@N, highest and lowest mean
--                     log-probability, first sample (opts.readout picks the result's answer)
--   surprisal         among the correct samples the least confident ("Surprisal-Guided Selection: Compute-Optimal
--                     Test-Time Strategies for Execution-Grounded Code Generation")
--   retry             retry rounds with feedback and the two mitigations of "Feedback Friction: LLMs Struggle to
--                     Fully Incorporate External Feedback": rising temperature, rejecting answers already tried
--   early_rejection   τ tokens of each of N candidates, keep the best N/M by mean log-probability, finish only
--                     those ("Accelerating LLM Reasoning via Early Rejection with Partial Reward Modeling")
--
-- and the pure pieces they read samples with (vote, readouts, surprisal_pick, rank_correlation), which work on
-- hand-made sample sets as well.
local record = require "strategies.record"
local answers = require "strategies.answers"

local M = {}

-- The project's own phrasings. `feedback` plays the role of Feedback Friction's retry message (the paper gives
-- the model feedback and asks again); `{answer}` is the answer just given. `ask` frames the question for every
-- strategy alike. opts.phrases (a table or a Lua file returning one) replaces any of them.
M.phrases = {
  ask = "{question}",
  feedback = "Your answer {answer} is not correct. Read the question again and solve it once more.",
}

local DEFAULTS = {n = 8, temperature = 0.7, max_tokens = 128, seed = 1, answer_tokens = 16,
                  rounds = 10, step = 0.15, cap = 1.5, k = 1, mitigation = "none",
                  m = 4, tau = 64, keep = 3}

-- Options with the defaults filled in and the phrases resolved.
local function settings(opts) return record.settings(DEFAULTS, M.phrases, opts) end

local function fill(phrase, fields)
  return (phrase:gsub("{(%w+)}", function(k) return fields[k] ~= nil and tostring(fields[k]) or nil end))
end

local function ask_text(rec, question, o) return rec:inject("ask", fill(o.phrases.ask, {question = question})) end

-- The prompt: the question in the chat template (opts.prompt(text) replaces it).
local function ask(model, rec, question, o)
  local text = ask_text(rec, question, o)
  if o.prompt then return o.prompt(text) end
  return model:template({{role = "user", content = text}})
end

-- Whether an answer matches the gold one (lm.verify.numeric unless opts.verify); nil without a gold answer.
local function check(o, answer, gold)
  if gold == nil then return nil end
  return answer ~= nil and (o.verify or lm.verify.numeric)(answer, gold) == true
end

-- The answer in a text (opts.extract: a function or an lm.extract name; "final" after an answer step, else
-- "number") and whether it matches the gold one.
local function grade(o, text, gold)
  local answer = answers.extractor(o, answers.answer_constraint(o.answer_step) and "final" or "number")(text)
  return answer, check(o, answer, gold)
end

local function sum(xs)
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s
end

-- A sample as the read-outs see it: its text, answer, correctness, and log-probabilities.
local function graded(o, r, gold)
  local answer, correct = grade(o, r.text, gold)
  local lp = r.logprobs or {}
  return {text = r.text, answer = answer, correct = correct, tokens = #lp, sum = sum(lp),
          mean = #lp > 0 and sum(lp) / #lp or 0}
end

-- A sample set without its texts: {answer=, correct=, mean=, sum=, tokens=} per sample. Result lines keep this
-- when the whole set (with texts) is too large for them, so that reports can still read the log-probabilities.
local function scores(samples)
  local out = {}
  for i, s in ipairs(samples) do
    out[i] = {answer = s.answer, correct = s.correct, mean = s.mean, sum = s.sum, tokens = s.tokens}
  end
  return out
end

-- The N samples every read-out shares: one batched call, seeds opts.seed, opts.seed + 1, ... With
-- opts.answer_step, each sample's reasoning gets max_tokens - answer_tokens tokens and is then continued by the
-- constrained answer step (answers.answer_step), so that both forms have the same budget.
local function draw(model, item, o, label)
  local rec = record.new(model, {strategy = "selection." .. label, item = item.id})
  local constraint = answers.answer_constraint(o.answer_step)
  local budget = o.max_tokens
  if constraint then
    budget = o.max_tokens - o.answer_tokens
    if budget < 1 then error(("answer_step: max_tokens (%d) must exceed answer_tokens (%d)"):format(o.max_tokens, o.answer_tokens), 3) end
  end
  local prompt = ask(model, rec, item.question, o)
  local rs = rec:sample(prompt, o.n, {max_tokens = budget, temperature = o.temperature, top_p = o.top_p, seed = o.seed})
  local samples = {}
  for i, r in ipairs(rs) do
    local reasoning_finish = r.finish
    if constraint then
      local a = answers.answer_step(rec, prompt, r.text, constraint, o.answer_tokens)
      r = {text = answers.with_step(r.text, a.text), logprobs = r.logprobs}
      samples[i] = graded(o, r, item.answer)
      samples[i].reasoning_finish, samples[i].answer_finish = reasoning_finish, a.finish
    else
      samples[i] = graded(o, r, item.answer)
      samples[i].finish = r.finish
    end
  end
  return rec, samples
end

--- The key answers are compared by (strategies.answers.key): numbers by value (so 19, 19.0 and "19" agree),
--- other text trimmed and lowercased; nil stays nil.
M.key = answers.key

--- Majority vote over a list of answers (strategies.answers.majority: nil ones do not vote; a tie goes to the
--- answer seen first). -> winner (as first given), its votes, counts by key
function M.vote(list)
  local winner, votes, _, counts = answers.majority(list)
  return winner, votes, counts
end

--- Read-outs of one set of samples ({answer=, correct=, mean=}, ...): pass (any correct: the oracle), majority,
--- max_logprob and min_logprob (the sample with the highest / lowest mean log-probability), first. `check(answer)`
--- says whether the majority answer is correct. -> {name = {answer=, correct=, index=}}
function M.readouts(samples, check_answer)
  local out = {first = {answer = samples[1].answer, correct = samples[1].correct, index = 1}}
  local hi, lo, pass = 1, 1, nil
  for i, s in ipairs(samples) do
    if s.mean > samples[hi].mean then hi = i end
    if s.mean < samples[lo].mean then lo = i end
    if s.correct and not pass then pass = i end
  end
  out.max_logprob = {answer = samples[hi].answer, correct = samples[hi].correct, index = hi}
  out.min_logprob = {answer = samples[lo].answer, correct = samples[lo].correct, index = lo}
  out.pass = {answer = samples[pass or 1].answer, correct = pass ~= nil, index = pass}
  local answers = M.answers(samples)
  local winner, votes = M.vote(answers)
  out.majority = {answer = winner, votes = votes, correct = check_answer(winner)}
  return out
end

--- The samples' answers as an lm.list of #samples (a sample without an answer leaves a hole that the vote and
--- the result line keep: `#` and `ipairs` would stop at it).
function M.answers(samples)
  local list = lm.list(#samples)
  for i = 1, #samples do list[i] = samples[i].answer end
  return list
end

--- Self-consistency: N samples at T = opts.temperature (0.7), the majority answer. With n = 1 the result also
--- keeps the sample's text and how it finished (`text`, `finish`, or `reasoning_finish` and `answer_finish` after
--- an answer step), for reading extraction failures and truncation.
function M.self_consistency(model, item, opts)
  local o = settings(opts)
  local rec, samples = draw(model, item, o, "self_consistency")
  local answers = M.answers(samples)
  local winner, votes, counts = M.vote(answers)
  local out = {answer = winner, correct = check(o, winner, item.answer), votes = votes, counts = counts, answers = answers}
  if #samples == 1 then
    local s1 = samples[1]
    out.text, out.finish, out.reasoning_finish, out.answer_finish = s1.text, s1.finish, s1.reasoning_finish, s1.answer_finish
  end
  return rec:result(out)
end

--- Best-of-N: one shared set of N samples and every read-out of it (M.readouts); the result's answer is the
--- opts.readout one ("majority" by default; "pass", "max_logprob", "min_logprob", "first"). `samples` holds the
--- samples with their texts, `scores` the same without texts (small enough for the runner's result lines).
function M.best_of_n(model, item, opts)
  local o = settings(opts)
  local rec, samples = draw(model, item, o, "best_of_n")
  local reads = M.readouts(samples, function(a) return check(o, a, item.answer) end)
  local pick = reads[o.readout or "majority"] or error("best_of_n: unknown readout '" .. tostring(o.readout) .. "'")
  return rec:result{answer = pick.answer, correct = pick.correct, readout = o.readout or "majority",
                    readouts = reads, samples = samples, scores = scores(samples)}
end

--- Surprisal-guided picks from a sample set ({correct=, mean=, sum=}, ...): among the correct samples, `least`
--- (highest per-token surprisal -mean, the primary pick), `least_total` (highest total surprisal -sum), `most`
--- (lowest per-token surprisal: the most-confident comparison), `top` (the opts.keep (3) least confident) and
--- `best` (of `top`, the highest opts.quality(sample), when a quality function is given). Indices; nil when no
--- sample is correct.
function M.surprisal_pick(samples, opts)
  local keep = opts and opts.keep or 3
  local quality = opts and opts.quality
  local ok = {}
  for i, s in ipairs(samples) do if s.correct then ok[#ok + 1] = i end end
  if #ok == 0 then return {top = {}} end
  local by = function(f) local t = table.move(ok, 1, #ok, 1, {}); table.sort(t, f); return t end
  local per = by(function(a, b) return samples[a].mean < samples[b].mean end)   -- least confident first
  local tot = by(function(a, b) return samples[a].sum < samples[b].sum end)
  local out = {least = per[1], least_total = tot[1], most = per[#per], top = table.move(per, 1, math.min(keep, #per), 1, {})}
  if quality then
    for _, i in ipairs(out.top) do
      if out.best == nil or quality(samples[i]) > quality(samples[out.best]) then out.best = i end
    end
  end
  return out
end

--- Surprisal-guided selection over N samples: the answer is the pick's (`best` when opts.quality is given, else
--- `least`); picks and, with a quality function, the quality of each pick are in the result, and the sample set
--- as in best_of_n (`samples`, `scores`).
function M.surprisal(model, item, opts)
  local o = settings(opts)
  local rec, samples = draw(model, item, o, "surprisal")
  local picks = M.surprisal_pick(samples, o)
  local i = picks.best or picks.least
  local out = {answer = i and samples[i].answer, correct = i ~= nil, picks = picks, samples = samples,
               scores = scores(samples)}
  if o.quality then
    out.quality = {}
    for _, name in ipairs({"best", "least", "least_total", "most"}) do
      if picks[name] then out.quality[name] = o.quality(samples[picks[name]]) end
    end
  end
  return rec:result(out)
end

--- Feedback-friction retries: answer; while wrong and rounds remain, say so (phrases.feedback) and ask again in
--- the same conversation. Each round draws opts.k samples (seeds advance by k a round) and keeps one:
--- mitigation "none" keeps the first at opts.temperature; "temperature" raises it by opts.step (0.15) a round up
--- to opts.cap (1.5); "reject" keeps the first sample whose answer was not tried before (the paper draws 25);
--- "both" does both. Same k in every condition = same tokens. Stops at the first correct answer (oracle).
--- opts.feedback = false is the blind-resampling baseline: the same rounds, draws, seeds and mitigation, but every
--- round asks the question afresh (no answer shown, no feedback), so that what feedback adds over drawing again
--- can be read off.
function M.retry(model, item, opts)
  local o = settings(opts)
  if o.answer_step then error("selection.retry: answer_step is not available here (self_consistency, best_of_n and surprisal run it)", 2) end
  local rising = o.mitigation == "temperature" or o.mitigation == "both"
  local reject = o.mitigation == "reject" or o.mitigation == "both"
  assert(rising or reject or o.mitigation == "none", "retry: mitigation must be none, temperature, reject or both")
  local blind = o.feedback == false
  local rec = record.new(model, {strategy = "selection.retry_" .. o.mitigation .. (blind and "_blind" or ""),
                                 item = item.id})
  local messages = {{role = "user", content = ask_text(rec, item.question, o)}}
  local tried, history, answer, correct, said = {}, {}, nil, false, nil
  for round = 1, o.rounds do
    if said and not blind then
      messages[#messages + 1] = {role = "assistant", content = said}
      messages[#messages + 1] = {role = "user", content = rec:inject("feedback", fill(o.phrases.feedback,
                                                                    {answer = answer or "(none)"}))}
    end
    local t = rising and math.min(o.temperature + o.step * (round - 1), o.cap) or o.temperature
    local prompt = o.prompt and o.prompt(messages) or model:template(messages)
    local draws = rec:sample(prompt, o.k, {max_tokens = o.max_tokens, temperature = t, top_p = o.top_p,
                                           seed = o.seed + (round - 1) * o.k})
    local pick, answers = 1, lm.list(#draws)
    for i, r in ipairs(draws) do answers[i] = (grade(o, r.text)) end
    if reject then
      for i = 1, answers.n do       -- not ipairs: a draw without a number must not end the search
        local a = answers[i]
        if a ~= nil and not tried[M.key(a)] then pick = i; break end
      end
    end
    answer = answers[pick]
    correct = check(o, answer, item.answer)
    history[round] = {temperature = t, answer = answer, correct = correct, picked = pick, answers = answers}
    if correct then break end
    if answer ~= nil then tried[M.key(answer)] = true end
    said = draws[pick].text
  end
  return rec:result{answer = answer, correct = correct, rounds = #history, history = history}
end

--- Spearman's rank correlation of two equal-length lists (ties get their average rank; lm.stats.spearman): nil
--- when either list is constant.
function M.rank_correlation(xs, ys) return lm.stats.spearman(xs, ys) end

--- Early rejection: the first opts.tau tokens of each of opts.n candidates (one batched call), scored by mean
--- log-probability (the proxy for a partial reward); the best n/m are finished (budget opts.max_tokens in all),
--- the rest are dropped. The answer is the finished candidate with the highest mean log-probability.
--- `generated` is what the strategy generated, `saved` = n * max_tokens - generated. With opts.compare the
--- dropped ones are finished too (recorded, but not counted in `generated`) to report how the partial scores
--- rank the full ones (`spearman`, `best_kept`: the best full candidate survived), `saved_exact`, and per
--- candidate `full_means`, `full_correct` and `full_tokens` (its tokens generated, partial and continuation), from
--- which best-of-k over the same candidates can be read (selection_report.lua early).
function M.early_rejection(model, item, opts)
  local o = settings(opts)
  if o.answer_step then error("selection.early_rejection: answer_step is not available here (self_consistency, best_of_n and surprisal run it)", 2) end
  assert(o.tau < o.max_tokens, "early_rejection: need tau < max_tokens")
  local rec = record.new(model, {strategy = "selection.early_rejection", item = item.id})
  local prompt = ask(model, rec, item.question, o)
  local gen = function(n, seed) return {max_tokens = n, temperature = o.temperature, top_p = o.top_p, seed = seed} end
  local partial = rec:sample(prompt, o.n, gen(o.tau, o.seed))
  local order = {}
  for i, r in ipairs(partial) do order[i] = i; r.mean = #r.logprobs > 0 and sum(r.logprobs) / #r.logprobs or 0 end
  table.sort(order, function(a, b) return partial[a].mean > partial[b].mean end)
  local survivors = math.max(1, o.n // o.m)

  -- A candidate finished: its partial text plus a continuation of the remaining budget (none if it ended).
  local function finish(i)
    local r = partial[i]
    if r.finish ~= "length" then return {text = r.text, logprobs = r.logprobs, generated = 0} end
    local c = rec:generate(prompt .. r.text, gen(o.max_tokens - o.tau, o.seed + i - 1))
    return {text = r.text .. c.text, logprobs = table.move(c.logprobs, 1, #c.logprobs, #r.logprobs + 1,
                                                          table.move(r.logprobs, 1, #r.logprobs, 1, {})),
            generated = c.usage.completion}
  end

  local full, kept, generated = {}, {}, 0
  for i = 1, o.n do generated = generated + partial[i].usage.completion end
  for rank = 1, survivors do
    local i = order[rank]
    full[i] = finish(i); kept[#kept + 1] = i
    generated = generated + full[i].generated
  end
  local best
  for _, i in ipairs(kept) do
    full[i].sample = graded(o, full[i], item.answer)
    if best == nil or full[i].sample.mean > full[best].sample.mean then best = i end
  end
  local out = {answer = full[best].sample.answer, correct = full[best].sample.correct, kept = kept,
               partial_means = {}, generated = generated, saved = o.n * o.max_tokens - generated}
  for i = 1, o.n do out.partial_means[i] = partial[i].mean end
  if o.compare then
    local all, means, best_full = generated, {}, nil
    for i = 1, o.n do
      if not full[i] then full[i] = finish(i); all = all + full[i].generated end
      full[i].sample = full[i].sample or graded(o, full[i], item.answer)
      means[i] = full[i].sample.mean
      if best_full == nil or means[i] > means[best_full] then best_full = i end
    end
    out.full_means, out.spearman, out.saved_exact = means, M.rank_correlation(out.partial_means, means), all - generated
    out.best_kept = false
    for _, i in ipairs(kept) do if i == best_full then out.best_kept = true end end
    out.full_correct, out.full_tokens = {}, {}
    for i = 1, o.n do
      out.full_correct[i] = full[i].sample.correct
      out.full_tokens[i] = partial[i].usage.completion + full[i].generated
    end
  end
  return rec:result(out)
end

return M
