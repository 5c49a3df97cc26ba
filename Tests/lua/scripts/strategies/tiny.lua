-- Two cheap strategies for the experiment runner's tests (Tests/lua/test_runner.lua), built on strategies.record
-- as the real ones are: `greedy` leaves grading to the runner, `sampled` grades itself and returns a field too big
-- for a result line. $REFRAIN_TEST_DELAY (seconds) slows every call down, so that a test can kill a run midway.
local record = require "strategies.record"
local M = {}

local function pause()
  local d = tonumber(os.getenv("REFRAIN_TEST_DELAY") or "")
  if d and d > 0 then os.execute(("sleep %.2f"):format(d)) end
end

local function prompt(model, rec, item)
  return model:template({{role = "user", content = rec:inject("ask", item.question .. " Answer with a number.")}})
end

--- One greedy answer; no `correct` field (the runner grades it).
function M.greedy(model, item, opts)
  pause()
  local rec = record.new(model, {strategy = "tiny.greedy", item = item.id})
  local r = rec:generate(prompt(model, rec, item), {max_tokens = opts.max_tokens or 8, temperature = 0})
  return rec:result{answer = lm.extract.number(r.text), seed_seen = opts.seed}
end

--- opts.n samples at temperature 0.8 from the item's seed; the first one's answer, graded here.
function M.sampled(model, item, opts)
  pause()
  local rec = record.new(model, {strategy = "tiny.sampled", item = item.id})
  local rs = rec:sample(prompt(model, rec, item), opts.n or 2,
                        {max_tokens = opts.max_tokens or 8, temperature = 0.8, seed = opts.seed})
  local answer = lm.extract.number(rs[1].text)
  return rec:result{answer = answer, correct = lm.verify.numeric(answer, item.answer), seed_seen = opts.seed,
                    blob = ("x"):rep(3000)}
end

--- Always fails (the runner must stop and record nothing for it).
function M.fails() error("tiny.fails: on purpose") end

return M
