-- How much lm.batch (m:generate_batch) speeds up many independent generations: J jobs, each one greedy generation
-- of T tokens from its own prompt (a GSM8K-like arithmetic question in the chat template; end of generation
-- ignored so that every job decodes exactly T tokens), run one after another (size 1) and K at a time, medians
-- of R runs. Also checks that every job's text is the same at every size.
--
--   refrain run --model qwen2.5-coder-0.5b-instruct-q4_k_m bench/batch.lua [--jobs 8] [--tokens 128]
--     [--sizes 1,4,8] [--runs 3]
local opts = {jobs = 8, tokens = 128, sizes = "1,4,8", runs = 3}
local i = 1
while i <= #arg do
  local k = arg[i]:match("^%-%-(%a+)$")
  if not k or opts[k] == nil or arg[i + 1] == nil then
    io.stderr:write("usage: bench/batch.lua [--jobs J] [--tokens T] [--sizes 1,4,8] [--runs R]\n"); os.exit(2)
  end
  opts[k] = k == "sizes" and arg[i + 1] or math.tointeger(tonumber(arg[i + 1]))
  if opts[k] == nil then io.stderr:write("bench/batch.lua: --" .. k .. " needs an integer\n"); os.exit(2) end
  i = i + 2
end
local m = assert(lm.model, "no model: refrain run --model NAME bench/batch.lua")
local items = lm.tasks.arithmetic({n = opts.jobs, seed = 7})
local function jobs()
  local js = {}
  for j, it in ipairs(items) do
    js[j] = function(mm)
      return mm:generate({{role = "user", content = it.question}},
        {max_tokens = opts.tokens, temperature = 0, ignore_eos = true}).text
    end
  end
  return js
end
local sizes = {}
for s in opts.sizes:gmatch("%d+") do sizes[#sizes + 1] = math.tointeger(tonumber(s)) end
print(("%s: %d jobs × %d tokens, threads as refrain was started, medians of %d runs"):format(m.info.name or m.info.path,
  opts.jobs, opts.tokens, opts.runs))
print("| jobs at once | seconds | tokens/s | speed-up |")
print("|--:|--:|--:|--:|")
local first, base
for _, size in ipairs(sizes) do
  local times = {}
  for r = 1, opts.runs do
    local texts = {}
    local t0 = lm.clock()
    lm.batch.run(m, jobs(), {size = size, done = function(j, ok, v) assert(ok, v); texts[j] = v end})
    times[r] = lm.clock() - t0
    if first == nil then first = texts end
    for j = 1, opts.jobs do
      if texts[j] ~= first[j] then error(("job %d's text differs at size %d"):format(j, size)) end
    end
  end
  table.sort(times)
  local t = times[(#times + 1) // 2]
  base = base or t
  print(("| %d | %.2f | %.1f | %.2f× |"):format(size, t, opts.jobs * opts.tokens / t, base / t))
end
print("every job's text was the same at every size")
