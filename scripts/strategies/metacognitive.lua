-- Metacognitive reuse: a handbook of behaviors. Imitates "Metacognitive Reuse: Turning Recurring LLM Reasoning
-- Into Concise Behaviors" (no public code). A behavior is a name (behavior_translate_verbal_to_equation), a
-- one-line instruction and the topics it serves.
--
--   build        solve a problem, reflect on the trace, extract "behavior_name: instruction" lines (a name copied
--                from a placeholder or from the reflect phrase's example is not a behavior), deduplicate into a
--                handbook keyed by topic (M.build), or load a written one (M.load("arithmetic"))
--   retrieve     K behaviors by topic (the item's topics, or topics read from keywords of the question) or by
--                similarity (a simple lexical one: Jaccard overlap of content words; no embeddings)
--   conditioned  the K behaviors with the problem (before it, after it or as the system message), the model
--                asked to cite the ones it uses; baseline: `plain`
--                (the problem alone) with the same max_tokens, reporting tokens next to accuracy; the system
--                placement's control: `system_control` (its system message without the behaviors)
--   self_improve behaviors extracted from the model's own first attempt guide a second attempt (3 calls);
--                baseline: critique_revise (attempt, critique, revision: 3 calls, same max_tokens per call)
--
-- The prompts are this project's own text; opts.phrases loads others. Every result reports tokens spent
-- (`tokens`, from the record) and `answer_tokens`, the completion tokens of the call that gave the answer.
local record = require "strategies.record"
local answers = require "strategies.answers"

local M = {}
M.paper = "Metacognitive Reuse: Turning Recurring LLM Reasoning Into Concise Behaviors"

M.phrases = {
  instruction = "Give the final answer as a number.",
  handbook_intro = "Useful behaviors for this kind of problem:",
  cite = "Use the behaviors that help, and name each behavior you use.",
  -- The format is shown by a behavior of another task, not by a placeholder: asked for lines "of the form
  -- behavior_short_name: one-line instruction", Qwen2.5-Coder-0.5B named the behavior `behavior_short_name` in 18 of
  -- the 19 GSM8K reflections that held one. It copies the example out too; extract_behaviors drops the prompt's names.
  reflect = "Reflect on your solution above. Write each reusable step it used on a line of its own: a name that " ..
            "starts with behavior_ and says what the step does, a colon, and a one-line instruction. For example, " ..
            "a step from proofreading an essay would be written as: behavior_read_aloud: Read each sentence aloud " ..
            "to hear its mistakes.",
  critique = "Critique your solution above: point out any mistake in it.",
  revise = "Using the critique, write a corrected solution. Give the final answer as a number.",
}

-- Keywords that mark a topic in a question, for retrieval by topic when an item names none.
M.keywords = {
  addition = {"more", "total", "altogether", "sum", "plus", "together", "buys", "adds"},
  subtraction = {"left", "remain", "fewer", "less", "gives away", "spends", "loses", "eats", "sells"},
  multiplication = {"each", "times", "every", "per", "twice"},
  division = {"split", "share", "equally", "divide", "half", "among"},
  percent = {"%", "percent"},
  units = {"minutes", "hours", "cents", "meters", "grams"},
}

--- Loads a handbook: a name under strategies/handbooks ("arithmetic"), the path of a Lua file returning
--- {behaviors = {{name=, instruction=, topics={...}}, ...}}, or the path of a JSON file holding the same.
function M.load(name_or_path)
  local path = name_or_path
  if not path:find("/") and not path:find("%.lua$") and not path:find("%.json$") then
    local found, err = package.searchpath("strategies.handbooks." .. path, package.path)
    if not found then error("metacognitive.load: no handbook '" .. path .. "':" .. err, 2) end
    path = found
  end
  local hb
  if path:find("%.json$") then
    local f, err = io.open(path)
    if not f then error("metacognitive.load: " .. err, 2) end
    hb = lm.json.decode(f:read("a"))
    f:close()
  else
    local chunk, err = loadfile(path, "t", {})
    if not chunk then error("metacognitive.load: " .. err, 2) end
    hb = chunk()
  end
  if type(hb) ~= "table" or type(hb.behaviors) ~= "table" then
    error("metacognitive.load: " .. path .. " must hold {behaviors = {...}}", 2)
  end
  return hb
end

--- Writes a handbook as a Lua file that M.load reads back.
function M.save(handbook, path)
  local f = assert(io.open(path, "w"))
  f:write("return {\n  name = ", string.format("%q", handbook.name or "built"), ",\n  behaviors = {\n")
  for _, b in ipairs(handbook.behaviors) do
    local topics = {}
    for i, t in ipairs(b.topics or {}) do topics[i] = string.format("%q", t) end
    f:write(string.format("    {name = %q, instruction = %q, topics = {%s}},\n", b.name, b.instruction,
                          table.concat(topics, ", ")))
  end
  f:write("  },\n}\n")
  f:close()
end

-- Names that stand for "a name" rather than naming a behavior (the placeholder of an earlier reflect phrase, and the
-- like): a reflection that copies one has not written a behavior.
M.placeholders = {"behavior_short_name", "behavior_name"}

--- The "behavior_name: instruction" lines of a text, as {name=, instruction=} (names lower-cased; the prefix in
--- any case, since models write "Behavior_name:" at the start of a line). A line named after one of M.placeholders,
--- or after a behavior_ name in `asked` (the prompt that asked for the lines: its example), is a copy, not a
--- behavior: it is left out, and the second result counts such lines.
function M.extract_behaviors(text, asked)
  local copied = {}
  for _, name in ipairs(M.placeholders) do copied[name] = true end
  for name in (asked or ""):lower():gmatch("behavior_[%w_]+") do copied[name] = true end
  local out, copies = {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local name, instruction = line:match("([Bb][Ee][Hh][Aa][Vv][Ii][Oo][Rr]_[%w_]+)%**%s*[:%-]%s*(.-)%s*$")
    if name and instruction ~= "" then
      name = name:lower()
      if copied[name] then copies = copies + 1 else out[#out + 1] = {name = name, instruction = instruction} end
    end
  end
  return out, copies
end

--- The topics of a question read from M.keywords, plus "word problem".
function M.topics_of(question)
  local q, out = question:lower(), {"word problem"}
  for topic, words in pairs(M.keywords) do
    for _, w in ipairs(words) do
      if q:find(w, 1, true) then out[#out + 1] = topic; break end
    end
  end
  table.sort(out)
  return out
end

-- Content words of a text (lower case, three letters or more, behavior_ names split on underscores).
local STOP = {the = true, ["and"] = true, ["for"] = true, with = true, ["how"] = true, many = true, does = true,
              ["are"] = true, each = false, this = true, that = true, from = true, into = true, ["its"] = true}
local function words(text)
  local set = {}
  for w in text:lower():gsub("_", " "):gmatch("%a+") do
    if #w >= 3 and not STOP[w] then set[w] = true end
  end
  return set
end

--- Lexical similarity of two texts: the Jaccard overlap of their content-word sets (0 to 1).
function M.similarity(a, b)
  local A, B, inter, union = words(a), words(b), 0, 0
  for w in pairs(A) do union = union + 1; if B[w] then inter = inter + 1 end end
  for w in pairs(B) do if not A[w] then union = union + 1 end end
  return union > 0 and inter / union or 0
end

--- K behaviors of the handbook for an item: by = "topic" (shared topics with item.topics or the question's
--- keyword topics) or "similarity" (M.similarity of the question with name and instruction). Ties keep the
--- handbook's order; behaviors scoring 0 are not returned.
function M.retrieve(handbook, item, opts)
  opts = opts or {}
  local k, by = opts.k or 3, opts.by or "topic"
  local scored = {}
  local topics = {}
  for _, t in ipairs(item.topics or M.topics_of(item.question)) do topics[t] = true end
  for i, b in ipairs(handbook.behaviors) do
    local s = 0
    if by == "topic" then
      for _, t in ipairs(b.topics or {}) do if topics[t] then s = s + 1 end end
    elseif by == "similarity" then
      s = M.similarity(item.question, b.name .. " " .. b.instruction)
    else error("metacognitive.retrieve: by must be 'topic' or 'similarity', got '" .. tostring(by) .. "'", 2) end
    if s > 0 then scored[#scored + 1] = {b = b, s = s, i = i} end
  end
  table.sort(scored, function(x, y) if x.s ~= y.s then return x.s > y.s end return x.i < y.i end)
  local out = {}
  for i = 1, math.min(k, #scored) do out[i] = scored[i].b end
  return out
end

-- The behaviors as the lines put before a problem.
local function behavior_block(P, behaviors)
  local lines = {P.handbook_intro}
  for _, b in ipairs(behaviors) do lines[#lines + 1] = b.name .. ": " .. b.instruction end
  lines[#lines + 1] = P.cite
  return table.concat(lines, "\n")
end

local function gen_opts(opts, step)
  return {max_tokens = opts.max_tokens or 128, temperature = opts.temperature or 0, seed = (opts.seed or 1) + step - 1}
end

-- Reads and checks an answer text; fills answer, correct, answer_tokens.
local function judge(out, r, item, opts)
  out.text = r.text
  out.answer = answers.extractor(opts, "number")(r.text)
  out.correct = out.answer ~= nil and answers.verifier(opts, "numeric")(out.answer, item.answer) or false
  out.answer_tokens = r.usage.completion
  return out
end

-- The names of `behaviors` that a text mentions.
local function cited(text, behaviors)
  local out, low = {}, text:lower()
  for _, b in ipairs(behaviors) do if low:find(b.name, 1, true) then out[#out + 1] = b.name end end
  return out
end

-- The messages of one answering call: the block before the problem in the user turn, after it, or as the system
-- message (which takes the place of the chat template's default one).
local function placed(place, block, problem)
  if place == "system" then return {{role = "system", content = block}, {role = "user", content = problem}} end
  if place == "after" then return {{role = "user", content = problem .. "\n\n" .. block}} end
  return {{role = "user", content = block .. "\n\n" .. problem}}
end

--- Behavior-conditioned answering: K retrieved behaviors (opts.handbook: a table or a name/path for M.load,
--- default "arithmetic"; opts.k, opts.by) given with the problem; the result lists the behaviors given and cited.
--- opts.place says where the behaviors go: "before" the problem in the user turn (the default), "after" it, or
--- "system", a system message of their own (which takes the place of the template's default one).
function M.conditioned(model, item, opts)
  opts = opts or {}
  local place = opts.place or "before"
  if place ~= "before" and place ~= "after" and place ~= "system" then
    error(("metacognitive.conditioned: place must be \"before\", \"after\" or \"system\", not %q"):format(
      tostring(place)), 2)
  end
  local P = record.phrases(M.phrases, opts.phrases)
  local hb = type(opts.handbook) == "table" and opts.handbook or M.load(opts.handbook or "arithmetic")
  local rec = record.new(model, {strategy = "metacognitive.conditioned", item = item.id})
  local behaviors = M.retrieve(hb, item, opts)
  local block = rec:inject("behaviors", behavior_block(P, behaviors))
  local problem = item.question .. " " .. rec:inject("instruction", P.instruction)
  local r = rec:generate(placed(place, block, problem), gen_opts(opts, 1))
  local out = judge({behaviors = {}}, r, item, opts)
  for i, b in ipairs(behaviors) do out.behaviors[i] = b.name end
  out.cited = cited(r.text, behaviors)
  return rec:result(out)
end

--- Baseline of `conditioned`: the problem alone, same options.
function M.plain(model, item, opts)
  opts = opts or {}
  local P = record.phrases(M.phrases, opts.phrases)
  local rec = record.new(model, {strategy = "metacognitive.plain", item = item.id})
  local r = rec:generate({{role = "user", content = item.question .. " " .. rec:inject("instruction", P.instruction)}},
                         gen_opts(opts, 1))
  return rec:result(judge({}, r, item, opts))
end

--- Control of conditioned{place="system"}: the same system message with no behavior in it, so that the two differ
--- by the behaviors alone. A system message of one's own drops the template's default one (Qwen's "You are Qwen,
--- created by Alibaba Cloud. You are a helpful assistant."), so `plain` against the system arm mixes two changes;
--- against this control the system arm measures the behaviors, and this control against `plain` measures the default
--- system message replaced by the framing (phrases.handbook_intro and phrases.cite). That framing then announces
--- behaviors that are not there; opts.framing = false gives an empty system message instead, which differs from
--- `plain` by the default system message alone (and from the system arm by framing and behaviors).
function M.system_control(model, item, opts)
  opts = opts or {}
  local P = record.phrases(M.phrases, opts.phrases)
  local rec = record.new(model, {strategy = "metacognitive.system_control", item = item.id})
  local block = opts.framing == false and "" or rec:inject("framing", behavior_block(P, {}))
  local problem = item.question .. " " .. rec:inject("instruction", P.instruction)
  local r = rec:generate(placed("system", block, problem), gen_opts(opts, 1))
  return rec:result(judge({behaviors = {}, cited = {}}, r, item, opts))
end

--- Behavior-guided self-improvement: attempt, reflection that writes behaviors, second attempt conditioned on
--- the behaviors found (none found: the second attempt gets the problem alone, and behaviors_found says 0).
--- `copies` counts the reflection's lines named after a placeholder or the reflect phrase's example (not used).
function M.self_improve(model, item, opts)
  opts = opts or {}
  local P = record.phrases(M.phrases, opts.phrases)
  local rec = record.new(model, {strategy = "metacognitive.self_improve", item = item.id})
  local ask = {role = "user", content = item.question .. " " .. rec:inject("instruction", P.instruction)}
  local first = rec:generate({ask}, gen_opts(opts, 1))
  local reflection = rec:generate({ask, {role = "assistant", content = first.text},
                                   {role = "user", content = rec:inject("reflect", P.reflect)}}, gen_opts(opts, 2))
  local found, seen = {}, {}
  local extracted, copies = M.extract_behaviors(reflection.text, P.reflect)
  for _, b in ipairs(extracted) do
    if not seen[b.name] then seen[b.name] = true; found[#found + 1] = b end
  end
  local prompt = item.question .. " " .. P.instruction
  if #found > 0 then prompt = rec:inject("behaviors", behavior_block(P, found)) .. "\n\n" .. prompt end
  local second = rec:generate({{role = "user", content = prompt}}, gen_opts(opts, 3))
  local out = judge({behaviors_found = #found, behaviors = found, copies = copies}, second, item, opts)
  out.first_answer = answers.extractor(opts, "number")(first.text)
  out.cited = cited(second.text, found)
  return rec:result(out)
end

--- Baseline of `self_improve` at equal budget: attempt, critique, revision (3 calls, same options).
function M.critique_revise(model, item, opts)
  opts = opts or {}
  local P = record.phrases(M.phrases, opts.phrases)
  local rec = record.new(model, {strategy = "metacognitive.critique_revise", item = item.id})
  local msgs = {{role = "user", content = item.question .. " " .. rec:inject("instruction", P.instruction)}}
  local first = rec:generate({table.unpack(msgs)}, gen_opts(opts, 1))
  msgs[#msgs + 1] = {role = "assistant", content = first.text}
  msgs[#msgs + 1] = {role = "user", content = rec:inject("critique", P.critique)}
  local critique = rec:generate({table.unpack(msgs)}, gen_opts(opts, 2))   -- copies: the record keeps prompts
  msgs[#msgs + 1] = {role = "assistant", content = critique.text}
  msgs[#msgs + 1] = {role = "user", content = rec:inject("revise", P.revise)}
  local revised = rec:generate(msgs, gen_opts(opts, 3))
  local out = judge({}, revised, item, opts)
  out.first_answer = answers.extractor(opts, "number")(first.text)
  return rec:result(out)
end

--- Builds a handbook from traces through the model: for each item, solve, reflect, extract behaviors; the same
--- name (or the same instruction) seen again adds its topics to the first entry. Topics: item.topics or the
--- question's keyword topics. Returns the handbook and the per-item records.
function M.build(model, items, opts)
  opts = opts or {}
  local P = record.phrases(M.phrases, opts.phrases)
  local hb, byname, byinstr, records = {name = opts.name or "built", behaviors = {}}, {}, {}, {}
  for _, item in ipairs(items) do
    local rec = record.new(model, {strategy = "metacognitive.build", item = item.id})
    local ask = {role = "user", content = item.question .. " " .. rec:inject("instruction", P.instruction)}
    local trace = rec:generate({ask}, gen_opts(opts, 1))
    local reflection = rec:generate({ask, {role = "assistant", content = trace.text},
                                     {role = "user", content = rec:inject("reflect", P.reflect)}}, gen_opts(opts, 2))
    local found, copies = M.extract_behaviors(reflection.text, P.reflect)
    for _, b in ipairs(found) do
      local key = b.instruction:lower():gsub("%W+", " ")
      local entry = byname[b.name] or byinstr[key]
      if not entry then
        entry = {name = b.name, instruction = b.instruction, topics = {}}
        hb.behaviors[#hb.behaviors + 1] = entry
        byname[b.name], byinstr[key] = entry, entry
      end
      for _, t in ipairs(item.topics or M.topics_of(item.question)) do
        local has = false
        for _, u in ipairs(entry.topics) do has = has or u == t end
        if not has then entry.topics[#entry.topics + 1] = t end
      end
    end
    records[#records + 1] = rec:result{found = #found, copies = copies}
  end
  return hb, records
end

M.strategies = {conditioned = M.conditioned, plain = M.plain, system_control = M.system_control,
                self_improve = M.self_improve, critique_revise = M.critique_revise}

return M
