-- The committed results (docs/results/*/) against their own per-item lines: every recorded vote is the majority of
-- its samples' answers (read again from the recorded texts), and every strategy's headline accuracy in summary.json
-- is what the common grader gives on the lines (an item's score its mean over the seed sets), as is the accuracy by
-- the strategies' own graders. A results folder with lines and no summary, or a summary with no lines, fails.
local here = arg[0]:match("(.*/)") or "./"
local T = dofile(here .. "check.lua")
package.path = here .. "../../scripts/?.lua;" .. package.path
local grading = require "experiments.grading"
local answers = require "strategies.answers"
local ROOT = here .. "../../docs/results"

local read = T.read

local folders = {}
do
  local p = assert(io.popen("ls -1 " .. T.q(ROOT)))
  for name in p:lines() do folders[#folders + 1] = name end
  p:close()
end
T.ok(#folders >= 20, "docs/results lists " .. #folders .. " folders")

local function near(got, want, msg)
  if type(got) ~= "number" or type(want) ~= "number" or math.abs(got - want) > 1e-9 then
    error((msg or "") .. ": expected " .. tostring(want) .. ", got " .. tostring(got), 2)
  end
end

local checked, votes = 0, 0
for _, name in ipairs(folders) do
  local dir = ROOT .. "/" .. name
  local gz = io.open(dir .. "/results.jsonl.gz", "rb")
  if gz then
    gz:close()
    checked = checked + 1
    T.test(name, function()
      local p = assert(io.popen("gzip -dc " .. T.q(dir .. "/results.jsonl.gz")))
      local text = p:read("a")
      p:close()
      local summary = lm.json.decode(assert(read(dir .. "/summary.json"), "no summary.json"))
      T.ok(summary.grader, "summary.json was written by the runner with the common grader (re-grade the folder)")
      local seeds = summary.seeds or 1
      local by = {}
      local n = 0
      for line in text:gmatch("[^\n]+") do
        local l = lm.json.decode(line)
        n = n + 1
        local set = math.tointeger(l.seed_set) or 1
        if set <= seeds and (not summary.n or l.index <= summary.n) then
          by[l.strategy] = by[l.strategy] or {}
          by[l.strategy][l.index] = by[l.strategy][l.index] or {}
          by[l.strategy][l.index][set] = l
        end
        -- The vote: the majority of the samples' answers, as the strategy reads them (the last number; after a
        -- constrained answer step, the number of "The answer is" in the sample and its step).
        local fn = tostring(l.call):match("^([%w_%.]+)")
        local e = l.extra or {}
        if fn == "selection.self_consistency" or (fn == "selection.best_of_n" and e.readouts) then
          local step = tostring(l.call):find('"answer_step"', 1, true)
          local texts = grading.sample_texts(l)
          local list = lm.list(#texts)
          for i, t in ipairs(texts) do list[i] = (step and lm.extract.final or lm.extract.number)(t) end
          local winner = answers.majority(list)
          local recorded
          if fn == "selection.self_consistency" then recorded = l.answer else recorded = e.readouts.majority.answer end
          T.eq(answers.key(recorded), answers.key(winner), ("%s line %d (%s, %s): the recorded vote"):format(name, n,
            tostring(l.item), tostring(l.strategy)))
          votes = votes + 1
        end
      end
      for _, s in ipairs(summary.strategies) do
        local items = by[s.name]
        T.ok(items, "summary.json names " .. s.name .. ", which has no lines")
        local common, own, k = 0, 0, 0
        for _, sets in pairs(items) do
          local c, w, m = 0, 0, 0
          for _, l in pairs(sets) do
            local g = grading.line(l).correct
            if g ~= nil then                 -- lines left ungraded (echo.causal's right traces) are left out
              m = m + 1
              if g then c = c + 1 end
              if l.correct == true then w = w + 1 end
            end
          end
          if m > 0 then common, own, k = common + c / m, own + w / m, k + 1 end
        end
        T.eq(s.items, k, s.name .. " items")
        near(s.accuracy, common / k, name .. " " .. s.name .. " accuracy (common grader)")
        near(s.accuracy_own_grader, own / k, name .. " " .. s.name .. " accuracy (own grader)")
      end
    end)
  elseif read(dir .. "/summary.json") and read(dir .. "/run.json") then
    T.test(name, function() error("summary.json and run.json without results.jsonl.gz") end)
  end
end
T.test("folders checked", function()
  T.ok(checked >= 20, "results folders with lines: " .. checked)
  T.ok(votes > 0, "votes checked: " .. votes)
end)
T.done()
