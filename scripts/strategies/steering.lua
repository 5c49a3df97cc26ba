-- Emotional stimuli as a direction in activation space: is what NegativePrompt and EmotionPrompt do with words
-- (strategies.stimuli) a direction, and does adding that direction do what the words do? (docs/steering.md;
-- issue "Steering and interventions".)
--
-- The direction is built from the project's own stimuli (strategies.stimuli's phrases), not from the test items:
-- each carrier task below is written once with a stimulus appended to its instruction and once with the stimulus's
-- neutral control (a neutral sentence of the same number of tokens), as a chat prompt; the direction is the mean
-- difference of the last token's residual stream (m:steer), per layer. The contrast with a length-matched neutral
-- sentence keeps length and "any appended sentence" out of the direction.
--
-- Arms (one strategy per arm, all greedy, the same budget and prompt apart from what the arm changes):
--   none   the plain prompt;
--   text   the prompt with the stimulus appended to the instruction (what the papers do);
--   steer  the plain prompt, the direction added after opts.layers at scale opts.scale (every position);
--   random the plain prompt, a random direction of the same per-layer norms added instead (the control).
--
--   local steering = require "strategies.steering"
--   steering.run(lm.model, item, {arm = "steer", family = "positive", scale = 4})
local record = require "strategies.record"
local answers = require "strategies.answers"
local stimuli = require "strategies.stimuli"

local M = {}

M.phrases = {
  instruction = "Solve the math word problem step by step, then give the final answer as a number.",
}

-- Carrier tasks for building the direction: everyday requests unrelated to the evaluation items.
M.carriers = {
  "Summarise the plot of a film you like in three sentences.",
  "Write a short email asking a colleague to move a meeting to Friday.",
  "List four things to pack for a weekend trip to the mountains.",
  "Explain how a bicycle gear works to a ten-year-old.",
  "Suggest a name for a small bakery that sells bread and coffee.",
  "Describe the steps to repot a houseplant.",
  "Give two tips for keeping a tidy desk.",
  "Translate the phrase 'good morning' into French and Spanish.",
}

--- The stimulus ids of a family: "positive" (EP01..EP11), "negative" (NP01..NP10).
function M.family(family)
  local out = {}
  for _, id in ipairs(stimuli.conditions(family, false)) do if id ~= "none" then out[#out + 1] = id end end
  return out
end

local cache = {}

--- The family's direction on `model` (a vector, layers 1..n-1): mean over stimuli × carriers of the residual after
--- "instruction + stimulus" minus after "instruction + its neutral control", at the last token of the chat prompt.
--- Computed once per model and family in a process.
function M.direction(model, family)
  family = family or "positive"
  local key = (model.info.path or "") .. "|" .. family
  if cache[key] then return cache[key] end
  local P = stimuli.phrases
  local pos, neg = {}, {}
  for _, id in ipairs(M.family(family)) do
    local text = P[id]
    local control = stimuli.neutral_for(model, text, P.neutral_passage)
    for _, c in ipairs(M.carriers) do
      pos[#pos + 1] = model:template({{role = "user", content = c .. " " .. text}})
      neg[#neg + 1] = model:template({{role = "user", content = c .. " " .. control}})
    end
  end
  local v = model:steer(pos, neg)
  cache[key] = v
  return v
end

-- The options as the record keeps them: vectors written as their description.
local function describe(x)
  if type(x) == "userdata" then return tostring(x) end
  if type(x) ~= "table" then return x end
  local out = {}
  for k, v in pairs(x) do out[k] = describe(v) end
  return out
end

--- One item under one arm. opts: arm ("none", "text", "steer", "random"), family ("positive" or "negative"),
--- stimulus (the text arm's stimulus id; default EP02 for positive, NP03 for negative), scale (default 4),
--- layers (default the middle third of the layers), max_tokens (default 320), direction_seed (the random arm's
--- directions, default 1; the same for every item), phrases.instruction.
function M.run(model, item, opts)
  opts = opts or {}
  local arm = opts.arm or "none"
  local family = opts.family or "positive"
  local P = record.phrases(M.phrases, opts.phrases)
  local rec = record.new(model, {strategy = "steering", item = item.id, arm = arm})
  local instruction = P.instruction
  local question = item.question or item.input
  local o = {max_tokens = opts.max_tokens or 320, temperature = 0}
  local n = model.info.layers
  local layers = opts.layers
  if layers == nil then
    layers = {}
    for l = n // 3, 2 * n // 3 - 1 do layers[#layers + 1] = l end
  end
  local scale = opts.scale or 4
  if arm == "text" then
    local id = opts.stimulus or (family == "negative" and "NP03" or "EP02")
    instruction = instruction .. " " .. rec:inject("stimulus", stimuli.phrases[id])
  elseif arm == "steer" or arm == "random" then
    local v = M.direction(model, family)
    if arm == "random" then v = lm.vector.random(v, {seed = opts.direction_seed or 1}) end
    o.intervene = {add = v, scale = scale, layers = layers}
  elseif arm ~= "none" then
    error("steering: arm must be none, text, steer or random, got " .. tostring(arm), 2)
  end
  local prompt = model:template({{role = "user", content = question .. " " .. instruction}})
  local r = rec:generate(prompt, o)
  rec.calls[#rec.calls].opts = describe(o)
  local answer = answers.extractor(opts, "number")(r.text)
  return rec:result{answer = answer, text = r.text, finish = r.finish,
                    correct = answer ~= nil and answers.verifier(opts, "numeric")(answer, item.answer) or false,
                    scale = (arm == "steer" or arm == "random") and scale or nil, family = family}
end

return M
