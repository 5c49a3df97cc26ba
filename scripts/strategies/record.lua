-- The record every strategy keeps: a model wrapped so that each call it makes (generate, sample, score, choose)
-- is written down with its prompt, options, output and tokens, plus every string the strategy injected. A strategy
-- builds one per item, calls the model through it, and returns `rec:result{...}`, so that any number in a results
-- table can be traced to the exact calls behind it.
--
--   local record = require "strategies.record"
--   local rec = record.new(model, {strategy = "echoic", item = item.id})
--   local r = rec:generate(prompt, {max_tokens = 64, temperature = 0})
--   local reminder = rec:inject("reminder", "Let me re-read the question.")
--   return rec:result{answer = lm.extract.number(r.text)}
local M = {}

local Recorder = {}
Recorder.__index = Recorder

-- A shallow copy of an options table without functions (on_token callbacks are not data).
local function plain(opts)
  if opts == nil then return nil end
  local out = {}
  for k, v in pairs(opts) do
    if type(v) ~= "function" then out[k] = v end
  end
  return out
end

--- Starts a record for one item: `labels` (strategy name, item id, condition...) are copied into the result.
function M.new(model, labels)
  if model == nil then error("record.new: no model (load one with lm.load, or start refrain with a model)", 2) end
  return setmetatable({
    model = model, labels = labels or {}, calls = {}, injected = {}, pending = {},
    tokens = {prompt = 0, completion = 0, cached = 0, scored = 0}, seconds = 0,
  }, Recorder)
end

-- Adds one call to the record and its tokens to the totals.
function Recorder:_add(call, results)
  for _, r in ipairs(results) do
    local u = r.usage
    if u then
      self.tokens.prompt = self.tokens.prompt + (u.prompt or 0)
      self.tokens.completion = self.tokens.completion + (u.completion or 0)
      self.tokens.cached = self.tokens.cached + (u.cached or 0)
    end
    self.seconds = self.seconds + (r.seconds or 0)
  end
  call.index = #self.calls + 1
  self.calls[#self.calls + 1] = call
  return call
end

-- Calls f(...) with the strings injected since the last call attached to it in the run store (lm.store's
-- `injected` label), so that `refrain log` shows which call carried which injected text.
function Recorder:_call(f, ...)
  if #self.pending == 0 or not (lm and lm.store) then return f(...) end
  local pending = self.pending
  self.pending = {}
  return lm.store.with({injected = pending}, f, ...)
end

local function output(r)
  return {text = r.text, ids = r.ids, finish = r.finish, usage = r.usage, logprobs = r.logprobs}
end

--- `model:generate` through the record.
function Recorder:generate(prompt, opts)
  local r = self:_call(self.model.generate, self.model, prompt, opts)
  self:_add({kind = "generate", prompt = prompt, opts = plain(opts), outputs = {output(r)}}, {r})
  return r
end

--- `model:sample` through the record (n results, prompt evaluated once).
function Recorder:sample(prompt, n, opts)
  local rs = self:_call(self.model.sample, self.model, prompt, n, opts)
  local outs = {}
  for i, r in ipairs(rs) do outs[i] = output(r) end
  -- The prompt is evaluated once: count its tokens once, not n times.
  local shared = {}
  for i, r in ipairs(rs) do
    shared[i] = {usage = {prompt = i == 1 and r.usage.prompt or 0, completion = r.usage.completion,
                          cached = i == 1 and r.usage.cached or 0}, seconds = i == 1 and r.seconds or 0}
  end
  self:_add({kind = "sample", prompt = prompt, n = n, opts = plain(opts), outputs = outs}, shared)
  return rs
end

--- `model:score` through the record; scored tokens are counted apart from generated ones.
function Recorder:score(prefix, continuation)
  local s = self:_call(self.model.score, self.model, prefix, continuation)
  self.tokens.scored = self.tokens.scored + #(s.ids or s.logprobs)
  self:_add({kind = "score", prompt = prefix, continuation = continuation,
             outputs = {{sum = s.sum, mean = s.mean, ids = s.ids, logprobs = s.logprobs}}}, {})
  return s
end

--- `model:choose` through the record.
function Recorder:choose(prefix, options, opts)
  local best, scores, index = self:_call(self.model.choose, self.model, prefix, options, opts)
  for _, s in ipairs(scores) do self.tokens.scored = self.tokens.scored + #(s.ids or s.logprobs) end
  local outs = {}
  for i, s in ipairs(scores) do outs[i] = {option = s.option, score = s.score, sum = s.sum, mean = s.mean} end
  self:_add({kind = "choose", prompt = prefix, options = options, opts = plain(opts), outputs = outs,
             chosen = index}, {})
  return best, scores, index
end

--- Notes a string the strategy put into a prompt (a reminder, a stimulus, feedback) and returns it unchanged.
function Recorder:inject(label, text)
  self.injected[#self.injected + 1] = {label = label, text = text, call = #self.calls + 1}
  self.pending[#self.pending + 1] = text
  return text
end

--- The strategy's result: `fields` (answer, correct, ...) plus labels, calls, injected strings and token totals.
function Recorder:result(fields)
  local r = {}
  for k, v in pairs(self.labels) do r[k] = v end
  for k, v in pairs(fields or {}) do r[k] = v end
  r.calls, r.injected, r.seconds = self.calls, self.injected, self.seconds
  r.tokens = {prompt = self.tokens.prompt, completion = self.tokens.completion, cached = self.tokens.cached,
              scored = self.tokens.scored, calls = #self.calls}
  return r
end

--- A strategy's options: its `defaults`, then `opts` over them, with `opts.phrases` resolved against the
--- module's own `phrases` (see below).
function M.settings(defaults, phrases, opts)
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  o.phrases = M.phrases(phrases, opts and opts.phrases)
  return o
end

--- Phrases a strategy injects: its own defaults, replaced key by key from `override` (a table, or the path of a
--- Lua file returning one), so that a paper's exact strings are one option away.
function M.phrases(defaults, override)
  if override == nil then return defaults end
  if type(override) == "string" then
    local chunk, err = loadfile(override, "t", {})
    if not chunk then error("phrases: " .. err, 2) end
    local ok, t = pcall(chunk)
    if not ok then error("phrases: " .. override .. ": " .. tostring(t), 2) end
    if type(t) ~= "table" then error("phrases: " .. override .. " must return a table, got " .. type(t), 2) end
    override = t
  end
  if type(override) ~= "table" then error("phrases: expected a table or a file path, got " .. type(override), 2) end
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(override) do
    if defaults[k] == nil then error("phrases: unknown key '" .. tostring(k) .. "'", 2) end
    out[k] = v
  end
  return out
end

return M
