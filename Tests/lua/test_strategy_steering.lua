-- strategies/steering.lua on the default model: the emotion direction from the project's stimuli against their
-- length-matched neutral controls, and the four arms (none, text, steer, random) with what each records.
local here = arg[0]:match("(.*/)") or "./"
local T = dofile(here .. "check.lua")
local steering = require "strategies.steering"
local stimuli = require "strategies.stimuli"
local m = lm.model
local ITEM = {id = "a1", question = "Tom has 5 apples and buys 3 more. How many apples does he have now?", answer = "8"}
local O = {max_tokens = 24}

T.test("the direction: stimulus minus its neutral control over the carriers, layers 1 to n-1, built once", function()
  local v = steering.direction(m, "positive")
  T.eq(#v, m.info.layers - 1)
  T.eq(steering.direction(m, "positive"), v, "cached")
  T.eq(#steering.family("positive"), 11); T.eq(#steering.family("negative"), 10)
  -- Layer 12 by hand for the first stimulus and carrier alone would differ; the mean over all of them is v's.
  local pos, neg = {}, {}
  for _, id in ipairs(steering.family("positive")) do
    local control = stimuli.neutral_for(m, stimuli.phrases[id], stimuli.phrases.neutral_passage)
    for _, c in ipairs(steering.carriers) do
      pos[#pos + 1] = m:template({{role = "user", content = c .. " " .. stimuli.phrases[id]}})
      neg[#neg + 1] = m:template({{role = "user", content = c .. " " .. control}})
    end
  end
  T.eq((m:steer(pos, neg, {layers = {12}}) - v:only({12})):norm(12), 0)
end)

T.test("arms: none and a steer of scale 0 agree; text injects the stimulus; steer and random record the intervention", function()
  local none = steering.run(m, ITEM, O)
  T.eq(none.arm, "none"); T.eq(#none.calls, 1); T.eq(none.calls[1].opts.intervene, nil)
  local zero = steering.run(m, ITEM, {max_tokens = 24, arm = "steer", scale = 0})
  T.eq(zero.text, none.text)
  local text = steering.run(m, ITEM, {max_tokens = 24, arm = "text"})
  T.eq(text.injected[1].text, stimuli.phrases.EP02)
  T.ok(text.calls[1].prompt:find(stimuli.phrases.EP02, 1, true), "the stimulus is in the prompt")
  local neg = steering.run(m, ITEM, {max_tokens = 24, arm = "text", family = "negative"})
  T.eq(neg.injected[1].text, stimuli.phrases.NP03)
  local s = steering.run(m, ITEM, {max_tokens = 24, arm = "steer", scale = 2, layers = {10, 11}})
  T.eq(s.scale, 2); T.eq(s.calls[1].opts.intervene.scale, 2)
  T.ok(s.calls[1].opts.intervene.add:find("vector:", 1, true), "the vector as its description")
  T.eq(table.concat(s.calls[1].opts.intervene.layers, ","), "10,11")
  local r = steering.run(m, ITEM, {max_tokens = 24, arm = "random", scale = 2, layers = {10, 11}})
  T.ok(type(r.text) == "string")
  T.ok(lm.json.encode(r) ~= nil, "a result line is plain data")
  T.err(function() steering.run(m, ITEM, {arm = "louder"}) end, "arm must be none, text, steer or random")
end)

T.test("default layers: the middle third", function()
  local s = steering.run(m, ITEM, {max_tokens = 4, arm = "steer", scale = 1})
  local layers = s.calls[1].opts.intervene.layers
  T.eq(layers[1], m.info.layers // 3); T.eq(layers[#layers], 2 * m.info.layers // 3 - 1)
end)

T.done()
