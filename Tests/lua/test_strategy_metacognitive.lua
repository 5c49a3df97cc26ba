-- strategies/metacognitive.lua: the shipped handbook, behavior extraction and deduplication, retrieval by topic and
-- by similarity on known inputs, and on the default model the calls of behavior-conditioned answering and of
-- self-improvement against critique-and-revise at equal budget.
local here = arg[0]:match("(.*/)") or "./"
local T = dofile(here .. "check.lua")
local mc = require "strategies.metacognitive"
local m = lm.model

local function last_int(text) local x; for n in text:gmatch("%-?%d+") do x = n end; return x end
local function same(p, g) return tonumber(p) == tonumber(g) end
local ITEM = {id = "m1", question = "Tom has 5 apples and buys 3 more. How many apples does he have now?", answer = "8"}
local O = {extract = last_int, verify = same, max_tokens = 16}

T.test("the arithmetic handbook: named one-line behaviors with topics", function()
  local hb = mc.load("arithmetic")
  T.ok(#hb.behaviors >= 10, #hb.behaviors .. " behaviors")
  local names = {}
  for _, b in ipairs(hb.behaviors) do
    T.ok(b.name:match("^behavior_[a-z_]+$"), b.name); T.eq(names[b.name], nil, b.name); names[b.name] = true
    T.ok(not b.instruction:find("\n") and #b.instruction > 10, b.name)
    T.ok(#b.topics > 0, b.name)
  end
  T.ok(names.behavior_translate_verbal_to_equation)
  T.err(function() mc.load("nonesuch") end, "no handbook 'nonesuch'")
end)

T.test("behavior lines extracted from a text", function()
  local bs = mc.extract_behaviors("Here:\n**behavior_Check_Units**: convert first.\n- behavior_add - add them  \n" ..
                                  "behavior_empty:\nnot a behavior: no\n1. behavior_x_y: do x then y\n" ..
                                  "Behavior_Short_Name: Calculate the total first.\nBehavior: not this form")
  T.eq(#bs, 3)
  T.eq(bs[1].name, "behavior_check_units"); T.eq(bs[1].instruction, "convert first.")
  T.eq(bs[2].name, "behavior_add"); T.eq(bs[2].instruction, "add them")
  T.eq(bs[3].name, "behavior_x_y"); T.eq(bs[3].instruction, "do x then y")
  -- Qwen's reflections often capitalise the prefix: on 14 of 100 GSM8K items those were the only behavior lines.
  local caps = mc.extract_behaviors("Behavior_Sum_Parts: Calculate the total first.")
  T.eq(#caps, 1); T.eq(caps[1].name, "behavior_sum_parts"); T.eq(caps[1].instruction, "Calculate the total first.")
end)

T.test("a placeholder or the prompt's own example is a copy, not a behavior", function()
  -- The old reflect phrase's placeholder, in any case: 18 of Qwen's 19 GSM8K reflections with behaviors named it.
  local bs, copies = mc.extract_behaviors("Behavior_Short_Name: Calculate the total first.\nbehavior_name: add\n" ..
                                          "behavior_short_names: a real name that only starts like one")
  T.eq(#bs, 1); T.eq(bs[1].name, "behavior_short_names"); T.eq(copies, 2)
  -- The reflect phrase shows the format with a behavior of another task, and holds no placeholder.
  local reflect = mc.phrases.reflect:lower()
  for _, name in ipairs(mc.placeholders) do T.ok(not reflect:find(name, 1, true), name) end
  T.ok(reflect:find("behavior_read_aloud: ", 1, true), "an example line of the asked-for form")
  -- Its example, copied back, is a copy; the names of another prompt are not.
  local text = "- behavior_read_aloud: Read each sentence aloud to hear its mistakes.\n- behavior_sell_eggs: Sell the rest."
  bs, copies = mc.extract_behaviors(text, mc.phrases.reflect)
  T.eq(#bs, 1); T.eq(bs[1].name, "behavior_sell_eggs"); T.eq(copies, 1)
  T.eq(#mc.extract_behaviors(text, "Write lines like behavior_check: Check it."), 2)
  T.eq(select(2, mc.extract_behaviors(mc.phrases.reflect, mc.phrases.reflect)), 1)
  -- Phrases of one's own (opts.phrases.reflect): their example is the copy.
  T.eq(select(2, mc.extract_behaviors("behavior_sort_first: Sort it.", "e.g. behavior_sort_first: Sort it.")), 1)
end)

T.test("retrieval by topic and by lexical similarity", function()
  T.eq(table.concat(mc.topics_of(ITEM.question), ","), "addition,word problem")
  T.eq(table.concat(mc.topics_of("Split 12 cookies equally among 3 kids; each gets what share?"), ","),
       "division,multiplication,word problem")
  local hb = {behaviors = {
    {name = "behavior_a", instruction = "x", topics = {"division"}},
    {name = "behavior_b", instruction = "x", topics = {"addition", "word problem"}},
    {name = "behavior_c", instruction = "x", topics = {"word problem"}},
    {name = "behavior_d", instruction = "x", topics = {"percent"}},
  }}
  local got = {}
  for i, b in ipairs(mc.retrieve(hb, ITEM, {k = 3})) do got[i] = b.name end
  T.eq(table.concat(got, ","), "behavior_b,behavior_c", "two topics first, then one; no zero scores")
  T.eq(#mc.retrieve(hb, {question = "q", topics = {"percent", "division"}}, {k = 1}), 1)
  T.eq(mc.retrieve(hb, {question = "q", topics = {"percent", "division"}}, {k = 1})[1].name, "behavior_a", "ties keep order")
  T.eq(mc.similarity("Convert the units first", "convert units"), 2 / 3)   -- {convert, units, first} and {convert, units}
  T.eq(mc.similarity("the and", "for"), 0)
  local real = mc.retrieve(mc.load("arithmetic"), {question = "What is 20 percent of 50 dollars?"}, {by = "similarity", k = 1})
  T.eq(real[1].name, "behavior_percent_as_fraction")
  T.err(function() mc.retrieve(hb, ITEM, {by = "embedding"}) end, "by must be 'topic' or 'similarity'")
end)

T.test("build: solve and reflect per item, behaviors deduplicated by name and instruction, topics merged", function()
  -- A stand-in model whose reflections are known, so the handbook that comes out can be checked exactly.
  local reflections = {"behavior_sum_up: Add the parts.\nbehavior_check: Check the result.\n" ..
                       "behavior_read_aloud: Read each sentence aloud to hear its mistakes.",
                       "behavior_sum_up: Add all the parts.\nbehavior_verify: check the result!\n" ..
                       "Behavior_short_name: one-line instruction"}
  local n = 0
  local stub = {generate = function(_, msgs)
    n = n + 1
    local text = n % 2 == 1 and "The answer is 8." or reflections[n // 2]
    return {text = text, usage = {prompt = 10, completion = 5, cached = 0}, seconds = 0}
  end}
  local hb, recs = mc.build(stub, {{id = 1, question = "He buys 3 more.", topics = {"addition"}},
                                   {id = 2, question = "Split them equally."}}, {extract = last_int, verify = same})
  T.eq(#recs, 2); T.eq(recs[1].tokens.calls, 2); T.eq(recs[1].found, 2); T.eq(recs[1].copies, 1)
  T.eq(recs[2].found, 2); T.eq(recs[2].copies, 1)
  T.eq(recs[1].calls[2].prompt[3].content, mc.phrases.reflect)
  T.eq(#hb.behaviors, 2)
  T.eq(hb.behaviors[1].name, "behavior_sum_up"); T.eq(hb.behaviors[1].instruction, "Add the parts.")
  T.eq(table.concat(hb.behaviors[1].topics, ","), "addition,division,word problem")
  T.eq(hb.behaviors[2].name, "behavior_check"); T.eq(table.concat(hb.behaviors[2].topics, ","), "addition,division,word problem")
  local path = os.tmpname()
  mc.save(hb, path)
  local back = mc.load(path)
  os.remove(path)
  T.eq(#back.behaviors, 2); T.eq(back.behaviors[2].instruction, "Check the result.")
  T.eq(back.behaviors[1].topics[3], "word problem")
  local jpath = os.tmpname() .. ".json"
  local f = assert(io.open(jpath, "w")); f:write(lm.json.encode(hb)); f:close()
  local j = mc.load(jpath)
  os.remove(jpath)
  T.eq(#j.behaviors, 2); T.eq(j.behaviors[1].name, "behavior_sum_up"); T.eq(j.behaviors[1].topics[1], "addition")
end)

T.test("behavior-conditioned answering: K behaviors before the problem, a request to cite them, one call", function()
  local r = mc.conditioned(m, ITEM, {extract = last_int, verify = same, max_tokens = 16, k = 2})
  T.eq(r.tokens.calls, 1); T.eq(r.tokens.completion, r.answer_tokens)
  T.eq(table.concat(r.behaviors, ","), "behavior_pick_operation_from_words,behavior_translate_verbal_to_equation")
  local block = r.injected[1].text
  T.eq(r.injected[1].label, "behaviors")
  T.eq(select(2, block:gsub("\nbehavior_", "")), 2)
  T.ok(block:find(mc.phrases.cite, 1, true))
  local prompt = r.calls[1].prompt[1].content
  T.ok(prompt:find(block, 1, true) == 1 and prompt:find(ITEM.question, 1, true) > #block, "behaviors come first")
  for _, name in ipairs(r.cited) do T.ok(r.text:lower():find(name, 1, true), name) end
  T.eq(r.answer, last_int(r.text))
  local after = mc.conditioned(m, ITEM, {extract = last_int, verify = same, max_tokens = 4, k = 2, place = "after"})
  T.eq(after.calls[1].prompt[1].content, ITEM.question .. " " .. mc.phrases.instruction .. "\n\n" .. block)
  local sys = mc.conditioned(m, ITEM, {extract = last_int, verify = same, max_tokens = 4, k = 2, place = "system"})
  T.eq(#sys.calls[1].prompt, 2); T.eq(sys.calls[1].prompt[1].role, "system"); T.eq(sys.calls[1].prompt[1].content, block)
  T.eq(sys.calls[1].prompt[2].content, ITEM.question .. " " .. mc.phrases.instruction)
  local ok, err = pcall(mc.conditioned, m, ITEM, {place = "middle"})
  T.ok(not ok and err:find('place must be "before", "after" or "system", not "middle"', 1, true), err)
  local p = mc.plain(m, ITEM, O)
  T.eq(p.tokens.calls, 1); T.eq(p.calls[1].prompt[1].content, ITEM.question .. " " .. mc.phrases.instruction)
  T.eq(p.calls[1].opts.max_tokens, 16)
end)

-- `text` with every occurrence of `part` taken out (plain text, not a pattern).
local function without(text, part)
  local out, i = {}, 1
  while true do
    local a, b = text:find(part, i, true)
    if not a then out[#out + 1] = text:sub(i); return table.concat(out) end
    out[#out + 1] = text:sub(i, a - 1); i = b + 1
  end
end

T.test("the system arm's control: its system message less the behaviors; or an empty one", function()
  local sys = mc.conditioned(m, ITEM, {extract = last_int, verify = same, max_tokens = 4, k = 2, place = "system"})
  local ctl = mc.system_control(m, ITEM, {extract = last_int, verify = same, max_tokens = 4, k = 2})
  T.eq(ctl.tokens.calls, 1); T.eq(#ctl.calls[1].prompt, 2); T.eq(#ctl.behaviors, 0)
  T.eq(ctl.calls[1].prompt[1].role, "system"); T.eq(ctl.calls[1].prompt[2].role, "user")
  T.eq(ctl.calls[1].prompt[1].content, mc.phrases.handbook_intro .. "\n" .. mc.phrases.cite)
  T.eq(ctl.calls[1].prompt[2].content, sys.calls[1].prompt[2].content, "the same user turn")
  T.eq(ctl.calls[1].opts.max_tokens, sys.calls[1].opts.max_tokens)
  -- The rendered prompts differ by the behavior lines alone.
  local lines = ""
  for _, name in ipairs(sys.behaviors) do
    for _, b in ipairs(mc.load("arithmetic").behaviors) do
      if b.name == name then lines = lines .. b.name .. ": " .. b.instruction .. "\n" end
    end
  end
  T.eq(select(2, lines:gsub("\n", "")), 2)
  local sys_text, ctl_text = m:template(sys.calls[1].prompt), m:template(ctl.calls[1].prompt)
  T.ok(sys_text:find(lines, 1, true), "the behavior lines are in the system arm's prompt")
  T.eq(without(sys_text, lines), ctl_text)
  T.eq(ctl.injected[1].label, "framing")
  -- framing = false: an empty system message, which differs from plain's prompt by the default system message only.
  local empty = mc.system_control(m, ITEM, {extract = last_int, verify = same, max_tokens = 4, framing = false})
  T.eq(empty.calls[1].prompt[1].role, "system"); T.eq(empty.calls[1].prompt[1].content, "")
  T.eq(empty.calls[1].prompt[2].content, sys.calls[1].prompt[2].content)
  T.eq(without(sys_text, sys.calls[1].prompt[1].content), m:template(empty.calls[1].prompt))
  local p = mc.plain(m, ITEM, O)
  T.ok(m:template(p.calls[1].prompt) ~= m:template(empty.calls[1].prompt), "the template's default system message is gone")
  T.eq(mc.strategies.system_control, mc.system_control)
end)

T.test("self-improvement and critique-and-revise: three calls each, same options, tokens counted", function()
  local s, c = mc.self_improve(m, ITEM, O), mc.critique_revise(m, ITEM, O)
  T.eq(s.tokens.calls, 3); T.eq(c.tokens.calls, 3)
  for i = 1, 3 do
    T.eq(s.calls[i].opts.max_tokens, c.calls[i].opts.max_tokens); T.eq(s.calls[i].opts.seed, c.calls[i].opts.seed)
  end
  T.eq(s.calls[1].outputs[1].text, c.calls[1].outputs[1].text, "the same first attempt (greedy)")
  T.eq(s.calls[2].prompt[3].content, mc.phrases.reflect)
  local distinct = {}
  local extracted, copies = mc.extract_behaviors(s.calls[2].outputs[1].text, mc.phrases.reflect)
  for _, b in ipairs(extracted) do distinct[b.name] = true end
  T.eq(s.copies, copies)
  local k = 0
  for _ in pairs(distinct) do k = k + 1 end
  T.eq(s.behaviors_found, k, "the distinct behaviors of the reflection")
  T.eq(s.injected[#s.injected].label, k > 0 and "behaviors" or "reflect")
  T.eq(#s.calls[3].prompt, 1, "the second attempt sees the behaviors, not the first attempt")
  T.eq(c.calls[2].prompt[3].content, mc.phrases.critique)
  T.eq(#c.calls[3].prompt, 5)
  T.eq(c.calls[3].prompt[4].content, c.calls[2].outputs[1].text); T.eq(c.calls[3].prompt[5].content, mc.phrases.revise)
  for _, r in ipairs({s, c}) do
    local sum = 0
    for _, call in ipairs(r.calls) do sum = sum + call.outputs[1].usage.completion end
    T.eq(r.tokens.completion, sum); T.eq(r.answer_tokens, r.calls[3].outputs[1].usage.completion)
  end
end)

T.done()
