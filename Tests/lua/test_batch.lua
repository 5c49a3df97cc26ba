-- m:generate_batch and lm.batch on the default test model: batched calls give what the separate calls give, bit
-- for bit; the scheduler runs jobs as coroutines with their own labels; bindings work from coroutines; lm.store.with
-- may yield; bad requests are refused by name.
local here = arg[0]:match("(.*/)") or "./"
local T = dofile(here .. "check.lua")
local m = assert(lm.model, "a model is needed")

local function same(a, b, what)
  T.eq(b.text, a.text, what .. ": text")
  T.eq(table.concat(b.ids, ","), table.concat(a.ids, ","), what .. ": ids")
  T.eq(#b.logprobs, #a.logprobs, what .. ": logprobs")
  for i = 1, #a.logprobs do T.eq(b.logprobs[i], a.logprobs[i], what .. ": logprob " .. i) end
  T.eq(b.finish, a.finish, what .. ": finish")
end

local REQUESTS = {
  {prompt = "2+2=", opts = {max_tokens = 12, temperature = 0}},
  {prompt = "The capital of France is", opts = {max_tokens = 20, temperature = 0.8, seed = 5}},
  {prompt = "Once upon a time", n = 3, opts = {max_tokens = 16, temperature = 0.9, seed = 11}},
  {prompt = {{role = "user", content = "Name a color."}}, opts = {max_tokens = 10, temperature = 0, stop = {"."}}},
}

T.test("generate_batch gives what generate and sample give, request by request", function()
  local rs = m:generate_batch(REQUESTS)
  T.eq(#rs, #REQUESTS)
  for k, q in ipairs(REQUESTS) do
    if q.n then
      local alone = m:sample(q.prompt, q.n, q.opts)
      T.eq(#rs[k], q.n)
      for i = 1, q.n do same(alone[i], rs[k][i], "request " .. k .. " sample " .. i) end
    else
      same(m:generate(q.prompt, q.opts), rs[k], "request " .. k)
      T.ok(rs[k].usage.prompt > 0 and rs[k].seconds >= 0)
    end
  end
  T.eq(#m:generate_batch({}), 0)
  T.eq(lm.generate_batch({{prompt = "2+2=", opts = {max_tokens = 12, temperature = 0}}})[1].text, rs[1].text,
    "lm.generate_batch uses lm.model")
end)

T.test("generate_batch refuses bad requests by number and name", function()
  T.err(function() m:generate_batch({{prompt = "x", opts = {on_token = print}}}) end,
    "generate_batch: request 1: on_token and stream are not supported in a batch")
  T.err(function() m:generate_batch({{prompt = "x"}, {prompt = "y", bogus = 1}}) end,
    "generate_batch: request 2: unknown field 'bogus'")
  T.err(function() m:generate_batch({{opts = {}}}) end, "generate_batch: request 1: no prompt")
  T.err(function() m:generate_batch({{prompt = "x", n = 0}}) end, "request 1: n must be an integer ≥ 1, got 0")
  T.err(function() m:generate_batch({{prompt = "x", opts = {temperature = -1}}}) end,
    "request 1: option 'temperature' must be at least 0, got -1")
  T.err(function() m:generate_batch({"x"}) end, "request 1: a string, not a table")
  T.err(function() m:generate_batch("x") end, "table expected")
end)

T.test("bindings called from a coroutine answer on its stack", function()
  local co = coroutine.wrap(function()
    local g = lm.generate("2+2=", {max_tokens = 4, temperature = 0})
    coroutine.yield(g.text)
    local s = lm.score("2+2=", "4")
    return #s.logprobs, lm.store.labels() ~= nil
  end)
  T.eq(co(), lm.generate("2+2=", {max_tokens = 4, temperature = 0}).text)
  local n, labels = co()
  T.eq(n, #lm.score("2+2=", "4").logprobs)
  T.ok(labels)
end)

T.test("lm.store.with may yield, and restores the labels when f ends or fails", function()
  local before = lm.store.labels().item
  local co = coroutine.wrap(function()
    return lm.store.with({item = "A"}, function()
      local got = coroutine.yield(lm.store.labels().item)
      return "after " .. got .. ": " .. tostring(lm.store.labels().item)
    end)
  end)
  T.eq(co(), "A")
  T.eq(co("resume"), "after resume: A")
  T.eq(lm.store.labels().item, before)
  local ok, err = pcall(lm.store.with, {item = "B"}, function() error("boom", 0) end)
  T.eq(ok, false); T.eq(err, "boom", "the error is raised as it was")
  T.eq(lm.store.labels().item, before)
  T.eq(select("#", lm.store.with({}, function() return 1, nil, 3 end)), 3, "all of f's results")
  T.err(function() lm.store.with({item = {}}, function() end) end, "label 'item' must be a string, number or boolean")
  T.err(function() lm.store.with({}) end, "function expected")
end)

-- Jobs as a strategy would write them: a chain of generate and sample calls, plus a score that is not batched.
local function job_for(q, k)
  return function(mm)
    local a = mm:generate(q, {max_tokens = 6 + k, temperature = 0})
    local s = mm:sample(q .. a.text, 2, {max_tokens = 5, temperature = 0.7, seed = k})
    local sc = mm:score(q, a.text)
    return {a.text, s[1].text, s[2].text, #sc.logprobs, lm.store.labels().item}
  end
end
local QS = {"1+1=", "The sky is", "Paris is in", "Cats are", "3*3=", "Hello"}

T.test("lm.batch.run: each job's results are what it gives alone, whatever the batch size", function()
  local alone = {}
  for k, q in ipairs(QS) do alone[k] = lm.store.with({item = "q" .. k}, job_for(q, k), m) end
  for _, size in ipairs({1, 4, 8}) do
    local jobs, got, order = {}, {}, {}
    for k, q in ipairs(QS) do
      jobs[k] = function(mm) return lm.store.with({item = "q" .. k}, job_for(q, k), mm) end
    end
    local batches = lm.batch.run(m, jobs, {size = size, done = function(i, ok, v)
      T.ok(ok, tostring(v)); got[i] = v; order[#order + 1] = i
    end})
    T.eq(#order, #QS)
    for k = 1, #QS do
      T.eq(table.concat(got[k], "|"), table.concat(alone[k], "|"), ("size %d, job %d"):format(size, k))
      T.eq(got[k][5], "q" .. k, "the job saw its own label")
    end
    if size == 1 then T.eq(batches, 2 * #QS, "one batched call per model call") end
    if size == 8 then T.eq(batches, 2, "all six jobs' calls went in two batches") end
  end
end)

T.test("lm.batch.run: a failing job reports its error and traceback; the others finish; done may stop the run", function()
  local seen = {}
  lm.batch.run(m, {
    function(mm) return mm:generate("1+1=", {max_tokens = 3, temperature = 0}).text end,
    function(mm) mm:generate("x", {max_tokens = 2}); error("job two fails") end,
    function(mm) return mm:generate("x", {max_tokens = 2, temperature = -5}) end,
  }, {size = 3, done = function(i, ok, v) seen[i] = {ok, v} end})
  T.eq(seen[1][1], true)
  T.eq(seen[2][1], false); T.ok(seen[2][2]:find("job two fails", 1, true) and seen[2][2]:find("traceback", 1, true), seen[2][2])
  T.eq(seen[3][1], false); T.ok(seen[3][2]:find("option 'temperature' must be at least 0", 1, true), seen[3][2])
  T.err(function()
    lm.batch.run(m, {function(mm) return mm:generate("a", {max_tokens = 2}) end,
                     function(mm) return mm:generate("b", {max_tokens = 2}) end},
      {size = 2, done = function() error("stop here", 0) end})
  end, "stop here")
  T.eq(lm.store.labels().item, nil, "no label left behind")
  local got = {}
  lm.batch.run(m, {function() coroutine.yield("stray") end, function(mm) return mm:generate("a", {max_tokens = 2}).text end},
    {done = function(i, ok, v) got[i] = {ok, v} end})
  T.eq(got[1][1], false); T.ok(tostring(got[1][2]):find("job 1 yielded (stray) outside a model call", 1, true), tostring(got[1][2]))
  T.eq(got[2][1], true)
  T.err(function() lm.batch.run(m, {1}) end, "job 1 is a number, not a function")
  T.err(function() lm.batch.run(m, {}, {size = 0}) end, "size must be an integer >= 1")
  T.err(function() lm.batch.run(m, {}, {bogus = 1}) end, "unknown option 'bogus'")
end)

T.test("lm.batch.run: a model without generate_batch (a remote one) is served call by call", function()
  local calls = 0
  local fake = {generate = function(self, p, o) calls = calls + 1; return {text = p .. "!"} end,
                sample = function(self, p, n) calls = calls + 1; return {{text = p}} end}
  local out = {}
  lm.batch.run(fake, {function(mm) return mm:generate("a").text end, function(mm) return mm:sample("b", 1)[1].text end},
    {done = function(i, ok, v) out[i] = v end})
  T.eq(out[1], "a!"); T.eq(out[2], "b"); T.eq(calls, 2)
end)

T.test("help covers generate_batch and lm.batch", function()
  T.ok(lm.doc(lm.model.generate_batch):find("m:generate_batch", 1, true))
  T.ok(lm.doc(lm.batch.run):find("lm.batch.run(model, jobs", 1, true))
  T.ok(lm.doc(lm.batch):find("lm.batch.run", 1, true))
end)

T.done()
