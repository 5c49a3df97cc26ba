-- lm.remote: a model served by an OpenAI-compatible server (vLLM, llama.cpp's server, SGLang, refrain serve),
-- used as a local model is: m:generate, m:sample, m:score, m:choose, m:template, m:tokenize, m:detokenize and
-- m:token return the tables the local methods return. Generation goes to /v1/completions (a prompt string or token
-- ids) or /v1/chat/completions (messages); scoring to /v1/completions with echo and logprobs; tokenize,
-- detokenize and template to llama.cpp's /tokenize, /detokenize and /apply-template (vLLM's /tokenize too). What
-- the protocol cannot give (attention, hidden states, the logit lens, states; entropy) is an error naming the
-- capability, never an approximation. Requests go through lm.http (time-out, retries with backoff, concurrency,
-- the API key from an environment variable), and every call is written to the run store.
local lm = require "lm"
local json = require "lm.json"
local choice = require "lm.choice"
local http, record_call = lm.http, lm._record_call
lm._record_call = nil

local Remote = {}
Remote.__index = Remote
Remote.__name = "lm.remote"
Remote.__tostring = function(self)
  local more = #self.urls > 1 and (" (and %d more replicas)"):format(#self.urls - 1) or ""
  return ("remote model: %s at %s%s"):format(self.model, self.url, more)
end

-- The options generate and sample take: lm.options, the schema the local model checks them by (types, ranges,
-- and which options only a local model has).
local OPTIONS = lm.options

-- The number's text in messages (1, not 1.0).
local function show(x)
  if math.type(x) == "float" and x == math.floor(x) and math.abs(x) < 1e15 then return ("%d"):format(x) end
  return tostring(x)
end

-- "must be ..." when v is out of the option's range, else nil.
local function out_of_range(spec, v)
  if type(v) ~= "number" then return nil end
  local lo, hi = spec.min, spec.max
  local ok = v == v and (lo == nil or (spec.above and v > lo) or (not spec.above and v >= lo)) and (hi == nil or v <= hi)
  if ok then return nil end
  local range = (lo and hi) and ("between %s and %s"):format(show(lo), show(hi))
    or lo and (spec.above and "greater than " or "at least ") .. show(lo) or "at most " .. show(hi)
  return ("must be %s, got %s"):format(range, show(v))
end

local function check_self(self, name)
  if getmetatable(self) ~= Remote then
    error(("remote:%s: call it as a method (m:%s(...)), on a model lm.remote made"):format(name, name), 3)
  end
end

-- lm.defaults, then `opts`, checked by name and type.
local function resolve(self, fname, opts)
  local o = {}
  for i, t in ipairs({lm.defaults or {}, opts or {}}) do
    if type(t) ~= "table" then error(("%s: options must be a table, got %s"):format(fname, type(t)), 3) end
    for k, v in pairs(t) do
      local spec = OPTIONS[k]
      if not spec then error(("%s: unknown option '%s'"):format(fname, tostring(k)), 3) end
      local kind = spec.type
      local ok = (kind == "integer" and math.type(v) == "integer") or (kind == "number" and type(v) == "number")
        or (kind == "boolean" and type(v) == "boolean") or (kind == "function" and type(v) == "function")
        or (kind == "strings" and (type(v) == "string" or type(v) == "table")) or (kind == "text" and type(v) == "string")
        or (kind == "json" and (type(v) == "string" or type(v) == "table"))
      if not ok then error(("%s: option '%s' must be a%s %s, got %s"):format(fname, k, kind == "integer" and "n" or "", kind, type(v)), 3) end
      local bad = out_of_range(spec, v)
      if bad then error(("%s: option '%s' %s"):format(fname, k, bad), 3) end
      -- An option that is off (an empty list or string, as lm.defaults holds choices, or false) asks nothing of
      -- the server.
      local off = (type(v) == "table" and next(v) == nil) or v == "" or v == false
      if spec.local_only and not off then
        error(("%s: %s is not available on the remote backend (%s): only a local model has it"):format(fname, k, self.url), 3)
      end
      if not (spec.local_only and off) then o[k] = v end
    end
  end
  return o
end

-- The sampling fields of a request body (the server's names; llama.cpp's and vLLM's where OpenAI has none).
local function sampling(self, o, seed)
  local b = {model = self.model, max_tokens = o.max_tokens or 128, temperature = o.temperature, top_p = o.top_p,
             top_k = o.top_k, min_p = o.min_p, seed = seed, return_token_ids = true}
  -- Always sent: llama.cpp's server penalises repeats by default (1.1), the local model does not.
  b.repetition_penalty, b.repeat_penalty = o.repeat_penalty or 1, o.repeat_penalty or 1
  local penalised = b.repeat_penalty ~= 1
  if (o.presence_penalty or 0) ~= 0 then b.presence_penalty, penalised = o.presence_penalty, true end
  if (o.frequency_penalty or 0) ~= 0 then b.frequency_penalty, penalised = o.frequency_penalty, true end
  if penalised and o.repeat_last_n then b.repeat_last_n = o.repeat_last_n end
  local stop = type(o.stop) == "string" and {o.stop} or o.stop
  if stop and #stop > 0 then b.stop = stop end
  if o.ignore_eos then b.ignore_eos = true end
  return b
end

-- Constraints (grammar, regex, choices, json_schema), sent the way the server names them. `self.server` is the
-- server's dialect: "llama.cpp" (its own server and llama-cpp-python's: the GBNF grammar lm.grammar gives, the
-- same one the local model matches, in `grammar`), "vllm" (guided_regex, guided_choice, guided_json,
-- guided_grammar), "refrain" (its own fields), "openai" (only json_schema, as response_format).
local CONSTRAINTS = {"grammar", "regex", "choices", "json_schema"}
local SENT_AS = {
  ["llama.cpp"] = {grammar = "grammar", regex = "grammar", choices = "grammar", json_schema = "grammar"},
  vllm = {grammar = "guided_grammar", regex = "guided_regex", choices = "guided_choice", json_schema = "guided_json"},
  refrain = {grammar = "grammar", regex = "regex", choices = "choices", json_schema = "json_schema"},
  openai = {json_schema = "response_format"},
}

-- The constraint in `o` (at most one; lm.grammar checks it as the local model would), or nil.
local function constraint_of(o)
  local c = {}
  for _, k in ipairs(CONSTRAINTS) do
    local v = o[k]
    if v ~= nil and v ~= "" and not (type(v) == "table" and next(v) == nil) then c[k] = v end
  end
  if next(c) == nil then return nil end
  return c
end

-- Adds the constraint of `o` to a request body, or raises naming what the server lacks.
local function constrain(self, fname, o, body)
  local c = constraint_of(o)
  if not c then return nil end
  local ok, grammar, schema = pcall(lm.grammar, c)
  if not ok then error(("%s: %s"):format(fname, tostring(grammar):gsub("^lm%.grammar: ", "")), 4) end
  local key = next(c)
  local field = SENT_AS[self.server][key]
  if not field then
    error(("%s: %s is not available on the server at %s (%s servers take only json_schema); if it is a llama.cpp, "
      .. "vLLM or refrain server, say so: lm.remote{url = ..., server = \"vllm\"}"):format(fname, key, self.url, self.server), 4)
  end
  if self.server == "llama.cpp" then
    body.grammar = grammar
  elseif key == "json_schema" and self.server == "openai" then
    body.response_format = {type = "json_schema", json_schema = {name = "output", strict = true, schema = json.raw(schema)}}
  elseif key == "json_schema" then
    body[field] = json.raw(schema)
  else
    body[field] = c[key]
  end
  return {options = c, checked = self.server == "llama.cpp" or self.server == "refrain"}
end

-- What kind of prompt: "text", "ids" or "messages".
local function prompt_kind(fname, prompt)
  if type(prompt) == "string" then
    if prompt == "" then error(fname .. ": empty prompt (generation needs at least one token)", 4) end
    return "text"
  end
  if type(prompt) ~= "table" then error(("%s: prompt must be a string or a table, got %s"):format(fname, type(prompt)), 4) end
  if #prompt == 0 then error(fname .. ": empty prompt (generation needs at least one token)", 4) end
  if type(prompt[1]) == "table" then return "messages" end
  for i, id in ipairs(prompt) do
    if math.type(id) ~= "integer" then error(("%s: token id expected at position %d, got %s"):format(fname, i, type(id)), 4) end
  end
  return "ids"
end

local function messages(fname, list)
  local out = {}
  for i, m in ipairs(list) do
    if type(m) ~= "table" or type(m.role) ~= "string" or type(m.content) ~= "string" then
      error(("%s: message %d must be {role = string, content = string}"):format(fname, i), 4)
    end
    out[i] = {role = m.role, content = m.content}
  end
  return out
end

-- One generation request: {url=, body=, chat=}.
function Remote:_generation(fname, prompt, o, seed)
  local kind = prompt_kind(fname, prompt)
  local body = sampling(self, o, seed)
  local constraint = constrain(self, fname, o, body)
  local k = o.logprobs or 0
  if kind == "messages" then
    body.messages = messages(fname, prompt)
    body.logprobs = true
    if k > 0 then body.top_logprobs = k end
    return {path = "/chat/completions", body = body, chat = true, k = k, constraint = constraint}
  end
  body.prompt = prompt
  body.logprobs = k
  return {path = "/completions", body = body, chat = false, k = k, constraint = constraint}
end

-- Sends requests ({path=, body=}) together, spread over the replicas in turn; returns the decoded bodies. HTTP
-- errors and bad JSON raise, naming the server's message.
function Remote:_send(fname, reqs, level)
  local calls = {}
  for i, r in ipairs(reqs) do
    local base = self.urls[self._turn % #self.urls + 1]
    self._turn = self._turn + 1
    calls[i] = {url = base .. r.path, method = "POST", body = json.encode(r.body)}
  end
  local ok, res = pcall(http, calls, self.policy)
  if not ok then error(("%s: %s"):format(fname, tostring(res):gsub("^lm%.http: ", "")), level or 3) end
  local out = {}
  for i, r in ipairs(res) do
    local data = json.try_decode(r.body)
    if r.status < 200 or r.status > 299 then
      local msg = type(data) == "table" and type(data.error) == "table" and data.error.message
        or type(data) == "table" and type(data.error) == "string" and data.error
        or type(data) == "table" and data.detail and json.encode(data.detail)
        or r.body:sub(1, 200)
      local tries = r.attempts > 1 and (" (after %d attempts)"):format(r.attempts) or ""
      error(("%s: POST %s: HTTP %d: %s%s"):format(fname, calls[i].url, r.status, msg, tries), level or 3)
    end
    if type(data) ~= "table" then
      error(("%s: POST %s: the response is not a JSON object: %q"):format(fname, calls[i].url, r.body:sub(1, 80)), level or 3)
    end
    out[i] = data
  end
  return out
end

-- A top-logprobs entry of the legacy shape ({piece = logprob}) as a list, best first, at most k long.
local function top_list(dict, k)
  local list = {}
  for piece, lp in pairs(dict or {}) do list[#list + 1] = {piece = piece, logprob = lp} end
  table.sort(list, function(a, b) return a.logprob > b.logprob end)
  while #list > k do list[#list] = nil end
  return list
end

-- The local result table from a response to request `req`.
function Remote:_result(fname, req, data, level)
  local c = type(data.choices) == "table" and data.choices[1]
  if type(c) ~= "table" then error(("%s: the server's response has no choices"):format(fname), level) end
  local r = {logprobs = {}}
  if req.chat then
    r.text = c.message and c.message.content or ""
    local content = type(c.logprobs) == "table" and c.logprobs.content or nil
    if content then
      if req.k > 0 then r.top = {} end
      for i, e in ipairs(content) do
        r.logprobs[i] = e.logprob
        if r.top then
          local t = {}
          for j, alt in ipairs(e.top_logprobs or {}) do
            if j <= req.k then t[j] = {piece = alt.token, logprob = alt.logprob} end
          end
          r.top[i] = t
        end
      end
    end
  else
    r.text = c.text or ""
    local lp = type(c.logprobs) == "table" and c.logprobs or nil
    if lp then
      local n = #(lp.tokens or {})
      for i = 1, n do r.logprobs[i] = lp.token_logprobs[i] end
      if req.k > 0 then
        r.top = {}
        for i = 1, n do r.top[i] = top_list(lp.top_logprobs[i], req.k) end
      end
    end
  end
  if req.k > 0 and not r.top then
    error(("%s: the server at %s returned no log-probabilities (asked for logprobs = %d)"):format(fname, self.url, req.k), level)
  end
  r.ids = c.token_ids
  -- OpenAI says "stop" for a stop string and for the end token alike; vLLM's stop_reason (and refrain serve's)
  -- tells them apart: the stop string, or the end token's id.
  if c.finish_reason == "length" then r.finish = "length"
  elseif math.type(c.stop_reason) == "integer" then r.finish = "eos"
  else r.finish = c.finish_reason == nil and "stop" or tostring(c.finish_reason) end
  -- A server that matched the same grammar returns a complete sentence of it when it stopped by itself; one that
  -- does not is a server that ignored the field (an old version, another server behind the name).
  if req.constraint and req.constraint.checked and r.finish ~= "length" and lm.model then
    local ok, accepted = pcall(lm.accepts, req.constraint.options, r.text)
    if ok and not accepted then
      error(("%s: the server at %s (%s) returned text outside the constraint (%s): it did not apply it: %q"):format(
        fname, self.url, self.server, next(req.constraint.options), r.text:sub(1, 80)), level)
    end
  end
  local u = data.usage or {}
  local details = type(u.prompt_tokens_details) == "table" and u.prompt_tokens_details or {}
  r.usage = {prompt = u.prompt_tokens or 0, completion = u.completion_tokens or (r.ids and #r.ids) or #r.logprobs,
             cached = details.cached_tokens or 0}
  return r
end

-- Writes one call to the run store; `outputs` are result tables (generation) or {text=, logprobs=, ids=}.
function Remote:_record(kind, prompt, o, outputs, result, started, seconds, err)
  local opts = {}
  for k, v in pairs(o or {}) do if type(v) ~= "function" then opts[k] = v end end
  local recs = {}
  for i, r in ipairs(outputs or {}) do
    recs[i] = {text = r.text or r.option or "", ids = r.ids, finish = r.finish, logprobs = r.logprobs,
               top = r.top and json.encode(r.top) or nil, usage = r.usage}
  end
  local text, ids = prompt, nil
  if type(prompt) == "table" then
    if type(prompt[1]) == "table" then text = json.encode(prompt) else text, ids = "", prompt end
  end
  record_call({kind = kind, backend = self.url, model = self.model, prompt = text, prompt_ids = ids,
               options = json.encode(opts), outputs = recs, result = result and json.encode(result) or nil,
               started = started, seconds = seconds, error = err})
end

-- Runs `body` (which returns the value, the outputs and the result to record), recording failures too.
function Remote:_call(kind, prompt, o, body)
  local started, t0 = os.time(), lm.clock()
  local ok, value, outputs, result = pcall(body)
  local seconds = lm.clock() - t0
  if not ok then
    self:_record(kind, prompt, o, nil, nil, started, seconds, tostring(value))
    error(value, 0)
  end
  self:_record(kind, prompt, o, outputs, result, started, seconds, nil)
  return value
end

function Remote:generate(prompt, opts)
  check_self(self, "generate")
  local o = resolve(self, "generate", opts)
  local req = self:_generation("generate", prompt, o, o.seed or 0)
  return self:_call("generate", prompt, o, function()
    local t0 = lm.clock()
    local data = self:_send("generate", {req}, 0)[1]
    local r = self:_result("generate", req, data, 0)
    r.seconds = lm.clock() - t0
    if o.stream then io.write(r.text); io.flush() end
    return r, {r}
  end)
end

function Remote:sample(prompt, n, opts)
  check_self(self, "sample")
  if math.type(n) ~= "integer" or n < 1 then error("sample: n must be an integer ≥ 1, got " .. tostring(n), 2) end
  local o = resolve(self, "sample", opts)
  local reqs = {}
  for i = 1, n do reqs[i] = self:_generation("sample", prompt, o, (o.seed or 0) + i - 1) end
  return self:_call("sample", prompt, o, function()
    local t0 = lm.clock()
    local data = self:_send("sample", reqs, 0)
    local seconds = lm.clock() - t0
    local rs = {}
    for i = 1, n do
      rs[i] = self:_result("sample", reqs[i], data[i], 0)
      rs[i].seconds = seconds
      if o.stream then io.write(rs[i].text, "\n"); io.flush() end
    end
    return rs, rs
  end)
end

-- The server's path for llama.cpp's extras (/tokenize ...): the URL without its /v1.
function Remote:_extra(fname, path, body, level)
  if self._missing[path] then
    error(("%s: the server at %s has no %s (llama.cpp's server, vLLM and refrain serve have it)"):format(fname, self.root, path), level)
  end
  local ok, res = pcall(http, {url = self.root .. path, method = "POST", body = json.encode(body)}, self.policy)
  if not ok then error(("%s: %s"):format(fname, res), level) end
  if res.status == 404 or res.status == 405 then
    self._missing[path] = true
    error(("%s: the server at %s has no %s (llama.cpp's server, vLLM and refrain serve have it)"):format(fname, self.root, path), level)
  end
  local data = json.try_decode(res.body)
  if res.status ~= 200 or type(data) ~= "table" then
    local msg = type(data) == "table" and type(data.error) == "table" and data.error.message or res.body:sub(1, 200)
    error(("%s: POST %s%s: HTTP %d: %s"):format(fname, self.root, path, res.status, msg), level)
  end
  return data
end

function Remote:_tokenize(fname, text, special, bos, level)
  local add = bos ~= false
  local data = self:_extra(fname, "/tokenize", {model = self.model, content = text, prompt = text, add_special = add,
                                                 add_special_tokens = add, parse_special = special}, level + 1)
  local ids = data.tokens
  if type(ids) ~= "table" then error(fname .. ": the /tokenize response has no tokens", level) end
  if bos == true and self.info.bos and ids[1] ~= self.info.bos then table.insert(ids, 1, self.info.bos) end
  return ids
end

function Remote:tokenize(text, opts)
  check_self(self, "tokenize")
  if type(text) ~= "string" then error("tokenize: text must be a string, got " .. type(text), 2) end
  opts = opts or {}
  return self:_tokenize("tokenize", text, opts.special == true, opts.bos, 3)
end

function Remote:detokenize(ids, opts)
  check_self(self, "detokenize")
  if type(ids) ~= "table" then error("detokenize: ids must be a list of token ids, got " .. type(ids), 2) end
  local data = self:_extra("detokenize", "/detokenize", {model = self.model, tokens = ids, special = opts and opts.special == true}, 3)
  return data.content or data.prompt or data.text or ""
end

function Remote:token(id)
  check_self(self, "token")
  if math.type(id) ~= "integer" then error("token: id must be an integer, got " .. type(id), 2) end
  local data = self:_extra("token", "/detokenize", {model = self.model, tokens = {id}, special = true}, 3)
  return data.content or data.prompt or data.text or ""
end

function Remote:template(msgs)
  check_self(self, "template")
  if type(msgs) ~= "table" or #msgs == 0 then error("template: messages must be a non-empty list", 2) end
  local data = self:_extra("template", "/apply-template", {model = self.model, messages = messages("template", msgs)}, 3)
  if type(data.prompt) ~= "string" then error("template: the /apply-template response has no prompt", 2) end
  return data.prompt
end

-- A scoring request for `continuation` after `prefix`, and the function that reads the score from its response.
-- With a /tokenize on the server both are tokenized as the local model does (the prefix with BOS and control
-- tokens, the continuation without) and sent as token ids; without one, as one text whose continuation starts at
-- a token boundary (text_offset), or an error.
function Remote:_score_request(fname, prefix, continuation, level)
  if type(prefix) == "table" and type(prefix[1]) == "table" then prefix = self:template(prefix) end
  if type(prefix) ~= "string" and type(prefix) ~= "table" then error(fname .. ": prefix must be a string or a table", level) end
  if type(continuation) ~= "string" and type(continuation) ~= "table" then
    error(fname .. ": continuation must be a string or a list of token ids", level)
  end
  if (type(prefix) == "string" and prefix == "") or (type(prefix) == "table" and #prefix == 0) then
    error(fname .. ": empty prefix (scoring needs at least one token of context)", level)
  end
  local ids_mode = type(prefix) == "table" or type(continuation) == "table" or not self._missing["/tokenize"]
  if ids_mode then
    local ok, p, c = pcall(function()
      local p = type(prefix) == "table" and prefix or self:_tokenize(fname, prefix, true, nil, 6)
      local c = type(continuation) == "table" and continuation or self:_tokenize(fname, continuation, false, false, 6)
      return p, c
    end)
    if not ok then
      if not self._missing["/tokenize"] or type(prefix) == "table" or type(continuation) == "table" then error(p, 0) end
      ids_mode = false
    else
      local prompt = {}
      for _, id in ipairs(p) do prompt[#prompt + 1] = id end
      for _, id in ipairs(c) do prompt[#prompt + 1] = id end
      local body = {model = self.model, prompt = prompt, max_tokens = 1, temperature = 0}
      if self.scoring == "prompt_logprobs" then body.prompt_logprobs = 1 else body.echo, body.logprobs = true, 0 end
      return {path = "/completions", body = body}, function(data)
        local choice = data.choices and data.choices[1]
        local lp = choice and choice.logprobs
        local at
        if type(lp) == "table" and type(lp.token_logprobs) == "table" then
          at = function(k) return lp.token_logprobs[k] end
        elseif type(choice) == "table" and type(choice.prompt_logprobs or data.prompt_logprobs) == "table" then
          -- vLLM's prompt_logprobs: one entry per prompt token (null for the first), a table keyed by token id
          -- ("1234" -> {logprob=, rank=, decoded_token=}) that always holds the prompt's own token.
          local plp = choice.prompt_logprobs or data.prompt_logprobs
          at = function(k)
            local e = plp[k]
            e = type(e) == "table" and e[tostring(prompt[k])]
            return type(e) == "table" and e.logprob or e
          end
        else
          local how = self.scoring == "prompt_logprobs" and "prompt_logprobs" or "echo with logprobs"
          error(("%s: the server at %s gave no prompt log-probabilities (%s): it cannot score"):format(fname, self.url, how), 0)
        end
        local s = {ids = c, logprobs = {}, sum = 0}
        for i = 1, #c do
          local v = at(#p + i)
          if type(v) ~= "number" then error(("%s: the server gave no log-probability for continuation token %d"):format(fname, i), 0) end
          s.logprobs[i], s.sum = v, s.sum + v
        end
        s.mean = #c > 0 and s.sum / #c or 0
        return s
      end
    end
  end
  if self.scoring == "prompt_logprobs" then
    error(("%s: scoring with prompt_logprobs needs the server's /tokenize (the server at %s has none), or token ids for the prefix and the continuation"):format(fname, self.url), level)
  end
  -- Text: the continuation's tokens are those whose offsets fall in it.
  local B, L = utf8.len(prefix), utf8.len(prefix .. continuation)
  local req = {path = "/completions",
               body = {model = self.model, prompt = prefix .. continuation, max_tokens = 1, temperature = 0, echo = true, logprobs = 0}}
  return req, function(data)
    local lp = data.choices and data.choices[1] and data.choices[1].logprobs
    if type(lp) ~= "table" or type(lp.text_offset) ~= "table" then
      error(("%s: the server at %s gave no prompt log-probabilities (echo with logprobs): it cannot score"):format(fname, self.url), 0)
    end
    local s = {logprobs = {}, tokens = {}, sum = 0}
    local at_boundary = false
    for i = 1, #lp.text_offset do at_boundary = at_boundary or lp.text_offset[i] == B end
    if not at_boundary then
      error(("%s: the server's tokens straddle the prefix/continuation boundary (no token starts at character %d, where the continuation does): pass token ids to score exactly"):format(fname, B), 0)
    end
    for i = 1, #lp.text_offset do
      local off = lp.text_offset[i]
      if off >= B and off < L then
        local v = lp.token_logprobs[i]
        if type(v) ~= "number" then error(("%s: the server gave no log-probability for continuation token %d"):format(fname, i), 0) end
        s.logprobs[#s.logprobs + 1], s.tokens[#s.tokens + 1] = v, lp.tokens[i]
        s.sum = s.sum + v
      end
    end
    s.mean = #s.logprobs > 0 and s.sum / #s.logprobs or 0
    return s
  end
end

function Remote:score(prefix, continuation)
  check_self(self, "score")
  local req, read = self:_score_request("score", prefix, continuation, 3)
  return self:_call("score", prefix, nil, function()
    local s = read(self:_send("score", {req}, 0)[1])
    return s, {{text = type(continuation) == "string" and continuation or "", ids = s.ids, logprobs = s.logprobs}},
           {sum = s.sum, mean = s.mean}
  end)
end

function Remote:choose(prefix, options, opts)
  check_self(self, "choose")
  -- The rule is lm.choice's, as for the local model: check, then rank; this backend only scores (in one batch).
  local by = choice.check(options, opts, 3)
  local reqs, reads = {}, {}
  for i, c in ipairs(options) do reqs[i], reads[i] = self:_score_request("choose", prefix, c, 3) end
  -- "No context" for calibration: the BOS token (when the server names it), or a newline.
  local n = #options
  if by == "calibrated" then
    local empty = self.info.bos and {self.info.bos} or self:_tokenize("choose", "\n", false, false, 3)
    for i, c in ipairs(options) do
      reqs[n + i], reads[n + i] = self:_score_request("choose", empty, self:_tokenize("choose", c, false, false, 3), 3)
    end
  end
  return self:_call("choose", prefix, opts, function()
    local data = self:_send("choose", reqs, 0)
    local scores, calibration = {}, {}
    for i = 1, n do
      scores[i] = reads[i](data[i])
      if by == "calibrated" then calibration[i] = reads[n + i](data[n + i]) end
    end
    local best, ranked, index = choice.rank(options, scores, by, calibration)
    return {best, ranked, index}, ranked, {chosen = index}
  end)
end

-- choose returns three values; _call passes one: unpack here.
local choose = Remote.choose
Remote.choose = function(...)
  local t = choose(...)
  return t[1], t[2], t[3]
end

-- What the protocol cannot give.
local NEEDS = {
  state = "a prompt state (its KV cache lives in the server)",
  attention = "attention probabilities", hidden = "hidden states", logit_lens = "the logit lens",
}
for name, what in pairs(NEEDS) do
  Remote[name] = function(self)
    error(("%s: the remote backend (%s) cannot give %s: an OpenAI-compatible server does not expose it (load the model locally with lm.load for this)"):format(name, rawget(self or {}, "url") or "?", what), 2)
  end
end

local SPEC = {url = "string or list", model = "string", api_key_env = "string", timeout = "number", retries = "integer",
              concurrency = "integer", backoff = "number", scoring = "string", server = "string"}

-- The dialect of a server from its models' owned_by: llama.cpp's server says "llamacpp", llama-cpp-python's "me",
-- vLLM "vllm", refrain serve "refrain"; anything else is taken as OpenAI's API.
local OWNERS = {llamacpp = "llama.cpp", me = "llama.cpp", vllm = "vllm", refrain = "refrain"}

-- The served models of one server, from GET /models.
local function served(url, policy)
  local ok, res = pcall(http, {url = url .. "/models", method = "GET"}, policy)
  if not ok then error("lm.remote: " .. res, 3) end
  local data = json.try_decode(res.body)
  if res.status ~= 200 or type(data) ~= "table" or type(data.data) ~= "table" then
    local msg = type(data) == "table" and type(data.error) == "table" and data.error.message or res.body:sub(1, 200)
    error(("lm.remote: GET %s/models: HTTP %d: %s"):format(url, res.status, msg), 3)
  end
  return data.data
end

-- lm.remote{url=, model=, api_key_env=, timeout=, retries=, concurrency=}: asks the server (each replica, when url
-- is a list) for its models, and returns the model object.
local function new(spec)
  if type(spec) == "string" then spec = {url = spec} end
  if type(spec) ~= "table" then error("lm.remote: expected a table {url = ..., model = ...}, got " .. type(spec), 2) end
  for k, v in pairs(spec) do
    local kind = SPEC[k]
    if not kind then error(("lm.remote: unknown field '%s' (known: url, model, api_key_env, timeout, retries, concurrency, backoff, scoring, server)"):format(tostring(k)), 2) end
    local ok = kind == "integer" and math.type(v) == "integer" or kind == "string or list" and (type(v) == "string" or type(v) == "table")
      or type(v) == kind
    if not ok then error(("lm.remote: field '%s' must be a%s %s, got %s"):format(k, kind == "integer" and "n" or "", kind, type(v)), 2) end
  end
  if not spec.url then error("lm.remote: no url (for example url = \"http://127.0.0.1:8080/v1\")", 2) end
  if spec.scoring ~= nil and spec.scoring ~= "echo" and spec.scoring ~= "prompt_logprobs" then
    error(("lm.remote: scoring must be \"echo\" or \"prompt_logprobs\", got \"%s\""):format(spec.scoring), 2)
  end
  local urls = {}
  for i, u in ipairs(type(spec.url) == "table" and spec.url or {spec.url}) do
    if type(u) ~= "string" or not u:match("^https?://") then
      error("lm.remote: url must start with http:// or https://, got " .. tostring(u), 2)
    end
    urls[i] = u:gsub("/+$", "")
  end
  if #urls == 0 then error("lm.remote: url is an empty list", 2) end
  if spec.server ~= nil and not SENT_AS[spec.server] then
    error(("lm.remote: server must be \"llama.cpp\", \"vllm\", \"refrain\" or \"openai\", got \"%s\""):format(spec.server), 2)
  end
  local url = urls[1]
  local self = setmetatable({url = url, urls = urls, root = url:gsub("/v1$", ""), _missing = {}, _turn = 0,
    scoring = spec.scoring or "echo",
    policy = {timeout = spec.timeout or 60, retries = spec.retries or 3, concurrency = spec.concurrency or 4,
              backoff = spec.backoff, api_key_env = spec.api_key_env}}, Remote)
  -- The model: the one asked for, else the first server's first; every replica must serve it.
  local want, entry = spec.model, nil
  for _, u in ipairs(urls) do
    local list, found = served(u, self.policy), nil
    for _, e in ipairs(list) do
      if want == nil or e.id == want then found = e; break end
    end
    if not found then
      local ids = {}
      for _, e in ipairs(list) do ids[#ids + 1] = tostring(e.id) end
      error(("lm.remote: the server at %s does not serve '%s' (it serves: %s)"):format(u, tostring(want), table.concat(ids, ", ")), 2)
    end
    entry = entry or found
    want = entry.id
  end
  self.model = entry.id
  self.server = spec.server or OWNERS[entry.owned_by] or "openai"
  local meta = type(entry.meta) == "table" and entry.meta or {}
  self.info = {backend = "remote", url = url, urls = urls, name = entry.id, path = url .. "/models/" .. entry.id,
               context = entry.context_length or entry.max_model_len or meta.n_ctx_train,
               vocab = entry.vocab or meta.n_vocab, bos = entry.bos, eos = entry.eos}
  return self
end

-- Replays one recorded remote call (`refrain replay CALL`): the same request to the same server and model, compared
-- with the record. rec = {kind=, backend=, model=, prompt=, prompt_ids=, options= (JSON text), outputs = {{text=,
-- ids=, logprobs=}, ...}}. Generated outputs must match token for token (ids when both sides have them, else the
-- text); scores within `tolerance`. -> reproduced (boolean), a one-line message.
local function replay(rec, tolerance)
  local m = new{url = rec.backend, model = rec.model}
  local o = type(rec.options) == "string" and json.decode(rec.options) or {}
  local prompt = rec.prompt
  if type(rec.prompt_ids) == "table" and #rec.prompt_ids > 0 then
    prompt = rec.prompt_ids
  else
    -- A chat call records its messages as JSON: a list of {role=, content=} tables.
    local ok, v = pcall(json.decode, prompt)
    if ok and type(v) == "table" and #v > 0 then
      local all = true
      for _, msg in ipairs(v) do all = all and type(msg) == "table" and type(msg.role) == "string" and type(msg.content) == "string" end
      if all then prompt = v end
    end
  end
  local recorded, outs, scored = rec.outputs or {}, nil, false
  local function continuation(out) return (out.text ~= nil and out.text ~= "") and out.text or out.ids end
  if rec.kind == "generate" then
    outs = {m:generate(prompt, o)}
  elseif rec.kind == "sample" then
    outs = m:sample(prompt, #recorded, o)
  elseif rec.kind == "score" then
    outs, scored = {m:score(prompt, continuation(recorded[1] or {}))}, true
  elseif rec.kind == "choose" then
    local options = {}
    for i, out in ipairs(recorded) do options[i] = out.text end
    local _, scores = m:choose(prompt, options, o)
    outs, scored = scores, true
  else
    error(("replay: a remote '%s' call cannot be replayed"):format(tostring(rec.kind)), 0)
  end
  if #outs ~= #recorded then return false, ("%d outputs recorded, %d replayed"):format(#recorded, #outs) end
  local tokens = 0
  for i, out in ipairs(outs) do
    local was = recorded[i]
    if type(was.ids) == "table" and type(out.ids) == "table" then
      for k = 1, math.max(#was.ids, #out.ids) do
        if was.ids[k] ~= out.ids[k] then
          return false, ("output %d, token %d: recorded %s, replayed %s"):format(i, k, tostring(was.ids[k] or "(end)"), tostring(out.ids[k] or "(end)"))
        end
      end
      tokens = tokens + #out.ids
    elseif not scored then
      if was.text ~= out.text then
        local k = 1
        while k <= #was.text and was.text:byte(k) == out.text:byte(k) do k = k + 1 end
        return false, ("output %d differs from byte %d: recorded %q, replayed %q"):format(i, k, was.text:sub(k, k + 23), out.text:sub(k, k + 23))
      end
      tokens = tokens + #(out.logprobs or {})
    end
    if scored then
      local a, b = was.logprobs or {}, out.logprobs or {}
      if #a ~= #b then return false, ("output %d: %d log-probabilities recorded, %d replayed"):format(i, #a, #b) end
      for k = 1, #a do
        if math.abs(a[k] - b[k]) > tolerance then
          return false, ("output %d, token %d: log-probability recorded %.6f, replayed %.6f"):format(i, k, a[k], b[k])
        end
      end
      if type(out.ids) ~= "table" then tokens = tokens + #b end
    end
  end
  local what = ("%d token%s"):format(tokens, tokens == 1 and "" or "s")
  if scored then what = what .. (", log-probabilities within %g"):format(tolerance) end
  return true, ("%d output%s, %s, from %s"):format(#outs, #outs == 1 and "" or "s", what, rec.backend)
end

-- Help.
local function doc(fn, name, usage, text, example)
  lm.document(fn, {name = name, usage = usage, text = text, example = example})
end
local M = setmetatable({new = new, Remote = Remote, _replay = replay}, {__call = function(_, spec) return new(spec) end})
doc(M, "lm.remote", "lm.remote{url=, model=, api_key_env=, timeout=60, retries=3, concurrency=4, scoring=\"echo\"} -> model",
  "A model served by an OpenAI-compatible server (vLLM, llama.cpp's server, SGLang, refrain serve) that works like "
  .. "a local one: m:generate, m:sample, m:score, m:choose, m:template, m:tokenize, m:detokenize, m:token, and m.info "
  .. "(backend = \"remote\"). url is the API's base (ending in /v1), or a list of them (replicas serving the same model: "
  .. "requests go to them in turn); model defaults to the first one the server lists. "
  .. "The API key is read from the environment variable named by api_key_env and sent as Authorization: Bearer; it is "
  .. "never stored or printed. timeout is per request (seconds); a lost connection, a time-out, 429 or 5xx is retried "
  .. "up to retries times with exponential backoff (0.5 s, 1 s, 2 s..., or what Retry-After says); sample and choose "
  .. "send up to concurrency requests at once. scoring says how m:score and m:choose get prompt log-probabilities: "
  .. "\"echo\" (echo = true with logprobs, the legacy OpenAI form: llama.cpp's server, refrain serve, vLLM) or "
  .. "\"prompt_logprobs\" (vLLM's extra parameter; it needs token ids, so the server's /tokenize); a response in "
  .. "either form is read. Every call is written to the run store. What the protocol cannot give "
  .. "(m:state, m:attention, m:hidden, m:logit_lens, on_token, entropy) is an error. "
  .. "The constraint options (grammar, regex, choices, json_schema) are sent as the server names them; which server "
  .. "it is comes from its models' owned_by, or server = \"llama.cpp\", \"vllm\", \"refrain\" or \"openai\": a "
  .. "llama.cpp server (its own or llama-cpp-python's) gets the GBNF grammar lm.grammar gives (the one the local "
  .. "model matches) in `grammar`; vLLM guided_grammar, guided_regex, guided_choice, guided_json; refrain serve its "
  .. "own fields; an OpenAI server json_schema as response_format (the others are an error naming the option). "
  .. "Where the server matches the same grammar (llama.cpp, refrain), a result it ended itself is checked with "
  .. "lm.accepts, and text outside the constraint (a server that ignored the field) is an error.",
  "local m = lm.remote{url = \"http://127.0.0.1:8080/v1\"}\nprint(m:generate(\"The capital of France is\", {max_tokens = 8, temperature = 0}).text)")
doc(Remote.generate, "remote:generate", "m:generate(prompt [, opts]) -> result",
  "As the local generate, over /v1/completions (a string prompt, control tokens parsed by the server, or token ids) "
  .. "or /v1/chat/completions (a list of {role=, content=} messages, rendered by the server's chat template). Options: "
  .. "lm.defaults, then opts (on_token is an error; stream prints the text when it has come). The result: text, "
  .. "logprobs, top (with logprobs = k: {piece=, logprob=} per token, no ids), ids (when the server returns token ids: "
  .. "refrain serve, vLLM), finish (\"eos\" only where the server tells an end token from a stop string), usage, seconds. "
  .. "No entropy.",
  "local r = m:generate(\"Once upon a time\", {max_tokens = 16, temperature = 0, logprobs = 3})\nprint(r.text, r.logprobs[1])")
doc(Remote.sample, "remote:sample", "m:sample(prompt, n [, opts]) -> {result, ...}",
  "n generations, one request each with seeds opts.seed, opts.seed + 1, ... (so that sample i equals generate with "
  .. "seed opts.seed + i - 1, as locally), sent up to concurrency at a time.",
  "for i, r in ipairs(m:sample(\"Once upon a time\", 4, {max_tokens = 20, seed = 7})) do print(i, r.text) end")
doc(Remote.score, "remote:score", "m:score(prefix, continuation) -> {sum=, mean=, logprobs=, ids=}",
  "Log-probabilities of the continuation's tokens after the prefix, from /v1/completions with echo and logprobs "
  .. "(or prompt_logprobs: lm.remote's scoring field). "
  .. "With a /tokenize on the server, the prefix (with BOS and control tokens) and the continuation (without) are "
  .. "tokenized apart, as locally, and sent as token ids (the server must take token-id prompts: refrain serve, vLLM, "
  .. "llama.cpp's server); without one, as one text, and the continuation must start at a token boundary (else an "
  .. "error; the result then has tokens, the pieces, instead of ids).",
  "=m:score(\"The capital of France is\", \" Paris\").sum")
doc(Remote.choose, "remote:choose", "m:choose(prefix, options [, {by=\"mean\"}]) -> best, scores, index",
  "As the local choose: each option scored as a continuation (the requests sent together), by \"sum\", \"mean\" or "
  .. "\"calibrated\" (minus the option's log-probability after the BOS token alone, when the server names it, else a newline).",
  "local best = m:choose(\"The capital of France is\", {\" Paris\", \" Rome\"})")
doc(Remote.template, "remote:template", "m:template(messages) -> prompt",
  "The server's chat template applied to messages, through llama.cpp's POST /apply-template (refrain serve has it too).",
  "=m:template({{role = \"user\", content = \"Hi\"}})")
doc(Remote.tokenize, "remote:tokenize", "m:tokenize(text [, {special=false, bos=nil}]) -> {ids}",
  "Token ids from the server's POST /tokenize (llama.cpp's server, vLLM, refrain serve).",
  "=m:tokenize(\"Hello world\")")
doc(Remote.detokenize, "remote:detokenize", "m:detokenize(ids [, {special=false}]) -> text",
  "Text from the server's POST /detokenize.", "=m:detokenize({19556, 905})")
doc(Remote.token, "remote:token", "m:token(id) -> piece", "One token's text, from the server's /detokenize.", "=m:token(2)")
return M
