-- The common final-answer grader: one rule for every arm of every experiment, applied to the texts a result line
-- recorded, beside the grader each strategy used itself. A strategy's own grader is part of the strategy (the
-- last number, a \boxed{} answer, a vote over last numbers); grading arms by their own graders favours some over
-- others: the last-number grader penalises an arm that writes its boxed answer and then more numbers, and credits
-- a trace cut at the budget whose last number happens to be the gold one. So every table also grades every arm
-- by this one rule, and the headline is this rule's.
--
--   the rule: lm.extract.answer (the last \boxed{} answer; else the number after the last "####"; else the number
--             right after the last "answer is" / "Answer:"; else the last number), then lm.verify.numeric
--
-- Applied to the line's final texts, as the strategy forms its answer from them (a vote over samples, the read-out
-- of best-of-N, any attempt of an oracle loop, the synthesis call of a verifier-free loop, ...), so that only the
-- reading of each text changes. A line also says how many of those texts were cut at the token budget (finish
-- "length"): a line is finished when none of its final texts was.
--
--   local grading = require "experiments.grading"
--   local g = grading.line(line)   -- {answer=, correct=, traces=, cut=, finished=, how=} (correct nil: not graded)
local answers = require "strategies.answers"

local M = {}

M.rule = "\\boxed{} first, then \"####\" or \"the answer is\", then the last number (lm.extract.answer); " ..
  "lm.verify.numeric against the gold answer"

--- The answer the rule reads in a text (nil when none) and how ("boxed", "####", "answer is", "last").
function M.read(text)
  if type(text) ~= "string" then return nil end
  return lm.extract.answer(text)
end

--- Whether an answer is the gold one (false for no answer).
function M.right(answer, gold)
  if answer == nil or gold == nil then return false end
  return lm.verify.numeric(answer, gold) == true
end

-- The strategy function of a line ("selection.best_of_n") and its options (decoded from line.call).
local function strategy_of(line)
  local call = tostring(line.call or "")
  local name, json = call:match("^([%w_%.]+)(%b{})$")
  local opts = json and lm.json.try_decode(json) or {}
  return name or call, type(opts) == "table" and opts or {}
end

-- The outputs of call k ({} when missing).
local function outputs(line, k)
  local c = line.calls and line.calls[k]
  return c and c.outputs or {}
end

local function first_text(line, k)
  local o = outputs(line, k)[1]
  return o and o.text, o and o.finish
end

-- A list of n values from what a line holds: an lm.list, a plain list, or the object an old runner wrote for a
-- list with holes ({"1": 9, "3": 16}). n defaults to the list's own n, else its largest index.
function M.list(v, n)
  local out = {}
  local max = 0
  if type(v) == "table" then
    for k, x in pairs(v) do
      local i = math.tointeger(tonumber(k))
      if i and i >= 1 and k ~= "n" then out[i] = x; if i > max then max = i end end
    end
  end
  return lm.list(n or (type(v) == "table" and math.tointeger(v.n)) or max, out)
end

-- The result of grading a set of final texts: `pick(answers)` forms the line's answer from the rule's answers of
-- the texts (a list with holes), `any` grades the line right when any text is right (oracle loops).
local function graded(texts, finishes, gold, how, pick)
  local list = lm.list(#texts)
  local cut = 0
  for i = 1, #texts do
    list[i] = M.read(texts[i])
    if finishes[i] == "length" then cut = cut + 1 end
  end
  local r = {traces = #texts, cut = cut, finished = cut == 0, how = how}
  if how == "any" then
    r.correct = false
    for i = 1, list.n do
      if M.right(list[i], gold) then r.correct, r.answer = true, list[i]; break end
    end
    if r.answer == nil then r.answer = list[list.n] end
  else
    r.answer = pick(list)
    r.correct = M.right(r.answer, gold)
  end
  return r
end

local function all_outputs(line, k)
  local texts, finishes = {}, {}
  for i, o in ipairs(outputs(line, k)) do texts[i], finishes[i] = o.text, o.finish end
  return texts, finishes
end

--- The final texts of a line's samples (call 1's outputs) and how they finished. After a constrained answer step
--- (the line's answer_step option) each sample's text is continued by its step's text (calls 2 to n + 1), as the
--- strategy read it; the finish stays the reasoning's (cut at its budget or not).
function M.sample_texts(line)
  local _, opts = strategy_of(line)
  local texts, finishes = all_outputs(line, 1)
  if opts.answer_step ~= nil and opts.answer_step ~= "free" then
    for i = 1, #texts do
      local step = outputs(line, i + 1)[1]
      texts[i] = answers.with_step(texts[i], step and step.text or "")
    end
  end
  return texts, finishes
end

local function vote(list) return (answers.majority(list)) end
local function only(list) return list[1] end

-- Per strategy function: the final texts of a line and how they make its answer. -> texts, finishes, how, pick
local RULES = {}

-- A vote over the samples of the one sample call.
RULES["selection.self_consistency"] = function(line)
  local t, f = M.sample_texts(line)
  return t, f, "vote", vote
end

-- Best-of-N: the read-out the arm reports (the majority by default), over the one shared sample set.
RULES["selection.best_of_n"] = function(line, opts)
  local t, f = M.sample_texts(line)
  local readout = opts.readout or "majority"
  if readout == "majority" then return t, f, "vote", vote end
  if readout == "pass" then return t, f, "any" end
  local reads = line.extra and line.extra.readouts
  local i = reads and reads[readout] and math.tointeger(reads[readout].index)
  if readout == "first" then i = 1 end
  if not i then return nil end
  return {t[i]}, {f[i]}, "one", only
end

-- Surprisal-guided selection picks among the correct samples: pass@N by construction, so graded as any.
RULES["selection.surprisal"] = function(line)
  local t, f = M.sample_texts(line)
  return t, f, "any"
end

-- Retries with an oracle: the answer kept in each round (one sample call a round); right when any kept one is.
RULES["selection.retry"] = function(line)
  local history = line.extra and line.extra.history
  local texts, finishes = {}, {}
  for k, c in ipairs(line.calls or {}) do
    local h = history and history[k]
    local pick = h and math.tointeger(h.picked) or 1
    local o = c.outputs and c.outputs[pick]
    if o then texts[#texts + 1], finishes[#finishes + 1] = o.text, o.finish end
  end
  return texts, finishes, "any"
end

--- Early rejection's candidate i, finished: its partial text (the first call's sample i) and, when that was cut at
--- tau, its continuation: the call whose prompt ends in that text and whose seed is the candidate's (the first
--- call's seed + i - 1, as the strategy draws it; several candidates can share a partial text, so the prompt alone
--- does not tell their continuations apart). -> text, finish (nil when the line does not hold it)
function M.early_candidate(line, i)
  local p = outputs(line, 1)[i]
  if not p then return nil end
  if p.finish ~= "length" then return p.text, p.finish end
  local first = line.calls[1].opts
  local seed = first and math.tointeger(first.seed) and first.seed + i - 1
  for k = 2, #(line.calls or {}) do
    local c = line.calls[k]
    local prompt = type(c.prompt) == "string" and c.prompt or ""
    local own = seed == nil or (c.opts and c.opts.seed == seed)
    if own and prompt:sub(-#p.text) == p.text and c.outputs and c.outputs[1] then
      return p.text .. c.outputs[1].text, c.outputs[1].finish
    end
  end
  return nil
end

-- Early rejection: the kept candidate with the highest mean log-probability of its whole text (M.early_candidate).
RULES["selection.early_rejection"] = function(line)
  local e = line.extra or {}
  local partial = outputs(line, 1)
  local means = e.full_means and M.list(e.full_means, #partial)
  local kept = e.kept and M.list(e.kept)
  if not (means and kept) then return nil end
  local best
  for j = 1, kept.n do
    local i = math.tointeger(kept[j])
    if i and (best == nil or (means[i] or -math.huge) > (means[best] or -math.huge)) then best = i end
  end
  local text, finish = nil, nil
  if best then text, finish = M.early_candidate(line, best) end
  if not text then return nil end
  return {text}, {finish}, "one", only
end

-- Echoic prompting's two stages: the answer from the continuation, else from the first chunk (as the strategy).
local function two_stage(line)
  local t1, f1 = first_text(line, 1)
  local t2, f2 = first_text(line, 2)
  return {t2, t1}, {f2}, "continuation, else the first chunk", function(list)
    if list[1] ~= nil then return list[1] end
    return list[2]
  end
end
RULES["echo.echoic"], RULES["echo.continuation"], RULES["echo.filler"] = two_stage, two_stage, two_stage

-- The causal variant: a failed trace's first continuation (a trace the strategy found right is not continued:
-- such a line is not graded, and the report leaves it out).
RULES["echo.causal"] = function(line)
  if #(line.calls or {}) < 2 then return {}, {}, "not graded" end
  local t, f = first_text(line, 2)
  return {t}, {f}, "one", only
end

-- HEART: with the oracle, right when any attempt is; without it, the synthesis call (the last), or the vote over
-- the attempts when the arm reads its answer that way (final = "majority").
local function heart(line, opts)
  local texts, finishes = {}, {}
  for k = 1, #(line.calls or {}) do texts[k], finishes[k] = first_text(line, k) end
  if opts.verifier ~= false then return texts, finishes, "any" end
  if opts.final == "majority" or line.call:match("^heart%.blind") then
    if line.call:match("^heart%.blind") then return texts, finishes, "vote", vote end
    table.remove(texts); table.remove(finishes)
    return texts, finishes, "vote", vote
  end
  return {texts[#texts]}, {finishes[#finishes]}, "one", only
end
RULES["heart.heart"], RULES["heart.neutral"], RULES["heart.fixed"], RULES["heart.blind"] = heart, heart, heart, heart

-- The echo likelihood gap: the trace (the first call; score calls follow it).
RULES["echo.likelihood_gap"] = function(line)
  local t, f = first_text(line, 1)
  return {t}, {f}, "one", only
end

-- RISE: the majority of the sequential turns (turn 1 is the first call's first sample; one call a turn after it).
RULES["rise.run"] = function(line)
  local texts, finishes = {}, {}
  for k = 1, #(line.calls or {}) do texts[k], finishes[k] = first_text(line, k) end
  return texts, finishes, "vote", vote
end

--- The rule's verdict on one result line: {answer=, correct=, traces=, cut=, finished=, how=}; correct is nil for a
--- line the rule cannot grade (no final text, or a line its strategy did not grade either).
function M.line(line)
  local name, opts = strategy_of(line)
  local rule = RULES[name]
  local texts, finishes, how, pick
  if rule then texts, finishes, how, pick = rule(line, opts) end
  if how == "not graded" then return {traces = 0, cut = 0, how = how} end
  if not texts then
    -- Any other strategy: the answer is read from the last call's first output.
    local k = #(line.calls or {})
    local t, f = first_text(line, k)
    texts, finishes, how, pick = {t}, {f}, "last call", only
  end
  if #texts == 0 or texts[1] == nil and #texts == 1 then return {traces = 0, cut = 0, how = how} end
  local r = graded(texts, finishes, line.gold, how, pick)
  r.traces = #finishes > 0 and #finishes or r.traces
  return r
end

return M
