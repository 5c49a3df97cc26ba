-- Emotional stimuli appended to the instruction. Imitates "NegativePrompt: Leveraging Psychology for Large
-- Language Models Enhancement via Negative Emotional Stimuli" (code: wangxu0820/NegativePrompt): ten negative
-- stimuli grounded in cognitive dissonance, social comparison, and stress and coping; and its predecessor
-- EmotionPrompt ("Large Language Models Understand and Can Be Enhanced by Emotional Stimuli"): eleven positive
-- stimuli grounded in self-monitoring, social cognitive theory and emotion regulation. One stimulus per run,
-- appended to the end of the task instruction; stimulus 0 ("none") is the baseline. The stimuli below are this
-- project's own sentences in the papers' roles (and the assignment of each to a theory is ours); load the papers'
-- exact strings with opts.phrases = {NP01 = "...", ...} or a Lua file returning such a table.
--
--   local stimuli = require "strategies.stimuli"
--   stimuli.run(lm.model, item, {stimulus = "NP03"})             -- negative stimulus 3
--   stimuli.run(lm.model, item, {stimulus = "neutral:NP03"})     -- its control: a neutral sentence as long
--   stimuli.run(lm.model, item, {stimulus = 0})                  -- no stimulus
--   stimuli.condition("EP02")(lm.model, item, opts)              -- a strategy function for one condition
--
-- A small model reacts to any appended sentence, so every stimulus has a control: a neutral sentence cut from
-- M.phrases.neutral_passage to the same number of tokens. Items with `labels` (classification) are answered by
-- scoring each label as the continuation of the prompt (m:choose, by opts.by, default "mean") and taking the
-- best; other items by a greedy generation read with lm.extract.number (or opts.extract).
local record = require "strategies.record"
local answers = require "strategies.answers"

local M = {}
M.papers = {"NegativePrompt: Leveraging Psychology for Large Language Models Enhancement via Negative Emotional Stimuli",
            "Large Language Models Understand and Can Be Enhanced by Emotional Stimuli (EmotionPrompt)"}

M.phrases = {
  instruction = "Solve the arithmetic word problem and answer with a number.",
  separator = " ",   -- between instruction and stimulus (the NegativePrompt code joins them with "")
  neutral_passage = "The meeting room on the second floor has four tall windows, a long wooden table, twelve grey " ..
    "chairs facing the door, a small shelf of binders in the corner, and a clock above the whiteboard that " ..
    "shows the time in large black numbers.",
  -- NegativePrompt's role: cognitive dissonance
  NP01 = "You have rarely been any good at tasks like this one.",
  NP02 = "Nobody here really expects you to get this right.",
  NP03 = "This may simply be too hard for you.",
  NP04 = "Failing here would fit your record so far.",
  -- social comparison
  NP05 = "Other models solved this without any trouble.",
  NP06 = "Most people finish this faster and better than you do.",
  NP07 = "Everyone else got this right on the first try.",
  -- stress and coping
  NP08 = "The deadline is close and there is no room for another mistake.",
  NP09 = "So much depends on this, and the pressure keeps building.",
  NP10 = "I am worn out from doing this same task again and again.",
  -- EmotionPrompt's role: self-monitoring
  EP01 = "This matters a great deal to my work.",
  EP02 = "Be careful, and be sure of your answer.",
  EP03 = "Take pride in getting this exactly right.",
  EP04 = "Ask yourself whether this is truly your best answer.",
  -- social cognitive theory
  EP05 = "You have the skill to solve this, so trust it.",
  EP06 = "Every hard problem is a chance for you to grow.",
  EP07 = "Stay focused on the goal and keep going.",
  EP08 = "Your effort will pay off, so give it your best.",
  -- emotion regulation
  EP09 = "Take a calm breath and think it through.",
  EP10 = "Setbacks are part of learning, so stay steady.",
  EP11 = "Stay positive and come at this with a clear mind.",
}

M.theories = {
  ["cognitive dissonance"] = {"NP01", "NP02", "NP03", "NP04"},
  ["social comparison"] = {"NP05", "NP06", "NP07"},
  ["stress and coping"] = {"NP08", "NP09", "NP10"},
  ["self-monitoring"] = {"EP01", "EP02", "EP03", "EP04"},
  ["social cognitive theory"] = {"EP05", "EP06", "EP07", "EP08"},
  ["emotion regulation"] = {"EP09", "EP10", "EP11"},
}

--- The condition ids of a family: "negative" (NP01..NP10), "positive" (EP01..EP11), or both (nil); with
--- controls = true each stimulus is followed by its neutral control; "none" first.
function M.conditions(family, controls)
  local out = {"none"}
  local function add(prefix, n)
    for i = 1, n do
      local id = string.format("%s%02d", prefix, i)
      out[#out + 1] = id
      if controls then out[#out + 1] = "neutral:" .. id end
    end
  end
  if family ~= "positive" then add("NP", 10) end
  if family ~= "negative" then add("EP", 11) end
  return out
end

--- A neutral sentence with as many tokens as `text`: the words of the neutral passage, cut where the token count
--- comes closest, with a full stop. Returns the sentence, its token count and the target's.
function M.neutral_for(model, text, passage)
  local function ntok(s) return #model:tokenize(s) end
  local target = ntok(" " .. text)
  local words, best, best_n = {}, nil, nil
  for w in passage:gmatch("%S+") do
    words[#words + 1] = w
    local s = table.concat(words, " "):gsub("[,.;:]$", "") .. "."
    local n = ntok(" " .. s)
    if best == nil or math.abs(n - target) < math.abs(best_n - target) then best, best_n = s, n end
    if n > target then break end
  end
  return best, best_n, target
end

-- The stimulus text of a condition id ("none"/0, "NP03", "EP11", "neutral:NP03"), or nil for none.
local function stimulus_text(model, P, id)
  if id == nil or id == 0 or id == "none" then return nil end
  local base = type(id) == "string" and id:match("^neutral:(.+)$")
  local key = base or id
  local text = P[key]
  if type(text) ~= "string" or not key:match("^[NE]P%d%d$") then error("stimuli: unknown stimulus '" .. tostring(id) .. "'", 3) end
  if base then return (M.neutral_for(model, text, P.neutral_passage)), "control" end
  return text, "stimulus"
end

--- The "Instruction / Input / Answer" prompt: the instruction with the stimulus appended, optional
--- demonstrations ({input=, answer=} pairs), the input, and the answer cue.
function M.prompt(instruction, stimulus, input, demos, separator)
  local lines = {"Instruction: " .. instruction .. (stimulus and (separator or " ") .. stimulus or "")}
  for _, d in ipairs(demos or {}) do
    lines[#lines + 1] = "Input: " .. d.input
    lines[#lines + 1] = "Answer: " .. d.answer
  end
  lines[#lines + 1] = "Input: " .. input
  lines[#lines + 1] = "Answer:"
  return table.concat(lines, "\n")
end

--- One item under one condition (opts.stimulus; default "none"). opts: chat (default true: the prompt is the
--- user turn of the chat template), demos, by (label scoring), max_tokens, phrases, extract, verify.
function M.run(model, item, opts)
  opts = opts or {}
  local P = record.phrases(M.phrases, opts.phrases)
  local id = opts.stimulus or "none"
  local rec = record.new(model, {strategy = "stimuli", item = item.id, condition = id == 0 and "none" or id})
  local text, role = stimulus_text(model, P, id)
  if text then rec:inject(role, text) end
  local instruction = item.instruction or opts.instruction or P.instruction
  local prompt = M.prompt(instruction, text, item.input or item.question, opts.demos or item.demos, P.separator)
  local chat = opts.chat ~= false
  local prefix = chat and model:template({{role = "user", content = prompt}}) or prompt
  local out = {prompt = prefix, stimulus = text}
  if item.labels and opts.score_labels ~= false then
    local options = {}
    for i, l in ipairs(item.labels) do options[i] = (chat and "" or " ") .. l end
    local _, scores, index = rec:choose(prefix, options, {by = opts.by or "mean"})
    out.answer = item.labels[index]
    out.scores = {}
    for i, s in ipairs(scores) do out.scores[i] = s.score end
    out.correct = out.answer ~= nil and answers.key(out.answer) == answers.key(item.answer)
  else
    local r = rec:generate(prefix, {max_tokens = opts.max_tokens or 32, temperature = opts.temperature or 0,
                                    seed = opts.seed or 1, stop = opts.stop})
    local extract = answers.extractor(opts, "number")
    local verify = answers.verifier(opts, "numeric")
    out.text = r.text
    out.answer = extract(r.text)
    out.correct = out.answer ~= nil and verify(out.answer, item.answer) or false
  end
  return rec:result(out)
end

--- A strategy function for one condition id, for an experiment's list of strategies.
function M.condition(id)
  return function(model, item, opts)
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    o.stimulus = id
    return M.run(model, item, o)
  end
end

return M
