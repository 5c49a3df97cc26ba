-- What the strategies share about answers: the extractor and verifier a strategy uses (the harness's lm.extract
-- and lm.verify, or the caller's opts.extract / opts.verify), and the majority vote over extracted answers.
local M = {}

--- The extractor: `opts.extract` (a function of the text), else `lm.extract[kind]` ("number", "boxed", ...).
function M.extractor(opts, kind)
  if opts and opts.extract then return opts.extract end
  local ex = lm and lm.extract and lm.extract[kind]
  if not ex then error("no lm.extract." .. kind .. ": pass opts.extract = function(text) ... end", 3) end
  return ex
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
