-- lm.batch: runs several jobs that call a model (one strategy on one item each, say) as coroutines, K at a time,
-- and decodes their generate and sample calls together with m:generate_batch, so that each decoding step serves
-- every job waiting on the model. On a CPU one batched step of K sequences costs little more than one step of
-- one, so K jobs finish in a fraction of K times the time. Each call gives exactly what it gives alone (the
-- batched rows are bit-identical to one-token steps), so a job's results do not depend on K or on its company.
--
-- A job receives a stand-in for the model: its generate and sample wait for the next batch; every other method
-- (score, choose, tokenize, template, state, ...) goes straight to the model. A call with on_token or stream, or
-- made outside the job's own coroutine, is not batched either. The run store's labels are kept per job (each job
-- sees the labels it set, as if it ran alone), and each batched call is recorded under its job's labels.
local lm = require "lm"

local M = {}

-- The mark of a request the stand-in yields (anything else a job yields is an error of the job's).
local REQUEST = {}

-- The stand-in for `model` that job coroutines call: generate and sample yield a request to the scheduler when
-- called from one of `ours` (coroutine -> true); anything else is the model's own.
local function stand_in(model, ours)
  local p = {}
  local function batched(opts)
    local co, main = coroutine.running()
    return not main and ours[co] and not (type(opts) == "table" and (opts.on_token or opts.stream))
  end
  local function ask(request)
    request.labels = lm.store and lm.store.labels() or nil
    request[REQUEST] = true
    local ok, value = coroutine.yield(request)
    if not ok then error(value, 0) end
    return value
  end
  local methods = {}
  function methods.generate(self, prompt, opts)
    if self ~= p then return model.generate(self, prompt, opts) end
    if not batched(opts) then return model:generate(prompt, opts) end
    return ask({prompt = prompt, opts = opts})
  end
  function methods.sample(self, prompt, n, opts)
    if self ~= p then return model.sample(self, prompt, n, opts) end
    if not batched(opts) then return model:sample(prompt, n, opts) end
    if not math.tointeger(n) or n < 1 then return model:sample(prompt, n, opts) end   -- its own error
    return ask({prompt = prompt, n = n, opts = opts})
  end
  return setmetatable(p, {
    __name = "lm.batch model",
    __index = function(_, k)
      local m = methods[k]
      if m then return m end
      local v = model[k]
      if type(v) ~= "function" then return v end
      return function(self, ...)
        if self == p then return v(model, ...) end
        return v(self, ...)
      end
    end,
    __tostring = function() return "lm.batch stand-in for " .. tostring(model) end,
  })
end

-- Runs the requests: together when the model has generate_batch; one by one when it has not, or when the batch
-- failed (so that the error reaches only the job whose call caused it). -> a list of {ok, value}
local function serve(model, requests)
  local out, clean = {}, {}
  for i, q in ipairs(requests) do clean[i] = {prompt = q.prompt, opts = q.opts, n = q.n, labels = q.labels} end
  if model.generate_batch then
    local ok, rs = pcall(model.generate_batch, model, clean)
    if ok then
      for i, r in ipairs(rs) do out[i] = {true, r} end
      return out
    end
  end
  for i, q in ipairs(requests) do
    local function call()
      if q.n then return model:sample(q.prompt, q.n, q.opts) end
      return model:generate(q.prompt, q.opts)
    end
    local ok, r
    if lm.store and q.labels then
      local saved = lm.store.label(q.labels)
      ok, r = pcall(call)
      lm.store.label(saved)
    else
      ok, r = pcall(call)
    end
    out[i] = {ok, r}
  end
  return out
end

--- Runs `jobs` (a list of functions job(m, i)) with up to `size` at a time, batching their model calls.
--- `done(i, ok, value)` is called as each job ends (in the order they end): ok and the value job returned, or
--- false and the error with its traceback. An error in `done` stops the run (the other jobs are closed).
--- -> the number of batched calls made (a statistic)
local function run(model, jobs, opts)
  if model == nil then error("lm.batch.run: no model", 2) end
  if type(jobs) ~= "table" then error("lm.batch.run: jobs must be a list of functions, got " .. type(jobs), 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("lm.batch.run: options must be a table, got " .. type(opts), 2) end
  for k in pairs(opts) do
    if k ~= "size" and k ~= "done" then error(("lm.batch.run: unknown option '%s' (size, done)"):format(tostring(k)), 2) end
  end
  local size = opts.size or 8
  if not math.tointeger(size) or size < 1 then error("lm.batch.run: size must be an integer >= 1, got " .. tostring(size), 2) end
  local done = opts.done or function() end
  for i, job in ipairs(jobs) do
    if type(job) ~= "function" then error(("lm.batch.run: job %d is a %s, not a function"):format(i, type(job)), 2) end
  end
  local store = lm.store
  local ours, m = {}, nil
  m = stand_in(model, ours)
  local active = {}            -- {co=, i=, labels=, request=}
  local next_job, batches = 1, 0

  -- Resumes job a with `...` under its own labels until it yields a request or ends.
  local function step(a, ...)
    local outer = store and store.label(a.labels)
    local ok, what, value = coroutine.resume(a.co, ...)
    if store then a.labels = store.label(outer) end
    if not ok then return true, false, what end                     -- an error outside the job's xpcall
    if coroutine.status(a.co) == "dead" then return true, what, value end
    if type(what) ~= "table" or not what[REQUEST] then
      coroutine.close(a.co)
      return true, false, "lm.batch.run: job " .. a.i .. " yielded (" .. tostring(what) .. ") outside a model call: "
        .. "a job may yield only through the model's generate and sample"
    end
    a.request = what
    return false
  end
  local function finish(a, ok, value)
    ours[a.co] = nil
    for k, b in ipairs(active) do if b == a then table.remove(active, k) break end end
    local fine, err = pcall(done, a.i, ok, value)
    if not fine then
      for _, b in ipairs(active) do coroutine.close(b.co) end
      error(err, 0)
    end
  end
  local function start()
    while #active < size and next_job <= #jobs do
      local i, job = next_job, jobs[next_job]
      next_job = next_job + 1
      local co = coroutine.create(function()
        return xpcall(job, debug.traceback, m, i)
      end)
      ours[co] = true
      local a = {co = co, i = i, labels = store and store.labels() or nil}
      active[#active + 1] = a
      local ended, ok, value = step(a)
      if ended then finish(a, ok, value) end
    end
  end

  start()
  while #active > 0 do
    local waiting, requests = {}, {}
    for _, a in ipairs(active) do
      if a.request then waiting[#waiting + 1] = a; requests[#requests + 1] = a.request end
    end
    local results = serve(model, requests)
    batches = batches + 1
    for k, a in ipairs(waiting) do
      a.request = nil
      local ended, ok, value = step(a, results[k][1], results[k][2])
      if ended then finish(a, ok, value) end
    end
    start()
  end
  return batches
end

M.run = run

lm.document(run, {
  name = "lm.batch.run",
  usage = "lm.batch.run(model, jobs [, {size=8, done=function(i, ok, value) end}]) -> batches",
  text = "Runs jobs (a list of functions job(m, i)) as coroutines, size at a time, and decodes the generate and "
    .. "sample calls they make on m (a stand-in for model) together with model:generate_batch: each batched "
    .. "step serves every job that waits on the model, so on a CPU the jobs finish several times sooner than "
    .. "one after another, with the same results (each call gives bit for bit what it gives alone). Other "
    .. "methods (score, choose, state, tokenize, ...) and calls with on_token or stream go straight to the model. "
    .. "Each job keeps its own run-store labels (lm.store.with works inside it), and each batched call is "
    .. "recorded under them. done(i, ok, value) is called as each job ends: ok and what it returned, or false "
    .. "and its error with a traceback. Returns how many batched calls were made. The experiment runner's "
    .. "--batch K uses this.",
  example = "local qs = {\"2+3=\", \"7*6=\", \"10-4=\"}\nlocal jobs = {}\nfor _, q in ipairs(qs) do\n"
    .. "  jobs[#jobs + 1] = function(m) return m:generate(q, {max_tokens = 4}).text end\nend\n"
    .. "lm.batch.run(lm.model, jobs, {size = 3, done = function(i, ok, v) print(i, ok, v) end})",
})
lm.document(M, {
  name = "lm.batch",
  usage = "lm.batch",
  text = "Runs many model-calling jobs at once with their generate and sample calls decoded together "
    .. "(lm.batch.run; the engine side is m:generate_batch).",
})
return M
