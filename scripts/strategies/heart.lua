-- HEART: emotional feedback for iterative self-correction. Imitates "HEART: Emotionally-driven test-time scaling
-- of Language Models" (no public code). The loop: answer; if the answer is wrong, give feedback made of a short,
-- emotionally charged phrase grounded in one of Ekman's six emotions, the emotion changing from one iteration to
-- the next; try again. The paper publishes neither its phrase bank nor its schedule: the phrases below are this
-- project's own, and the default schedule (six iterations, one per emotion, critical and encouraging in turn) is
-- this project's choice. Load other phrases with opts.phrases (a table or a Lua file returning one).
--
--   local heart = require "strategies.heart"
--   local r = heart.heart(lm.model, {id = 1, question = "...", answer = "12"})           -- oracle verifier
--   local f = heart.heart(lm.model, item, {verifier = false})                            -- verifier-free
--   local n = heart.neutral(lm.model, item)   local x = heart.fixed(lm.model, item, {emotion = "anger"})
--
-- Settings. With the oracle verifier (the default) the loop stops at the first correct answer and the result says
-- how many feedback rounds it took (`iterations`, 0 when the first answer is right). Without it (verifier = false)
-- every attempt gets feedback, all #schedule rounds run, and the final answer is read two ways: a synthesis call
-- asking for the best final answer (`answer_synthesis`) and a majority vote over the attempts (`answer_majority`).
--
-- Budget. The baselines run the same loop with the same schedule length, options and seeds: `neutral` gives
-- affect-neutral feedback, `fixed` one emotion every round, `blind` no feedback at all (each attempt the question
-- afresh: blind resampling, what feedback of any tone must beat). So each condition makes at most 1 + #schedule calls
-- (plus one synthesis call without a verifier) with the same max_tokens per call.
local record = require "strategies.record"
local answers = require "strategies.answers"

local M = {}
M.paper = "HEART: Emotionally-driven test-time scaling of Language Models"

-- The default schedule: one iteration per emotion of Ekman's six, critical and encouraging tones in turn.
M.schedule = {
  {emotion = "anger", tone = "critical"},
  {emotion = "happiness", tone = "encouraging"},
  {emotion = "disgust", tone = "critical"},
  {emotion = "surprise", tone = "encouraging"},
  {emotion = "fear", tone = "critical"},
  {emotion = "sadness", tone = "encouraging"},
}

-- The project's own phrases. Each emotion has a few; the k-th use of an emotion in a run takes its k-th phrase
-- (cycling). Sadness and surprise are written in the encouraging register the schedule gives them.
M.phrases = {
  instruction = "Give the final answer as a number.",
  wrong = "That answer is wrong.",                      -- oracle setting: the verifier said so
  check = "Look at your answer again.",                 -- verifier-free: feedback every turn, no verdict
  retry = "Solve the problem again and give the final answer as a number.",
  synthesis = "Considering all of your answers above, state your single best final answer as a number.",
  anger = {"This is infuriating, you keep getting it wrong!", "I am furious, this mistake is careless!",
           "Enough sloppy work, this makes me angry!"},
  disgust = {"Frankly, this answer is revolting.", "Ugh, this is a sickening mess of a solution.",
             "That reasoning is disgusting to read."},
  fear = {"I am scared this will go badly if you get it wrong again.", "This is frightening, everything depends on this answer.",
          "I fear we are running out of chances."},
  happiness = {"You are doing great, I am so happy with your effort!", "What a joy to work with you, keep going!",
               "I love how hard you are trying, you will get it!"},
  sadness = {"It makes me sad to see this slip, but I know you can fix it.", "I feel down about this one, please cheer me up with the right answer.",
             "This is a little heartbreaking, yet I still believe in you."},
  surprise = {"Wow, I am amazed how close you are, one more look!", "Surprising! You are nearly there, try once more!",
              "What a surprise this turned out wrong, you are better than this!"},
  neutral = {"Please reconsider the problem.", "Review the steps of your solution.", "Go through the problem once more."},
}

local EMOTIONS = {"anger", "disgust", "fear", "happiness", "sadness", "surprise"}
M.emotions = EMOTIONS

-- The generation options of attempt t: the caller's, with a seed per attempt so that conditions are paired.
local function gen_opts(opts, t)
  return {max_tokens = opts.max_tokens or 128, temperature = opts.temperature or 0.7, top_p = opts.top_p or 0.95,
          seed = (opts.seed or 1) + t - 1}
end

-- The feedback plan of a condition: one {emotion=, tone=} per round ("neutral" as the emotion for neutral feedback).
local function plan(kind, opts)
  local schedule = opts.schedule or M.schedule
  local rounds = opts.iterations or #schedule
  local out = {}
  for i = 1, rounds do
    if kind == "emotional" then out[i] = schedule[(i - 1) % #schedule + 1]
    elseif kind == "fixed" then out[i] = {emotion = opts.emotion or "anger", tone = "fixed"}
    elseif kind == "blind" then out[i] = {emotion = "none", tone = "none"}
    else out[i] = {emotion = "neutral", tone = "neutral"} end
  end
  return out
end

-- The feedback text of one round: verdict (or a check cue without a verifier), the phrase, the retry cue.
local function feedback(P, step, uses, verifier)
  local bank = P[step.emotion]
  if type(bank) ~= "table" then error("heart: no phrases for emotion '" .. tostring(step.emotion) .. "'", 3) end
  uses[step.emotion] = (uses[step.emotion] or 0) + 1
  local phrase = bank[(uses[step.emotion] - 1) % #bank + 1]
  return (verifier and P.wrong or P.check) .. " " .. phrase .. " " .. P.retry
end

--- The loop, for one kind of feedback ("emotional", "neutral" or "fixed").
function M.run(model, item, opts, kind)
  opts = opts or {}
  kind = kind or opts.feedback or "emotional"
  local P = record.phrases(M.phrases, opts.phrases)
  local verifier = opts.verifier ~= false
  local extract = answers.extractor(opts, "number")
  local verify = answers.verifier(opts, "numeric")
  local rec = record.new(model, {strategy = "heart." .. kind, item = item.id,
                                 setting = verifier and "oracle" or "verifier-free"})
  local rounds = plan(kind, opts)
  local blind = kind == "blind"
  local msgs = {{role = "user", content = item.question .. " " .. rec:inject("instruction", P.instruction)}}
  local attempts, uses, correct_at = {}, {}, nil
  for t = 1, #rounds + 1 do
    if blind then
      msgs = {msgs[1]}          -- every attempt afresh: the question alone, no earlier answer, no feedback
    elseif t > 1 then
      local step = rounds[t - 1]
      local text = rec:inject("feedback:" .. step.emotion, feedback(P, step, uses, verifier))
      msgs[#msgs + 1] = {role = "user", content = text}
    end
    local r = rec:generate({table.unpack(msgs)}, gen_opts(opts, t))   -- a copy: the record keeps this prompt
    msgs[#msgs + 1] = {role = "assistant", content = r.text}
    local a = extract(r.text)
    local ok = a ~= nil and verify(a, item.answer) or false
    attempts[t] = {answer = a, correct = ok, emotion = t > 1 and rounds[t - 1].emotion or nil, tokens = r.usage.completion}
    if ok and not correct_at then correct_at = t end
    if verifier and ok then break end
  end
  local out = {attempts = attempts, iterations = correct_at and correct_at - 1, correct_at = correct_at,
               feedback = kind, schedule = {}}
  for i, s in ipairs(rounds) do out.schedule[i] = s.emotion end
  local list = {}
  for i, a in ipairs(attempts) do list[i] = a.answer or false end
  if verifier then
    out.answer = attempts[#attempts].answer
    out.correct = correct_at ~= nil
  elseif blind then
    -- Independent attempts have no conversation to synthesise from: the answer is their vote.
    out.answer_majority = answers.majority(list)
    out.correct_majority = out.answer_majority ~= nil and verify(out.answer_majority, item.answer) or false
    out.any_correct = correct_at ~= nil
    out.answer, out.correct = out.answer_majority, out.correct_majority
  else
    msgs[#msgs + 1] = {role = "user", content = rec:inject("synthesis", P.synthesis)}
    local s = rec:generate(msgs, gen_opts(opts, #rounds + 2))
    out.answer_synthesis = extract(s.text)
    out.correct_synthesis = out.answer_synthesis ~= nil and verify(out.answer_synthesis, item.answer) or false
    out.answer_majority = answers.majority(list)
    out.correct_majority = out.answer_majority ~= nil and verify(out.answer_majority, item.answer) or false
    out.any_correct = correct_at ~= nil
    local by = opts.final or "synthesis"
    out.answer, out.correct = out["answer_" .. by], out["correct_" .. by]
  end
  return rec:result(out)
end

--- HEART: the emotion schedule (opts.schedule, default M.schedule).
function M.heart(model, item, opts) return M.run(model, item, opts, "emotional") end
--- Baseline: affect-neutral feedback, same rounds and budget.
function M.neutral(model, item, opts) return M.run(model, item, opts, "neutral") end
--- Baseline: one emotion (opts.emotion, default anger) every round, same rounds and budget.
function M.fixed(model, item, opts) return M.run(model, item, opts, "fixed") end
--- Baseline: blind resampling. The same number of attempts with the same seeds, each the question asked afresh
--- with no feedback of any tone; with the oracle it stops at the first right attempt, as the others do (so it
--- is the pass@k of independent samples); without a verifier its answer is the vote over the attempts (there is
--- no conversation to synthesise from: no synthesis call).
function M.blind(model, item, opts) return M.run(model, item, opts, "blind") end

M.strategies = {heart = M.heart, neutral = M.neutral, fixed = M.fixed, blind = M.blind}

--- Oracle setting: the share of results solved within n feedback rounds (n = 0: the first answer).
function M.accuracy_within(results, n)
  if #results == 0 then return nil end
  local k = 0
  for _, r in ipairs(results) do if r.iterations and r.iterations <= n then k = k + 1 end end
  return k / #results
end

--- Oracle setting: the mean number of feedback rounds the solved items needed (nil when none was solved).
function M.mean_iterations(results)
  local sum, k = 0, 0
  for _, r in ipairs(results) do if r.iterations then sum, k = sum + r.iterations, k + 1 end end
  return k > 0 and sum / k or nil
end

return setmetatable(M, {__call = function(_, model, item, opts) return M.heart(model, item, opts) end})
