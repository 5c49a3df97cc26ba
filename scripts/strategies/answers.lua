-- What the strategies share about answers: the extractor and verifier a strategy uses (the harness's lm.extract
-- and lm.verify, or the caller's opts.extract / opts.verify), and the majority vote over extracted answers.
local M = {}

--- The extractor: `opts.extract` (a function of the text, or the name of an lm.extract function: "number",
--- "final", "answer", "boxed", ...), else `lm.extract[kind]`.
function M.extractor(opts, kind)
  local want = opts and opts.extract or kind
  if type(want) == "function" then return want end
  local ex = type(want) == "string" and lm and lm.extract and lm.extract[want]
  if not ex then error("no lm.extract." .. tostring(want) .. ": pass extract = \"number\", \"final\", ... or a function(text)", 3) end
  return ex
end

--- The form answer_step = "number" holds the answer to: the phrase, then an integer of at most 15 digits or a
--- decimal with at most two places (bounded, so that a model cannot spend the step's tokens on zeros: once the
--- number is as long as it may be, the generation ends).
M.NUMBER_ANSWER = [[The answer is -?[0-9]{1,15}(\.[0-9]{1,2})?]]

--- The constrained answer step a strategy runs after its free reasoning (opts.answer_step): "number" holds the
--- answer to "The answer is <number>" (M.NUMBER_ANSWER); a table gives the constraint itself ({regex=}, {choices=},
--- {json_schema=} or {grammar=}); nil or "free" runs none. -> the constraint options, or nil.
function M.answer_constraint(step)
  if step == nil or step == false or step == "free" then return nil end
  if step == "number" then return {regex = M.NUMBER_ANSWER} end
  if type(step) ~= "table" then
    error(("answer_step must be \"number\", \"free\" or a table {regex=} / {choices=} / {json_schema=} / {grammar=}, got %s"):format(tostring(step)), 3)
  end
  local n = 0
  for k in pairs(step) do
    if k ~= "regex" and k ~= "choices" and k ~= "json_schema" and k ~= "grammar" then
      error("answer_step: unknown key '" .. tostring(k) .. "' (regex, choices, json_schema or grammar)", 3)
    end
    n = n + 1
  end
  if n ~= 1 then error("answer_step: give exactly one of regex, choices, json_schema and grammar", 3) end
  return step
end

--- A sample's text continued by its answer step's text (from a line break), as the strategies read it.
function M.with_step(text, step)
  return text .. (text:match("\n$") and "" or "\n") .. step
end

--- Runs the answer step after `text` (what the model wrote after `prompt`): the model goes on from a line break,
--- greedy, under `constraint`, for at most `tokens` tokens. The strategy's record keeps the call (and the
--- constraint as an injected string: it puts words in the model's mouth). -> the call's result (M.with_step joins
--- its text to `text`).
function M.answer_step(rec, prompt, text, constraint, tokens)
  local opts = {max_tokens = tokens, temperature = 0}
  for k, v in pairs(constraint) do opts[k] = v end
  rec:inject("answer_step", type(constraint.regex) == "string" and constraint.regex or lm.json.encode(constraint))
  return rec:generate(M.with_step(prompt .. text, ""), opts)
end

--- The verifier: `opts.verify` (a function of prediction and gold), else `lm.verify[kind]` ("numeric", ...).
function M.verifier(opts, kind)
  if opts and opts.verify then return opts.verify end
  local v = lm and lm.verify and lm.verify[kind]
  if not v then error("no lm.verify." .. kind .. ": pass opts.verify = function(pred, gold) ... end", 3) end
  return v
end

--- The key two answers share when they are the same answer: numbers by value ("12.0", "12" and "1,2" with its
--- thousands comma gone), other text trimmed and lowercased; nil, false and blank text have none.
function M.key(a)
  if a == nil or a == false then return nil end
  local s = tostring(a):gsub("^%s+", ""):gsub("%s+$", "")
  local n = tonumber((s:gsub(",", "")))
  if n then return string.format("%.12g", n) end
  if s == "" then return nil end
  return s:lower()
end

--- The most frequent answer among the first `n` of `answers` (n defaults to answers.n or #answers; nils and
--- falses do not vote); a tie goes to the answer that came first. Returns the answer (as first seen), its count,
--- the number of votes cast and the counts by key.
function M.majority(answers, n)
  local counts, first, order, votes = {}, {}, {}, 0
  for i = 1, n or answers.n or #answers do
    local k = M.key(answers[i])
    if k then
      votes = votes + 1
      if not counts[k] then counts[k], first[k], order[#order + 1] = 0, answers[i], k end
      counts[k] = counts[k] + 1
    end
  end
  local best
  for _, k in ipairs(order) do
    if best == nil or counts[k] > counts[best] then best = k end
  end
  if best == nil then return nil, 0, 0, counts end
  return first[best], counts[best], votes, counts
end

return M
