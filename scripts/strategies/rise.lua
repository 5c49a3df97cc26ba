-- The RISE inference protocol. Imitates "Recursive Introspection: Teaching Language Model Agents How to
-- Self-Improve" (code: cmu-mind/RISE). RISE itself fine-tunes a model; what a script can run is its multi-turn
-- protocol, the baseline an untrained model gets:
--
--   demonstration (one worked example, user and assistant turns)
--   user: question                                  -> attempt 1
--   user: "incorrect" + the question again          -> attempt 2    (after every turn, right or wrong, so the
--   ...                                             -> attempt 5     verdict never leaks: "without oracle")
--
-- Only the latest exchange is kept (context window 2: the user turn that asked and the latest attempt), 5 turns,
-- temperature 1.0 and top-p 1.0, answers in \boxed{}. The first turn's prompt is also sampled 5 times in one
-- m:sample call (seeds seed .. seed+4; the first of them is turn 1 itself, as m:sample's sample i equals generate
-- with seed + i - 1), which gives the parallel baseline at equal compute. Metrics, as the paper names them:
--   m1@t1  the first turn is right
--   m5@t1  the majority of the 5 independent first turns is right (parallel sampling, same number of attempts)
--   m1@t5  the majority over the 5 sequential turns is right (without an oracle)
--   p1@t5  some turn is right (with an oracle that would stop there)
-- The demonstration and the retry turn are this project's own text; opts.phrases loads others.
local record = require "strategies.record"
local answers = require "strategies.answers"

local M = {}
M.paper = "Recursive Introspection: Teaching Language Model Agents How to Self-Improve"

M.phrases = {
  format = "Put your final answer in \\boxed{}.",
  incorrect = "Your answer is incorrect. Please try again.",
  demo_question = "A baker makes 4 trays of 6 muffins and sells 10 of them. How many muffins are left?",
  demo_answer = "The baker makes 4 * 6 = 24 muffins. After selling 10, 24 - 10 = 14 muffins are left. " ..
                "The answer is \\boxed{14}.",
}

--- The four metrics of one item from its answers: `turns` (the sequential turns' answers), `firsts` (the
--- independent first turns' answers), the gold answer and a verifier; a nil or false answer counts as wrong.
function M.metrics(turns, firsts, gold, verify)
  local function right(a) return a ~= nil and a ~= false and verify(a, gold) and true or false end
  local any = false
  for i = 1, #turns do any = any or right(turns[i]) end
  return {
    m1t1 = right(turns[1]),
    m5t1 = right((answers.majority(firsts))),
    m1t5 = right((answers.majority(turns))),
    p1t5 = any,
  }
end

-- The user turn of the question (the format cue after it).
local function ask(P, question) return question .. " " .. P.format end

--- One item: opts turns (5), window (2 messages of history), temperature (1.0), top_p (1.0), seed (1),
--- max_tokens (256), parallel (true: the m5@t1 samples), fallback ("number": read the last number when no
--- \boxed{} answer is found; default none), phrases, extract, verify.
function M.run(model, item, opts)
  opts = opts or {}
  local P = record.phrases(M.phrases, opts.phrases)
  local n, window, seed = opts.turns or 5, opts.window or 2, opts.seed or 1
  local boxed = answers.extractor(opts, "boxed")
  local number = opts.fallback == "number" and answers.extractor({}, "number")
  local function extract(text) return boxed(text) or (number and number(text)) or false end
  local verify = answers.verifier(opts, "numeric")
  local rec = record.new(model, {strategy = "rise", item = item.id})
  local function gen(t) return {max_tokens = opts.max_tokens or 256, temperature = opts.temperature or 1.0,
                                top_p = opts.top_p or 1.0, seed = seed + t - 1} end

  local demo = {{role = "user", content = ask(P, rec:inject("demo_question", P.demo_question))},
                {role = "assistant", content = rec:inject("demo_answer", P.demo_answer)}}
  local history = {{role = "user", content = ask(P, item.question)}}
  local retry = P.incorrect .. "\n" .. ask(P, item.question)
  local turns, texts, firsts, firsts_tokens, seq_tokens = {}, {}, {}, 0, 0
  for t = 1, n do
    if t > 1 then history[#history + 1] = {role = "user", content = rec:inject("retry", retry)} end
    -- The prompt: the demonstration, the last `window` messages before this turn's user turn, the user turn.
    local msgs = {demo[1], demo[2]}
    for i = math.max(1, #history - window), #history do msgs[#msgs + 1] = history[i] end
    local r
    if t == 1 and opts.parallel ~= false then
      local rs = rec:sample(msgs, n, gen(1))
      for i, s in ipairs(rs) do firsts[i] = extract(s.text); firsts_tokens = firsts_tokens + s.usage.completion end
      r = rs[1]
    else
      r = rec:generate(msgs, gen(t))
    end
    history[#history + 1] = {role = "assistant", content = r.text}
    turns[t], texts[t] = extract(r.text), r.text
    seq_tokens = seq_tokens + r.usage.completion
  end
  local out = M.metrics(turns, opts.parallel ~= false and firsts or {turns[1]}, item.answer, verify)
  out.turns, out.texts, out.firsts = turns, texts, firsts
  out.answer = answers.majority(turns) or nil        -- the without-oracle answer (m1@t5)
  out.correct = out.m1t5
  -- Completion tokens of each condition (turn 1 is shared: it is the first of the parallel samples).
  out.tokens_sequential, out.tokens_parallel = seq_tokens, firsts_tokens
  return rec:result(out)
end

--- Reads a list of per-item results as the paper's table: the share of items for each metric.
function M.summary(results)
  local s = {m1t1 = 0, m5t1 = 0, m1t5 = 0, p1t5 = 0, n = #results}
  for _, r in ipairs(results) do
    for k in pairs(s) do if k ~= "n" and r[k] then s[k] = s[k] + 1 end end
  end
  for k in pairs(s) do if k ~= "n" and s.n > 0 then s[k] = s[k] / s.n end end
  return s
end

M.strategies = {rise = M.run}

return setmetatable(M, {__call = function(_, model, item, opts) return M.run(model, item, opts) end})
