-- Echoes as anchors: what it does to reasoning when the model restates the question ("echo of prompt").
-- Paper: "Echoes as Anchors: Probabilistic Costs and Attention Refocusing in LLM Reasoning"
-- (code: hhh2210/echoes-as-anchors). Every strategy here is (model, item, opts) -> result, item = {id=,
-- question=, answer=}; every model call goes through a record (strategies.record) and every string put into a
-- prompt is marked with rec:inject.
--
--   echoic        echoic prompting: b1 tokens, then a reminder + the question + a cue, then budget - b1 more
--   continuation  the same two stages with nothing injected      } baselines at the same number of
--   filler        the same two stages with a filler word ("Hmm")  } generated tokens (opts.budget)
--   single        one generation of the whole budget              }
--   causal        a failed trace cut at 50%, continued with (opts.reminder ~= false) or without the reminder
--   likelihood_gap  ΔL: mean log-probability of the trace minus that of the trace with its echo removed
--
-- and the pieces: detect (lexical echo detection), trim_prefix and trim_heavy (two echo removers), gap (ΔL and
-- its variants from two scores), gap_summary (grouped by correct/wrong).
--
--   local echo = require "strategies.echo"
--   local r = echo.echoic(lm.model, {id = 1, question = "...", answer = "19"}, {b1 = 64, budget = 256})
local record = require "strategies.record"
local answers = require "strategies.answers"

local M = {}

-- The project's own phrasings. `reminder` and `cue` play the roles of the paper's reminder and continuation cue
-- (Echoes as Anchors, echoic prompting; its strings are in the repository's EP_IMPLEMENTATION_DETAILS.md);
-- `filler` plays its "thinking token" baseline. `ask` frames the question for every condition alike. opts.phrases (a table or a Lua file returning
-- one) replaces any of them: the paper's exact strings are one option away.
M.phrases = {
  ask = "{question}",
  reminder = "Let me go back and read the question once more:",
  cue = "With the question in front of me again,",
  filler = "Hmm,",
}

local DEFAULTS = {b1 = 64, budget = 256, temperature = 0, threshold = 0.6, samples = 1, seed = 1}

-- Options with the defaults filled in and the phrases resolved.
local function settings(opts) return record.settings(DEFAULTS, M.phrases, opts) end

local function fill(phrase, question) return (phrase:gsub("{question}", function() return question end)) end

-- The prompt every condition starts from: the question in the chat template (opts.prompt(question) replaces it).
local function ask(model, rec, question, o)
  local text = rec:inject("ask", fill(o.phrases.ask, question))
  if o.prompt then return o.prompt(text) end
  return model:template({{role = "user", content = text}})
end

-- The answer in a text (lm.extract.number unless opts.extract, a function or an lm.extract name) and whether it
-- matches the gold one (lm.verify.numeric unless opts.verify); correct is nil without a gold answer.
local function grade(o, text, gold)
  local answer = answers.extractor(o, "number")(text)
  if gold == nil then return answer, nil end
  return answer, answer ~= nil and (o.verify or lm.verify.numeric)(answer, gold) == true
end

-- Generation options for `n` tokens: greedy unless opts say otherwise.
local function gen(o, n, seed)
  return {max_tokens = n, temperature = o.temperature, top_p = o.top_p, seed = seed or o.seed}
end

-- The two-stage protocol all echoic conditions share: b1 tokens; then `between` (nothing, a filler, or the
-- reminder with the question and a cue) and budget - b1 more tokens. The answer is read from the continuation
-- (from the first chunk when the continuation has none), alike in every condition.
local function two_stage(model, item, opts, condition, between)
  local o = settings(opts)
  assert(o.b1 > 0 and o.b1 < o.budget, "echo: need 0 < b1 < budget")
  local rec = record.new(model, {strategy = "echo." .. condition, item = item.id})
  local prompt = ask(model, rec, item.question, o)
  local first = rec:generate(prompt, gen(o, o.b1))
  local injected = between(rec, o, item.question)
  local second = rec:generate(prompt .. first.text .. injected, gen(o, o.budget - o.b1))
  local answer, correct = grade(o, second.text, item.answer)
  if answer == nil then answer, correct = grade(o, first.text, item.answer) end
  return rec:result{condition = condition, answer = answer, correct = correct, first = first.text,
                    continuation = second.text, generated = first.usage.completion + second.usage.completion}
end

-- What echoic prompting injects after the first chunk: the reminder, the question itself, the cue.
local function reminder(rec, o, question)
  return "\n" .. rec:inject("reminder", o.phrases.reminder) .. " " .. rec:inject("question", question) ..
         "\n" .. rec:inject("cue", o.phrases.cue)
end

--- Echoic prompting: b1 tokens, the reminder with the question and a cue, then budget - b1 tokens.
function M.echoic(model, item, opts) return two_stage(model, item, opts, "echoic", reminder) end

--- Baseline: the same two stages with nothing injected between them.
function M.continuation(model, item, opts)
  return two_stage(model, item, opts, "continuation", function() return "" end)
end

--- Baseline: the same two stages with a filler "thinking token" between them.
function M.filler(model, item, opts)
  return two_stage(model, item, opts, "filler", function(rec, o) return "\n" .. rec:inject("filler", o.phrases.filler) end)
end

--- Baseline: one generation of the whole budget.
function M.single(model, item, opts)
  local o = settings(opts)
  local rec = record.new(model, {strategy = "echo.single", item = item.id})
  local r = rec:generate(ask(model, rec, item.question, o), gen(o, o.budget))
  local answer, correct = grade(o, r.text, item.answer)
  return rec:result{condition = "single", answer = answer, correct = correct, continuation = r.text,
                    generated = r.usage.completion}
end

--- The causal variant: a trace (opts.trace, or greedy with the whole budget) that fails is cut at half its
--- tokens and continued `opts.samples` times (T = 0.7, top-p 0.9, seeds opts.seed...) with the reminder, or
--- without it when opts.reminder == false; same seeds in both, so the conditions are paired. A correct trace is
--- not continued (skipped = true, correct = nil). `correct` is the first continuation's; `accuracy` all of them.
function M.causal(model, item, opts)
  local o = settings(opts)
  if opts == nil or opts.temperature == nil then o.temperature = 0.7 end
  if opts == nil or opts.top_p == nil then o.top_p = 0.9 end
  local with = o.reminder ~= false
  local rec = record.new(model, {strategy = with and "echo.causal_reminder" or "echo.causal_plain", item = item.id})
  local prompt = ask(model, rec, item.question, o)
  local trace = o.trace and {text = o.trace, ids = model:tokenize(o.trace, {bos = false})}
    or rec:generate(prompt, {max_tokens = o.budget, temperature = 0})
  local _, ok = grade(o, trace.text, item.answer)
  if ok then return rec:result{skipped = true, trace = trace.text} end
  local cut = #trace.ids // 2
  local prefix = prompt .. model:detokenize(table.move(trace.ids, 1, cut, 1, {}))
  if with then prefix = prefix .. reminder(rec, o, item.question) end
  local rest = math.max(o.budget - cut, 1)
  local outs = rec:sample(prefix, o.samples, gen(o, rest))
  local answers, hits = lm.list(#outs), 0
  for i, r in ipairs(outs) do
    local a, c = grade(o, r.text, item.answer)
    answers[i] = a
    if c then hits = hits + 1 end
  end
  local _, first = grade(o, outs[1].text, item.answer)
  return rec:result{condition = with and "reminder" or "plain", answer = answers[1], correct = first,
                    answers = answers, accuracy = hits / #outs, trace = trace.text, cut = cut}
end

-- Sentences of a text with their byte spans: a sentence ends at ".", "!" or "?" before a space (so "3.5" stays
-- whole) or at a line break; `last` takes in the spaces after it.
local function sentences(text)
  local out, i, n = {}, 1, #text
  while i <= n do
    local e, j = nil, i
    while true do
      local k = text:find("[.!?\n]", j)
      if not k then break end
      if text:sub(k, k) == "\n" or k == n or text:sub(k + 1, k + 1):match("%s") then e = k; break end
      j = k + 1
    end
    e = e or n
    local last = e
    while last < n and text:sub(last + 1, last + 1):match("%s") do last = last + 1 end
    out[#out + 1] = {text = text:sub(i, e), first = i, last = last}
    i = last + 1
  end
  return out
end

local function words(text)
  local set, n = {}, 0
  for w in text:lower():gmatch("%w+") do
    if not set[w] then set[w] = true; n = n + 1 end
  end
  return set, n
end

--- Share of a sentence's distinct words that occur in the question (the repository's heuristic: words are
--- lowercased alphanumeric runs; an empty sentence has overlap 0).
function M.overlap(question, sentence)
  local q = words(question)
  local s, n = words(sentence)
  if n == 0 then return 0, 0 end
  local shared = 0
  for w in pairs(s) do if q[w] then shared = shared + 1 end end
  return shared / n, n
end

-- A heading: a line of at most six words that ends with ":" ("Copy of the problem:", "Problem statement:").
local function heading(s)
  local _, n = words(s.text)
  return n > 0 and n <= 6 and s.text:match(":%s*$") ~= nil
end

--- Echo detection: the trace's sentences, each with its overlap with the question; the echo is the run of
--- sentences with overlap >= opts.threshold (0.6) that opens the trace. A heading line that opens the trace
--- ("Problem statement:", at most six words ending with ":") belongs to the echo when an echo sentence follows it
--- (`heading = true`; it is not counted in `count`). -> {echo = bool, count = echo sentences in the run,
--- heading = bool, sentences = {{text=, overlap=, echo=, heading=, first=, last=}, ...}}
function M.detect(question, trace, opts)
  local o = settings(opts)
  local list, count, open = sentences(trace), 0, true
  for _, s in ipairs(list) do s.overlap = M.overlap(question, s.text) end
  local head = list[1] ~= nil and list[1].overlap < o.threshold and heading(list[1])
      and list[2] ~= nil and list[2].overlap >= o.threshold
  for i = head and 2 or 1, #list do
    local s = list[i]
    s.echo = open and s.overlap >= o.threshold
    if s.echo then count = count + 1 else open = false end
  end
  if head then list[1].echo, list[1].heading = true, true end
  return {echo = count > 0, count = count, heading = head, sentences = list}
end

-- The trace without the sentences `drop(sentence)` picks.
local function without(trace, list, drop)
  local parts, from = {}, 1
  for _, s in ipairs(list) do
    if drop(s) then
      parts[#parts + 1] = trace:sub(from, s.first - 1)
      from = s.last + 1
    end
  end
  parts[#parts + 1] = trace:sub(from)
  return table.concat(parts)
end

--- The clean remover: drops only the echo that opens the trace (M.detect); the rest is untouched.
function M.trim_prefix(question, trace, opts)
  return without(trace, M.detect(question, trace, opts).sentences, function(s) return s.echo end)
end

--- The heavier remover, after the repository's cleaner: drops every sentence of the trace whose overlap is
--- >= threshold and every sentence of three words or fewer. (The repository's also keeps only the last two
--- sentences and adds a transition sentence; this one keeps the rest as it was, so no new text enters.)
function M.trim_heavy(question, trace, opts)
  local o = settings(opts)
  return without(trace, sentences(trace), function(s)
    local ov, n = M.overlap(question, s.text)
    return ov >= o.threshold or n <= 3
  end)
end

local function mean(xs, from, to)
  local s = 0
  for i = from, to do s = s + xs[i] end
  return to >= from and s / (to - from + 1) or 0
end

--- ΔL from the prompt, the trace y and the trimmed trace y_trim, scored through `rec` (a record or a model):
--- delta (mean log-prob of y minus of y_trim, nats per token), sum (summed difference), per_removed (sum over the
--- tokens removed), suffix (mean over the longest common token suffix, in y minus in y_trim), with the scores.
function M.gap(rec, prompt, y, y_trim)
  local full, trim = rec:score(prompt, y), rec:score(prompt, y_trim)
  local a, b, k = #full.ids, #trim.ids, 0
  while k < a and k < b and full.ids[a - k] == trim.ids[b - k] do k = k + 1 end
  local removed = a - b
  return {delta = full.mean - trim.mean, sum = full.sum - trim.sum, removed = removed,
          per_removed = removed ~= 0 and (full.sum - trim.sum) / removed or nil,
          suffix = k > 0 and mean(full.logprobs, a - k + 1, a) - mean(trim.logprobs, b - k + 1, b) or nil,
          suffix_tokens = k, full = full.mean, trim = trim.mean, trimmed = y_trim}
end

--- The echo likelihood gap of one item: its trace (opts.trace, or greedy with opts.budget tokens), echo detection,
--- and ΔL (M.gap) for each remover that changed the trace (`prefix` and `heavy`; absent when it removed nothing).
function M.likelihood_gap(model, item, opts)
  local o = settings(opts)
  local rec = record.new(model, {strategy = "echo.likelihood_gap", item = item.id})
  local prompt = ask(model, rec, item.question, o)
  local trace = o.trace or rec:generate(prompt, gen(o, o.budget)).text
  local answer, correct = grade(o, trace, item.answer)
  local found = M.detect(item.question, trace, o)
  local out = {answer = answer, correct = correct, trace = trace, echo = found.echo, echo_sentences = found.count,
               echo_heading = found.heading or nil}
  for name, trimmer in pairs({prefix = M.trim_prefix, heavy = M.trim_heavy}) do
    local y_trim = trimmer(item.question, trace, o)
    if y_trim ~= trace and y_trim:match("%S") then out[name] = M.gap(rec, prompt, trace, y_trim) end
  end
  return rec:result(out)
end

--- Results of likelihood_gap grouped by correct and wrong: for the `which` remover ("prefix" by default), n,
--- echo rate, and the means of delta, sum, per_removed and suffix over the items it changed.
function M.gap_summary(results, which)
  which = which or "prefix"
  local groups = {}
  for _, r in ipairs(results) do
    local name = r.correct and "correct" or "wrong"
    local g = groups[name] or {n = 0, echo = 0, gaps = 0, delta = {}, sum = {}, per_removed = {}, suffix = {}}
    groups[name] = g
    g.n, g.echo = g.n + 1, g.echo + (r.echo and 1 or 0)
    local d = r[which]
    if d then
      g.gaps = g.gaps + 1
      for _, f in ipairs({"delta", "sum", "per_removed", "suffix"}) do
        if d[f] then g[f][#g[f] + 1] = d[f] end
      end
    end
  end
  for _, g in pairs(groups) do
    g.echo_rate = g.echo / g.n
    for _, f in ipairs({"delta", "sum", "per_removed", "suffix"}) do g[f] = #g[f] > 0 and mean(g[f], 1, #g[f]) or nil end
  end
  return groups
end

return M
