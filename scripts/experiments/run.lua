-- The experiment runner: strategies × items → one JSON line per (item, strategy) in DIR/results.jsonl, written as
-- each finishes, then a report (results.md, results.csv, summary.json, accuracy.svg) comparing every strategy with
-- the baseline on the same items. A run that stops (Ctrl-C, kill, a crash) resumes: the pairs already in the file
-- are skipped. Every strategy gets the same seed for an item, so the comparison is paired.
--
-- The run store (lm.store, `refrain log`) records every model call labelled with the experiment (--experiment NAME,
-- else the absolute --out folder), the item, the strategy and the strings the strategy injected; each finished
-- result line is kept there too, so a lost or truncated results.jsonl is rebuilt from the store on resume.
--
--   refrain run scripts/experiments/run.lua --data arithmetic --n 200 --seed 1 \
--     --model qwen2.5-coder-0.5b-instruct-q4_k_m \
--     --strategies 'greedy=selection.self_consistency{n=1,temperature=0},sc=selection.self_consistency{n=8}' \
--     --out /tmp/sc-vs-greedy
--   refrain run scripts/experiments/run.lua --report --out /tmp/sc-vs-greedy     -- the report again, no model
--
-- A strategy is NAME=MODULE.FUNCTION{OPTIONS}: `require("strategies." .. MODULE)[FUNCTION]`, called as
-- fn(model, item, options) with the item's seed added to the options (a copy per call).
--
-- With --workers K (by default one per --backend when there are several) the runner starts K child runners, this
-- script again under the same refrain binary with --worker i/K; each takes its slice of the pending items (the
-- i-th, (i+K)-th, ... of them) and, with --backend, its own backends, and writes DIR/workers/i.jsonl (and the run
-- store). The parent shows the progress, then merges the lines into results.jsonl in item order and writes the
-- same report a single process would. Lines a failed or killed worker finished are kept; a rerun resumes.
local USAGE = [[
usage: refrain run scripts/experiments/run.lua --data SPEC --strategies LIST --out DIR [options]
       refrain run scripts/experiments/run.lua --report --out DIR [--baseline NAME] [--n N]

  --data SPEC        arithmetic[:STEPS]  seeded word problems (lm.tasks.arithmetic; STEPS 1, 2 or mixed)
                     gsm8k[:PATH]        GSM8K JSON Lines (PATH, else $REFRAIN_GSM8K)
                     jsonl:PATH          any JSON Lines with question and answer (and id) fields
  --n N              number of items (default 200, or all of a file)
  --offset K         skip the first K items of a file (default 0)
  --seed S           the task's seed and the per-item seeds: item i gets seed S*1000000 + i*1000 (default 1)
  --seeds K          run every (item, strategy) pair with K seed sets (default 1): set j gives item i the seed
                     S*1000000 + i*1000 + (j-1)*10^12, so set 1 is the run without --seeds and a run can be
                     extended to more sets in the same --out; the report gives the mean over the sets, their
                     spread, and paired tests on each item's mean over the sets
  --deterministic LIST  comma-separated strategy names whose results do not depend on the seed (greedy decoding):
                     with --seeds K they run in set 1 only, and that line stands for every set
  --model NAME       a GGUF path or a name under $REFRAIN_HOME/models (default: the model refrain loaded)
  --threads N        threads for --model (default: refrain's)
  --backend URL      an OpenAI-compatible server's API base (http://host:8000/v1: vLLM, llama.cpp's server, refrain
                     serve) instead of a local model; repeat it for replicas serving the same model: by default
                     one worker per replica runs items on it (see --workers; docs/scale-out.md)
  --backend-model ID the served model's id (default: the first the server lists)
  --api-key-env VAR  the environment variable holding the servers' API key (sent as Authorization: Bearer)
  --concurrency N    requests in flight at once for one call's samples or options (default 4)
  --workers K        run the pending items in K child processes at once (default: the number of --backend URLs, else
                     1): worker i takes the i-th, (i+K)-th, ... pending item and backend i (replicas are dealt out in
                     turn: with fewer workers than replicas a worker sends a call's requests over its several);
                     without --backend each worker loads the model with --threads (default: the cores / K), which
                     pays only with cores to spare. Results merge into results.jsonl in item order; logs in
                     DIR/workers/
  --worker I/K       (what --workers gives its children) run as worker I of K, on the plan in DIR/workers/
  --batch K          run K pending pairs at once in this process (lm.batch), their generate and sample calls
                     decoded together: several times the throughput on a CPU, the same result lines (each call
                     gives what it gives alone) but for the seconds, which then count time shared with the
                     others; lines are written in the order pairs end (default 1: one pair after another)
  --strategies LIST  comma-separated NAME=MODULE.FUNCTION{OPTIONS}; OPTIONS is a Lua table constructor, e.g.
                     'greedy=selection.self_consistency{n=1,temperature=0},sc=selection.self_consistency{n=8}'
                     (quote it: the shell expands braces with commas). NAME= may be left out (the name is then
                     MODULE.FUNCTION). --strategy SPEC adds one more and may be repeated.
  --baseline NAME    the strategy the others are compared to (default: the first)
  --out DIR          where results.jsonl and the report go (made if missing; a run there resumes)
  --experiment NAME  the experiment's name in the run store (default: the absolute --out folder); results
                     the store holds for it and results.jsonl lacks are restored before running
  --report           only write the report from DIR/results.jsonl and DIR/run.json (no model calls)
  --help             this text
]]

local SCRIPT = arg and arg[0] or "run.lua"

-- Strategies are found next to this script (scripts/strategies), as well as on refrain's own path.
do
  local here = SCRIPT:match("^(.*)/[^/]*$") or "."
  package.path = package.path .. ";" .. here .. "/../?.lua;" .. here .. "/../?/init.lua"
end

-- A problem with what the user asked for: the message and exit status 2 (1 for a problem found while running).
-- Under refrain --sandbox, os.exit is blocked (it raises an error), as package.loadlib is: there a usage error ends
-- the script as a Lua error carrying the message (exit status 1), rather than the message and then the sandbox's.
local SANDBOXED = not pcall(package.loadlib, "", "")

local function die(msg, status)
  if SANDBOXED then error("run.lua: " .. msg, 0) end
  io.stderr:write("run.lua: ", msg, "\n")
  os.exit(status or 2)
end

-- Command line -----------------------------------------------------------------------------------------------

-- Splits a list on commas that are not inside braces, brackets, parentheses or quotes.
local function split_top(text)
  local parts, depth, quote, start = {}, 0, nil, 1
  for i = 1, #text do
    local c = text:sub(i, i)
    if quote then
      if c == quote and text:sub(i - 1, i - 1) ~= "\\" then quote = nil end
    elseif c == '"' or c == "'" then quote = c
    elseif c == "{" or c == "[" or c == "(" then depth = depth + 1
    elseif c == "}" or c == "]" or c == ")" then depth = depth - 1
    elseif c == "," and depth == 0 then
      parts[#parts + 1] = text:sub(start, i - 1); start = i + 1
    end
  end
  parts[#parts + 1] = text:sub(start)
  local out = {}
  for _, p in ipairs(parts) do
    p = p:match("^%s*(.-)%s*$")
    if p ~= "" then out[#out + 1] = p end
  end
  return out
end

-- A copy of v that JSON can hold: functions and userdata dropped, NaN and infinities as strings, nesting cut at
-- a depth of 12. An lm.list stays one (its holes are written as null).
local function plain(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == "number" then
    if v ~= v then return "nan" elseif v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
    return v
  elseif t == "string" or t == "boolean" then return v
  elseif t == "table" then
    if depth > 12 then return "..." end
    local out = {}
    for k, x in pairs(v) do
      local key = (type(k) == "string" or math.type(k) == "integer") and k or tostring(k)
      out[key] = plain(x, depth + 1)
    end
    if lm.list.is(v) then return lm.list(v.n, out) end
    return out
  end
  return nil
end

-- NAME=MODULE.FUNCTION{OPTIONS} -> {name=, module=, fn=, options=, call=} (call: the canonical text compared on
-- resume: the function and its options as sorted JSON).
local function parse_strategy(text)
  local name, rest = text:match("^([%w_%-%.@]+)=(.+)$")
  rest = rest or text
  local path, body = rest:match("^([%w_%.]+)%s*(%b{})$")
  path = path or rest:match("^([%w_%.]+)$")
  local module, fn = (path or ""):match("^([%w_%.]+)%.([%w_]+)$")
  if not module then
    die(("bad strategy '%s': expected NAME=MODULE.FUNCTION{OPTIONS}, e.g. sc=selection.self_consistency{n=8}"):format(text))
  end
  local options = {}
  if body then
    local chunk, err = load("return " .. body, "=options of " .. (name or path), "t", {})
    if not chunk then die(("bad options for '%s': %s"):format(text, err)) end
    local ok, t = pcall(chunk)
    if not ok or type(t) ~= "table" then die(("bad options for '%s': %s"):format(text, tostring(t))) end
    options = t
  end
  if options.seed ~= nil then
    die(("strategy '%s' sets seed: the runner gives every item its own seed (use --seed)"):format(text))
  end
  local ok, json = pcall(lm.json.encode, options)
  if not ok then die(("options for '%s' must be plain data (%s)"):format(text, json)) end
  return {name = name or path, module = module, fn = fn, options = options, spec = rest,
          call = module .. "." .. fn .. json}
end

-- The arguments as a table of settings.
local function parse_args(args)
  local o = {specs = {}, seed = 1, offset = 0, backends = {}}
  local i = 1
  local function value(flag)
    i = i + 1
    if args[i] == nil then die(flag .. " needs a value") end
    return args[i]
  end
  local function integer(flag, text, min)
    local n = math.tointeger(tonumber(text))
    if not n or n < min then die(("%s expects an integer >= %d, got '%s'"):format(flag, min, text)) end
    return n
  end
  while i <= #args do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    if flag then a = flag; table.insert(args, i + 1, inline) end
    if a == "--help" or a == "-h" then io.write(USAGE); os.exit(0)
    elseif a == "--data" then o.data = value(a)
    elseif a == "--n" then o.n = integer(a, value(a), 1)
    elseif a == "--offset" then o.offset = integer(a, value(a), 0)
    elseif a == "--seed" then o.seed = integer(a, value(a), 0)
    elseif a == "--seeds" then o.seeds = integer(a, value(a), 1)
    elseif a == "--deterministic" then
      o.deterministic = o.deterministic or {}
      for _, name in ipairs(split_top(value(a))) do o.deterministic[#o.deterministic + 1] = name end
    elseif a == "--model" then o.model = value(a)
    elseif a == "--threads" then o.threads = integer(a, value(a), 1)
    elseif a == "--backend" then o.backends[#o.backends + 1] = value(a)
    elseif a == "--backend-model" then o.backend_model = value(a)
    elseif a == "--api-key-env" then o.api_key_env = value(a)
    elseif a == "--concurrency" then o.concurrency = integer(a, value(a), 1)
    elseif a == "--workers" then o.workers = integer(a, value(a), 1)
    elseif a == "--batch" then o.batch = integer(a, value(a), 1)
    elseif a == "--worker" then
      local text = value(a)
      local w, k = text:match("^(%d+)/(%d+)$")
      w, k = math.tointeger(tonumber(w)), math.tointeger(tonumber(k))
      if not w or w < 1 or w > k then die(("--worker expects I/K with 1 <= I <= K, got '%s'"):format(text)) end
      o.worker = {index = w, count = k}
    elseif a == "--strategies" then
      for _, s in ipairs(split_top(value(a))) do o.specs[#o.specs + 1] = s end
    elseif a == "--strategy" then o.specs[#o.specs + 1] = value(a)
    elseif a == "--baseline" then o.baseline = value(a)
    elseif a == "--out" then o.out = value(a)
    elseif a == "--experiment" then o.experiment = value(a)
    elseif a == "--report" then o.report = true
    else die(("unknown argument '%s'\n%s"):format(a, USAGE)) end
    i = i + 1
  end
  if not o.out then die("--out DIR is required\n" .. USAGE) end
  o.out = o.out:gsub("/+$", "")
  if o.out == "" then o.out = "/" end
  if not o.experiment and o.out:sub(1, 1) == "/" then o.experiment = o.out end
  if not o.experiment then
    -- The absolute folder, so that the same --out given from another directory is another experiment.
    o.experiment = lm.fs.cwd() .. "/" .. o.out:gsub("^%./", "")
  end
  if not o.report then o.seeds = o.seeds or 1 end
  o.workers = o.workers or (#o.backends > 1 and #o.backends or 1)
  o.batch = o.batch or 1
  if not o.report and not o.worker and o.workers > 1 then
    -- In the sandbox, os.execute and io.popen raise an error (and os.exit too, so this is an error, not die).
    if not pcall(os.execute) then
      error("run.lua: --workers " .. o.workers .. " starts child processes, and os.execute or io.popen is not "
        .. "available here (refrain --sandbox): use --workers 1", 0)
    end
  end
  if not o.report then
    if not o.data then die("--data is required (arithmetic, gsm8k:PATH or jsonl:PATH)") end
    if #o.specs == 0 then die("--strategies is required, e.g. --strategies 'greedy=selection.self_consistency{n=1,temperature=0}'") end
  end
  o.strategies = {}
  local seen = {}
  for _, text in ipairs(o.specs) do
    local s = parse_strategy(text)
    if seen[s.name] then die(("two strategies are named '%s'"):format(s.name)) end
    seen[s.name] = true
    o.strategies[#o.strategies + 1] = s
  end
  o.fixed = {}
  for _, name in ipairs(o.deterministic or {}) do
    if not o.report and not seen[name] then die(("--deterministic %s is not one of the strategies"):format(name)) end
    o.fixed[name] = true
  end
  return o
end

-- A word as the shell would read it back.
local function shell_quote(s)
  if s:match("^[%w%-%._/=:@+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function command_line(args)
  local words = {"refrain", "run", shell_quote(SCRIPT)}
  for _, a in ipairs(args) do words[#words + 1] = shell_quote(a) end
  return table.concat(words, " ")
end

-- Files -----------------------------------------------------------------------------------------------------

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write_file(path, text)
  local f, err = io.open(path, "w")
  if not f then die("cannot write " .. tostring(err), 1) end
  f:write(text)
  f:close()
end

-- Reads DIR/results.jsonl. A last line cut short (the process was killed while writing it) is ignored, and with
-- `repair` (a run about to append) removed from the file; --report leaves the file alone, since a run may be
-- writing that line right now. A bad line anywhere else is an error. -> lines (decoded)
local function read_results(path, repair)
  local text = read_all(path)
  if not text or text == "" then return {} end
  local lines, rows = {}, {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  -- What follows the last newline (found from the start with one greedy match: an unanchored "([^\n]*)$" retries
  -- from every position and takes minutes on a file of long lines).
  local tail = text:sub((text:match("^.*\n()") or 1))
  local cut = tail ~= "" and tail or nil
  for i, line in ipairs(lines) do
    if line ~= "" then
      local v, err = lm.json.try_decode(line)
      if v == nil or type(v) ~= "table" then
        if i == #lines and not cut then cut = line
        else die(("%s:%d: not a result line (%s): move the file away or fix it"):format(path, i, tostring(err)), 1) end
      else
        rows[#rows + 1] = v
      end
    end
  end
  if cut and repair then
    io.stderr:write(("run.lua: %s: dropping an unfinished last line (%d bytes)\n"):format(path, #cut))
    local keep = {}
    for _, r in ipairs(rows) do keep[#keep + 1] = lm.json.encode(r) .. "\n" end
    write_file(path, table.concat(keep))
  end
  return rows
end

-- Data -------------------------------------------------------------------------------------------------------

-- The items for --data, with their position (index) in this run.
local function load_items(o)
  local kind, rest = o.data:match("^(%w+):?(.*)$")
  local items
  if kind == "arithmetic" then
    local steps = rest == "" and "mixed" or (math.tointeger(tonumber(rest)) or rest)
    if steps ~= 1 and steps ~= 2 and steps ~= "mixed" then die("--data arithmetic:STEPS takes 1, 2 or mixed, got '" .. rest .. "'") end
    items = lm.tasks.arithmetic({n = (o.n or 200) + o.offset, seed = o.seed, steps = steps})
    items = table.move(items, o.offset + 1, #items, 1, {})
  elseif kind == "gsm8k" or kind == "jsonl" then
    local path = rest ~= "" and rest or (kind == "gsm8k" and os.getenv("REFRAIN_GSM8K")) or nil
    if not path then
      die(kind == "gsm8k"
        and "--data gsm8k needs the GSM8K test set: --data gsm8k:PATH/test.jsonl, or set REFRAIN_GSM8K=PATH"
        or "--data jsonl:PATH needs a path", 1)
    end
    if not exists(path) then die(("--data %s: no file at %s"):format(kind, path), 1) end
    if kind == "gsm8k" then
      items = lm.data.gsm8k(path, {n = o.n, offset = o.offset})
    else
      items = {}
      local base = path:match("([^/]+)$"):gsub("%.jsonl$", "")
      for i, v in ipairs(lm.data.jsonl(path, {n = o.n, offset = o.offset})) do
        if type(v) ~= "table" or v.question == nil then die(("%s: item %d has no question field"):format(path, i), 1) end
        v.id = v.id ~= nil and tostring(v.id) or ("%s-%d"):format(base, o.offset + i)
        items[i] = v
      end
    end
  else
    die(("unknown --data '%s' (arithmetic[:STEPS], gsm8k[:PATH], jsonl:PATH)"):format(o.data))
  end
  if #items == 0 then die("--data " .. o.data .. " gave no items", 1) end
  return items
end

-- Running ----------------------------------------------------------------------------------------------------

-- The strategy function for a parsed spec.
local function resolve(s)
  local ok, mod = pcall(require, "strategies." .. s.module)
  if not ok then die(("strategy '%s': cannot load strategies.%s:\n%s"):format(s.name, s.module, mod), 1) end
  local fn = type(mod) == "table" and mod[s.fn]
  if type(fn) ~= "function" then
    local names = {}
    if type(mod) == "table" then for k, v in pairs(mod) do if type(v) == "function" then names[#names + 1] = k end end end
    table.sort(names)
    die(("strategy '%s': strategies.%s has no function '%s' (it has: %s)"):format(s.name, s.module, s.fn,
      table.concat(names, ", ")), 1)
  end
  return fn
end

-- A model call as the result line keeps it: what was asked and what came back, without token ids and
-- log-probabilities.
local function call_summary(c)
  local s = {kind = c.kind, index = c.index, n = c.n, opts = plain(c.opts), prompt = plain(c.prompt),
             continuation = c.continuation, options = plain(c.options), chosen = c.chosen, outputs = {}}
  for i, out in ipairs(c.outputs or {}) do
    s.outputs[i] = {text = out.text, finish = out.finish, usage = plain(out.usage), sum = plain(out.sum),
                    mean = plain(out.mean), option = out.option, score = plain(out.score),
                    tokens = out.ids and #out.ids or nil}
  end
  return s
end

local CORE = {answer = true, correct = true, calls = true, injected = true, tokens = true, seconds = true,
              strategy = true, item = true}
local EXTRA_LIMIT = 2000   -- bytes of JSON: a strategy's own fields larger than this (sample lists) are dropped

-- Whether any call of a result was cut off by an interrupt (such a result is not kept).
local function cancelled(r)
  for _, c in ipairs(r.calls or {}) do
    for _, out in ipairs(c.outputs or {}) do if out.finish == "cancelled" then return true end end
  end
  return false
end

-- The line for one (item, strategy) result.
local function result_line(o, s, item, index, seed, r, wall, model_name)
  local line = {item = item.id, index = index, strategy = s.name, call = s.call, data = o.data, seed = seed,
                model = model_name, gold = plain(item.answer), answer = plain(r.answer), seconds = wall,
                strategy_seconds = plain(r.seconds), injected = plain(r.injected or {}), calls = {}}
  local t = r.tokens or {}
  line.tokens = {prompt = t.prompt or 0, completion = t.completion or 0, cached = t.cached or 0,
                 scored = t.scored or 0, calls = t.calls or #(r.calls or {})}
  for i, c in ipairs(r.calls or {}) do line.calls[i] = call_summary(c) end
  if type(r.correct) == "boolean" then
    line.correct, line.graded_by = r.correct, "strategy"
  else
    local gold = item.answer
    if type(gold) == "number" or tonumber(gold) then
      line.correct = lm.verify.numeric(type(r.answer) == "string" and lm.extract.number(r.answer) or r.answer, gold)
    else
      line.correct = lm.verify.normalized(r.answer, gold)
    end
    line.graded_by = "runner"
  end
  local extra, dropped = {}, {}
  for k, v in pairs(r) do
    if not CORE[k] then
      local p = plain(v)
      local ok, enc = pcall(lm.json.encode, p)
      if ok and #enc <= EXTRA_LIMIT then extra[k] = p else dropped[#dropped + 1] = tostring(k) end
    end
  end
  table.sort(dropped)
  if next(extra) then line.extra = extra end
  if #dropped > 0 then line.dropped = dropped end
  return line
end

local function basename(path) return (tostring(path):match("([^/]+)$") or path) end

-- Checks that a line already in the file belongs to this experiment. `where` names the line in the message
-- (default: "PATH line K").
local function check_line(path, k, line, o, byname, model_name, where)
  local function differ(what, had, now)
    die(("%s was run with %s %s, this run has %s: use another --out (or another strategy name)")
      :format(where or (path .. " line " .. k), what, tostring(had), tostring(now)), 1)
  end
  if line.data ~= o.data then differ("--data", line.data, o.data) end
  if line.model ~= model_name then differ("model", line.model, model_name) end
  local s = byname[line.strategy]
  if s and line.call ~= s.call then differ("strategy " .. line.strategy .. " =", line.call, s.call) end
end

-- Report -----------------------------------------------------------------------------------------------------

local grading = require "experiments.grading"

local function mean_of(rows, get)
  if #rows == 0 then return nil end
  local s = 0
  for _, r in ipairs(rows) do s = s + (get(r) or 0) end
  return s / #rows
end

local function mean(xs)
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return #xs > 0 and s / #xs or nil
end

--- The data set a --data spec names, for titles and headings (never a path of the machine that ran it):
--- "arithmetic (seed 1)", "GSM8K test.jsonl", "items.jsonl".
local function data_label(data, seed)
  local kind, rest = tostring(data):match("^(%w+):?(.*)$")
  if kind == "arithmetic" then
    return ("arithmetic%s (seed %d)"):format(rest ~= "" and " " .. rest .. "-step" or "", seed or 1)
  elseif kind == "gsm8k" then
    return "GSM8K " .. (rest ~= "" and rest:match("([^/]+)$"):gsub("%.jsonl$", "") or "test")
  elseif kind == "jsonl" then
    return rest:match("([^/]+)$") or rest
  end
  return tostring(data)
end

-- Lines of arithmetic runs written before the runner recorded each item's template get it from the generator,
-- which makes the same items again from the run's --data, --seed, --n and --offset (matched by item id, and only
-- where the line's gold is the item's answer), so that the report resamples and tests their items by template as
-- it does a new run's. The lines on disk are left as they are.
local function fill_templates(meta, lines)
  local missing = false
  for _, l in ipairs(lines) do missing = missing or l.template == nil end
  if not missing or not tostring(meta.data or ""):match("^arithmetic") then return end
  local max = meta.n or 0
  for _, l in ipairs(lines) do max = math.max(max, math.tointeger(l.index) or 0) end
  local byid = {}
  for _, item in ipairs(load_items({data = meta.data, n = max, seed = meta.seed or 1, offset = meta.offset or 0})) do
    byid[tostring(item.id)] = item
  end
  for _, l in ipairs(lines) do
    local item = byid[tostring(l.item)]
    if l.template == nil and item and item.template ~= nil and l.gold ~= nil
        and lm.verify.numeric(l.gold, item.answer) == true then
      l.template = tostring(item.template)
    end
  end
end

-- The numbers of the report, from result lines: one entry per strategy, in order. Every line is graded twice: by
-- its strategy (line.correct) and by the common final-answer grader (experiments.grading); the accuracy, the
-- intervals and the tests are the common grader's. With seed sets, an item's score is its mean over the sets it
-- has; intervals resample items (whole templates when every item has one: a cluster bootstrap), and the test is
-- McNemar's on single right/wrong pairs, else a sign-flip permutation test on the items' (templates') differences.
local function summarize(lines, names, baseline, n, seeds, fixed)
  local by = {}        -- by[name][index][set] = line
  for _, name in ipairs(names) do by[name] = {} end
  for _, l in ipairs(lines) do
    local set = math.tointeger(l.seed_set) or 1
    local t = by[l.strategy]
    if t and (not n or l.index <= n) and set <= seeds then
      t[l.index] = t[l.index] or {}
      if not t[l.index][set] then t[l.index][set] = l end
    end
  end
  -- A deterministic arm (--deterministic) ran in set 1 only: that line stands for every set.
  for name in pairs(fixed or {}) do
    for _, sets in pairs(by[name] or {}) do
      for set = 2, seeds do sets[set] = sets[set] or sets[1] end
    end
  end
  -- Per item of an arm: {common = mean over sets, own = mean over sets, sets = count, template = ...}
  local function item_scores(name)
    local out, idx = {}, {}
    for i in pairs(by[name]) do idx[#idx + 1] = i end
    table.sort(idx)
    for _, i in ipairs(idx) do
      local c, w, k, template = 0, 0, 0, nil
      for set = 1, seeds do
        local l = by[name][i][set]
        if l then
          local g = l._common or grading.line(l)
          l._common = g
          if g.correct ~= nil then       -- a line its strategy left ungraded (echo.causal's right traces) is left out
            k = k + 1
            c = c + (g.correct and 1 or 0)
            w = w + (l.correct == true and 1 or 0)
            template = template or l.template
          end
        end
      end
      if k > 0 then out[i] = {common = c / k, own = w / k, sets = k, template = template} end
    end
    local kept = {}
    for _, i in ipairs(idx) do if out[i] then kept[#kept + 1] = i end end
    return out, kept
  end
  local base_scores = by[baseline] and item_scores(baseline) or {}
  local out = {}
  for _, name in ipairs(names) do
    local scores, idx = item_scores(name)
    local e = {name = name, n = #idx, pairs = 0, deterministic = fixed and fixed[name] or nil}
    local lines_of = {}
    for _, i in ipairs(idx) do
      for set = 1, seeds do
        local l = by[name][i][set]
        if l and l._common.correct ~= nil then lines_of[#lines_of + 1] = l; e.pairs = e.pairs + 1 end
      end
    end
    if #idx > 0 then
      e.call = lines_of[1].call
      local common, own, clusters, templated = {}, {}, {}, true
      for k, i in ipairs(idx) do
        common[k], own[k] = scores[i].common, scores[i].own
        clusters[k] = scores[i].template
        if clusters[k] == nil then templated = false end
      end
      e.clustered = templated or nil
      local copts = templated and {clusters = clusters} or nil
      local lo, hi, acc = lm.stats.bootstrap_ci(common, copts)
      e.accuracy, e.ci = acc, {lo, hi}
      e.own = mean(own)
      e.correct = 0
      for _, l in ipairs(lines_of) do if l._common.correct then e.correct = e.correct + 1 end end
      -- Per seed set: the accuracy over the items that set has.
      e.per_set = {}
      for set = 1, seeds do
        local c, k = 0, 0
        for _, i in ipairs(idx) do
          local l = by[name][i][set]
          if l and l._common.correct ~= nil then k = k + 1; c = c + (l._common.correct and 1 or 0) end
        end
        if k > 0 then e.per_set[#e.per_set + 1] = {set = set, items = k, accuracy = c / k} end
      end
      if #e.per_set > 1 then
        local accs = {}
        for j, p in ipairs(e.per_set) do accs[j] = p.accuracy end
        table.sort(accs)
        e.spread = {min = accs[1], max = accs[#accs], sd = lm.stats.sd(accs)}
      end
      -- Truncation: the final texts cut at the budget, and the accuracy of the lines none of whose were.
      local traces, cut, fin, fin_right = 0, 0, 0, 0
      for _, l in ipairs(lines_of) do
        local g = l._common
        traces, cut = traces + (g.traces or 0), cut + (g.cut or 0)
        if g.correct ~= nil and g.finished then
          fin = fin + 1
          if g.correct then fin_right = fin_right + 1 end
        end
      end
      e.truncation = {traces = traces, cut = cut, share = traces > 0 and cut / traces or nil,
                      finished = fin, finished_accuracy = fin > 0 and fin_right / fin or nil}
      e.tokens = {
        prompt = mean_of(lines_of, function(r) return r.tokens.prompt end),
        completion = mean_of(lines_of, function(r) return r.tokens.completion end),
        cached = mean_of(lines_of, function(r) return r.tokens.cached end),
        scored = mean_of(lines_of, function(r) return r.tokens.scored end),
      }
      e.calls = mean_of(lines_of, function(r) return r.tokens.calls end)
      e.seconds = mean_of(lines_of, function(r) return r.seconds end)
      if name ~= baseline and by[baseline] then
        local a, b, cl = {}, {}, {}
        for _, i in ipairs(idx) do
          if base_scores[i] then a[#a + 1], b[#b + 1], cl[#cl + 1] = scores[i].common, base_scores[i].common, scores[i].template end
        end
        if #a > 0 then
          local popts = templated and {clusters = cl} or nil
          local d = lm.stats.paired(a, b, popts)
          e.paired = {n = d.n, diff = d.diff, ci = {d.lo, d.hi}, wins = d.wins, losses = d.losses}
          local binary = seeds == 1 and not templated
          if binary then
            local t = lm.stats.mcnemar(a, b)
            e.test = {p = t.p, method = "McNemar " .. t.method, b10 = t.b10, b01 = t.b01}
          else
            local diffs = {}
            for k = 1, #a do diffs[k] = a[k] - b[k] end
            local t = lm.stats.sign_flip(diffs, popts)
            e.test = {p = t.p, method = "sign-flip " .. t.method .. (templated and " by template" or ""),
                      units = t.units}
          end
        end
      end
    end
    out[#out + 1] = e
  end
  -- Holm over the comparisons of this table.
  local ps, at = {}, {}
  for k, e in ipairs(out) do if e.test then ps[#ps + 1] = e.test.p; at[#at + 1] = k end end
  if #ps > 0 then
    local adj = lm.stats.holm(ps)
    for j, k in ipairs(at) do out[k].test.holm = adj[j] end
  end
  return out
end

local function f3(x) return x and ("%.3f"):format(x) or "—" end
local function signed(x) return ("%+.3f"):format(x) end
local function pval(p) return p < 0.001 and "<0.001" or ("%.3f"):format(p) end
local function f1(x) return x and ("%.1f"):format(x) or "" end
local function f2(x) return x and ("%.2f"):format(x) or "" end

-- The Markdown table (what results.md and the end of a run show).
local function markdown_table(rows, baseline, seeds)
  local t = {
    ("| strategy | items%s | accuracy [95%% CI] | %sΔ vs %s [95%% CI] | p | Holm p | won / lost | own grader | cut at budget | "
      .. "accuracy if finished (n) | tokens gen./item | calls/item | s/item |")
      :format(seeds > 1 and " × sets" or "", seeds > 1 and "seed-set spread | " or "", baseline),
    "|---|--:|---|" .. (seeds > 1 and "---|" or "") .. "---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  }
  for _, e in ipairs(rows) do
    local acc = e.accuracy and ("%s [%s, %s]"):format(f3(e.accuracy), f3(e.ci[1]), f3(e.ci[2])) or "—"
    local diff, p, holm, wl = "—", "—", "—", "—"
    if e.name == baseline then diff = "(baseline)"
    elseif e.paired then
      diff = ("%s [%s, %s]"):format(signed(e.paired.diff), signed(e.paired.ci[1]), signed(e.paired.ci[2]))
      p, holm = pval(e.test.p), pval(e.test.holm)
      wl = ("%d / %d"):format(e.paired.wins, e.paired.losses)
    end
    local items = seeds > 1 and ("%d × %s"):format(e.n, e.n > 0 and f1(e.pairs / e.n) or "0") or tostring(e.n)
    if seeds > 1 and e.deterministic then items = ("%d × 1 (deterministic)"):format(e.n) end
    local spread = ""
    if seeds > 1 then
      spread = (e.spread and ("%s–%s (sd %s)"):format(f3(e.spread.min), f3(e.spread.max), f3(e.spread.sd)) or "—") .. " | "
    end
    local tr = e.truncation or {}
    local cut = tr.share and ("%.0f%%"):format(100 * tr.share) or "—"
    local fin = tr.finished and tr.finished > 0 and ("%s (%d)"):format(f3(tr.finished_accuracy), tr.finished) or "—"
    t[#t + 1] = ("| %s | %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s |"):format(e.name, items, acc,
      spread, diff, p, holm, wl, f3(e.own), cut, fin, f1(e.tokens and e.tokens.completion), f2(e.calls), f1(e.seconds))
  end
  return table.concat(t, "\n")
end

local function csv_field(v)
  if v == nil then return "" end
  v = type(v) == "number" and (math.type(v) == "integer" and tostring(v) or ("%.6g"):format(v)) or tostring(v)
  if v:find('[,"\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

local function write_csv(path, rows)
  local head = {"strategy", "call", "items", "item_runs", "correct", "accuracy", "accuracy_lo", "accuracy_hi",
                "accuracy_own_grader", "seed_set_min", "seed_set_max", "seed_set_sd", "paired_items", "diff", "diff_lo",
                "diff_hi", "p", "p_holm", "test", "won", "lost", "cut_share", "finished", "finished_accuracy",
                "prompt_tokens_per_item", "completion_tokens_per_item", "cached_tokens_per_item",
                "scored_tokens_per_item", "calls_per_item", "seconds_per_item"}
  local out = {table.concat(head, ",")}
  for _, e in ipairs(rows) do
    local p, t, tok, sp, tr = e.paired or {ci = {}}, e.test or {}, e.tokens or {}, e.spread or {}, e.truncation or {}
    local v = {e.name, e.call, e.n, e.pairs, e.correct, e.accuracy, e.ci and e.ci[1], e.ci and e.ci[2], e.own,
               sp.min, sp.max, sp.sd, p.n, p.diff, p.ci[1], p.ci[2], t.p, t.holm, t.method, p.wins, p.losses,
               tr.share, tr.finished, tr.finished_accuracy, tok.prompt, tok.completion, tok.cached, tok.scored,
               e.calls, e.seconds}
    local fields = {}
    for i = 1, #head do fields[i] = csv_field(v[i]) end
    out[#out + 1] = table.concat(fields, ",")
  end
  write_file(path, table.concat(out, "\n") .. "\n")
end

-- The command as results.md shows it: the --out folder as DIR (a path of the machine that ran it).
local function shown_command(command)
  return (command:gsub("%-%-out[ =]%S+", "--out DIR"))
end

-- Writes results.md, results.csv, summary.json and accuracy.svg into the out folder; returns the table.
local function write_report(dir, meta, lines, baseline, n, seeds)
  local names = {}
  for _, s in ipairs(meta.strategies) do names[#names + 1] = s.name end
  local fixed = {}
  for _, name in ipairs(meta.deterministic or {}) do fixed[name] = true end
  fill_templates(meta, lines)
  local rows = summarize(lines, names, baseline, n, seeds, fixed)
  local tbl = markdown_table(rows, baseline, seeds)
  local total, comparisons = 0, 0
  for _, e in ipairs(rows) do
    total = math.max(total, e.n)
    if e.test then comparisons = comparisons + 1 end
  end
  local label = data_label(meta.data, meta.seed)
  local clustered = false
  for _, e in ipairs(rows) do clustered = clustered or e.clustered == true end
  local md = {
    ("# %s: %s"):format(label, table.concat(names, " vs ")), "",
    "```sh", shown_command(meta.command), "```", "",
    ("- data: %s, %d items (asked for %d), seed %d%s"):format(label, total, n or meta.n,
      meta.seed, meta.offset > 0 and (", from item %d"):format(meta.offset + 1) or ""),
    ("- model: `%s` (%s)%s"):format(meta.model, meta.model_name or "?",
      meta.backends and (", served at %s"):format(table.concat(meta.backends, ", ")) or ""),
    ("- baseline: `%s`; every strategy gets the same seed for an item (%d·10⁶ + 1000·i%s)"):format(baseline,
      meta.seed, seeds > 1 and (" + 10¹²·(j − 1) in seed set j; %d seed sets"):format(seeds) or "; one seed set"),
    ("- graded by the common final-answer grader: %s; `own grader` is each strategy's own verdict"):format(grading.rule),
    ("- %d comparison%s in this table (Holm-adjusted p beside the raw p)"):format(comparisons, comparisons == 1 and "" or "s"),
    "", tbl, "", "Strategies:", "",
  }
  for _, s in ipairs(meta.strategies) do md[#md + 1] = ("- `%s` = `%s`"):format(s.name, s.spec) end
  if seeds > 1 then
    md[#md + 1] = ""
    md[#md + 1] = "Accuracy per seed set (common grader):"
    md[#md + 1] = ""
    for _, e in ipairs(rows) do
      local parts = {}
      for _, p in ipairs(e.per_set or {}) do parts[#parts + 1] = ("%d: %s"):format(p.set, f3(p.accuracy)) end
      md[#md + 1] = ("- %s: %s"):format(e.name, #parts > 0 and table.concat(parts, ", ") or "—")
    end
  end
  local short = {}
  for _, e in ipairs(rows) do
    if e.n < total then short[#short + 1] = ("%s has %d of %d items"):format(e.name, e.n, total) end
    if e.pairs < e.n * seeds and not e.deterministic then short[#short + 1] = ("%s has %d of %d item runs"):format(e.name, e.pairs, e.n * seeds) end
  end
  if #short > 0 then md[#md + 1] = ""; md[#md + 1] = "**Incomplete:** " .. table.concat(short, "; ") .. "." end
  md[#md + 1] = ""
  md[#md + 1] = "Accuracy: the share of items answered correctly by the common grader"
    .. (seeds > 1 and " (an item's score is its mean over the seed sets)" or "")
    .. ", with a 95% percentile bootstrap interval over items"
    .. (clustered and " that resamples whole templates (a cluster bootstrap: items of one template rise and fall together)" or "")
    .. " (lm.stats.bootstrap_ci, 2000 resamples, seed 1). Δ: the paired difference in accuracy to the baseline on the "
    .. "items both have, with a paired bootstrap interval (lm.stats.paired). p: "
    .. ((seeds == 1 and not clustered) and "McNemar's test on the same pairs (exact binomial under 25 discordant items)"
        or ("a sign-flip permutation test on the items' differences" .. (clustered and ", signs flipped per template" or "")
            .. " (lm.stats.sign_flip)"))
    .. "; Holm p: adjusted over this table's comparisons (lm.stats.holm). won / lost: items scored higher here than in "
    .. "the baseline, and the reverse. Own grader: the accuracy by each strategy's own verdict. Cut at budget: the "
    .. "share of the final texts (the samples voted on, the attempts, the answer's text) that stopped at the token "
    .. "limit; accuracy if finished: over the item runs none of whose final texts was cut (how many in brackets). "
    .. "Tokens gen.: completion tokens generated per item (prompt, cached and scored tokens are in results.csv); "
    .. "calls: model calls per item; s: wall seconds per item on the machine that ran it."
  write_file(dir .. "/results.md", table.concat(md, "\n") .. "\n")
  write_csv(dir .. "/results.csv", rows)
  local summary = {command = shown_command(meta.command), data = label, seed = meta.seed, seeds = seeds,
                   offset = meta.offset, n = n or meta.n, model = meta.model, model_name = meta.model_name,
                   baseline = baseline, grader = grading.rule, comparisons = comparisons, strategies = {}}
  for i, e in ipairs(rows) do
    summary.strategies[i] = {name = e.name, call = e.call, spec = meta.strategies[i].spec, items = e.n,
                             item_runs = e.pairs, correct = e.correct, accuracy = e.accuracy, ci = e.ci,
                             accuracy_own_grader = e.own, per_seed_set = e.per_set, spread = e.spread,
                             paired = e.paired, test = e.test, truncation = e.truncation, tokens = e.tokens,
                             calls = e.calls, seconds = e.seconds, clustered = e.clustered}
  end
  write_file(dir .. "/summary.json", lm.json.encode(plain(summary)) .. "\n")
  local groups = {}
  for _, e in ipairs(rows) do
    if e.accuracy then groups[#groups + 1] = {label = e.name, value = e.accuracy, lo = e.ci[1], hi = e.ci[2]} end
  end
  if #groups > 0 then
    lm.plot.bars(groups, {file = dir .. "/accuracy.svg", ymin = 0, ymax = 1, ylabel = "accuracy (95% bootstrap CI)",
                          title = ("%s, %d items%s, %s"):format(label, total,
                            seeds > 1 and (" × %d seed sets"):format(seeds) or "", meta.model_name or meta.model)})
  end
  return tbl
end

-- Running the pairs, in this process or in workers -----------------------------------------------------------

-- The seeds of seed set j lie this far from set 1's: a strategy may use any seed from its item's seed up (set 1
-- leaves 1000 between items; sets > 1 leave 10^12 between sets).
local SEED_SET_STRIDE = 1000000000000

-- The name a pair has in the run store: the strategy's, with "@j" for seed set j > 1 (set 1 keeps the plain name,
-- so that a store written before --seeds still resumes).
local function store_name(name, set) return set > 1 and ("%s@%d"):format(name, set) or name end

-- The key of a pair in `done`.
local function pair_key(id, name, set) return ("%s\t%s\t%d"):format(tostring(id), tostring(name), set or 1) end

-- The seed, options (the strategy's, with the seed) and run-store labels of strategy s on item i in seed set j.
local function pair_setup(o, s, item, i, set)
  local seed = o.seed * 1000000 + (o.offset + i) * 1000 + (set - 1) * SEED_SET_STRIDE
  local opts = {}
  for k, v in pairs(s.options) do opts[k] = v end
  opts.seed = seed
  return seed, opts, {experiment = o.experiment, item = tostring(item.id), strategy = store_name(s.name, set)}
end

-- Records what strategy s gave on item i (ok and r as xpcall returns them): a line appended to `out` (flushed)
-- and kept in the run store. A failing strategy or an interrupt ends the process; nothing is recorded for that
-- pair. -> the result line
local function finish_pair(o, s, item, i, set, seed, ok, r, wall, model_name, out)
  if not ok then
    out:close()
    die(("strategy '%s' failed on item %s (nothing recorded for it):\n%s"):format(s.name, tostring(item.id), r), 1)
  end
  if type(r) ~= "table" then die(("strategy '%s' returned a %s, not a result table"):format(s.name, type(r)), 1) end
  if cancelled(r) then out:close(); die("interrupted: the last result was not recorded", 130) end
  local line = result_line(o, s, item, i, seed, r, wall, model_name)
  line.seed_base, line.seed_set = o.seed, set
  if item.template ~= nil then line.template = tostring(item.template) end
  if o.batch > 1 then line.batch = o.batch end
  local text = lm.json.encode(line)
  out:write(text, "\n")
  out:flush()
  lm.store.put_result{experiment = o.experiment, item = tostring(item.id), strategy = store_name(s.name, set),
                      data = text}
  return line
end

-- Runs strategy s on item i in seed set `set` and records the result (finish_pair). -> the result line
local function run_pair(o, s, fn, model, item, i, set, model_name, out)
  local seed, opts, labels = pair_setup(o, s, item, i, set)
  local t0 = lm.clock()
  local ok, r = xpcall(lm.store.with, debug.traceback, labels, fn, model, item, opts)
  return finish_pair(o, s, item, i, set, seed, ok, r, lm.clock() - t0, model_name, out)
end

-- --batch K: the pairs of `todo` K at a time as lm.batch jobs, whose generate and sample calls are decoded
-- together; each pair's calls give what they give alone, so its line is the one run_pair would write (but for
-- the seconds, which count the time it shared the machine with the others). Lines come in the order pairs end.
local function run_batched(o, todo, fns, model, model_name, out, lines, bar)
  local jobs, started, seeds = {}, {}, {}
  for j, job in ipairs(todo) do
    local i, item, s, set = job[1], job[2], job[3], job[4]
    jobs[j] = function(m)
      local seed, opts, labels = pair_setup(o, s, item, i, set)
      seeds[j], started[j] = seed, lm.clock()
      return lm.store.with(labels, fns[s.name], m, item, opts)
    end
  end
  lm.batch.run(model, jobs, {size = o.batch, done = function(j, ok, r)
    local i, item, s, set = todo[j][1], todo[j][2], todo[j][3], todo[j][4]
    lines[#lines + 1] = finish_pair(o, s, item, i, set, seeds[j], ok, r, lm.clock() - (started[j] or lm.clock()),
      model_name, out)
    if bar then bar:tick() end
  end})
end

-- The backends worker w of k sends its requests to: backend w (mod B) when there are at least as many workers as
-- backends, else every backend j with j ≡ w (mod k) (so that none is left idle).
local function worker_backends(backends, w, k)
  local mine = {}
  if #backends == 0 then return mine end
  if k >= #backends then return {backends[(w - 1) % #backends + 1]} end
  for j, url in ipairs(backends) do if (j - 1) % k == w - 1 then mine[#mine + 1] = url end end
  return mine
end

local function workers_dir(o) return o.out .. "/workers" end

-- The plan the parent writes for its workers: {workers = K, todo = {{index, strategy, item id}, ...}}; nil when
-- there is none.
local function read_plan(o)
  local text = read_all(workers_dir(o) .. "/plan.json")
  if not text then return nil end
  local plan = lm.json.try_decode(text)
  if type(plan) ~= "table" or not math.tointeger(plan.workers) or type(plan.todo) ~= "table" then
    die(workers_dir(o) .. "/plan.json is not a worker plan: remove it", 1)
  end
  return plan
end

-- Folds the lines workers wrote (DIR/workers/I.jsonl of the plan there, left by this run's workers or by a run that
-- was stopped) into `lines`, `done` and results.jsonl, in item order, and removes the workers' files (their logs
-- too unless keep_logs). check(k, line) validates a line as one of this experiment's. -> how many lines were new
local function absorb_workers(o, results_path, lines, done, check, keep_logs)
  local plan = read_plan(o)
  if not plan then return 0 end
  local dir = workers_dir(o)
  local rank = {}
  for k, s in ipairs(o.strategies) do rank[s.name] = k end
  local new = {}
  for w = 1, plan.workers do
    -- Each line as the worker wrote it (a last line cut short by a kill is left out, as read_results does).
    local path = ("%s/%d.jsonl"):format(dir, w)
    local rows = read_results(path)
    local k = 0
    for text in (read_all(path) or ""):gmatch("([^\n]*)\n") do
      if text ~= "" then
        k = k + 1
        local l = rows[k]
        if l == nil then break end      -- the unfinished last line
        local key = pair_key(l.item, l.strategy, l.seed_set)
        if not done[key] then
          check(#lines + #new + 1, l, ("%s line %d"):format(path, k))
          done[key] = true
          new[#new + 1] = {line = l, text = text}
        end
      end
    end
  end
  table.sort(new, function(a, b)
    a, b = a.line, b.line
    if a.index ~= b.index then return (tonumber(a.index) or 0) < (tonumber(b.index) or 0) end
    if (a.seed_set or 1) ~= (b.seed_set or 1) then return (a.seed_set or 1) < (b.seed_set or 1) end
    return (rank[a.strategy] or math.huge) < (rank[b.strategy] or math.huge)
  end)
  if #new > 0 then
    local f = io.open(results_path, "a") or die("cannot append to " .. results_path, 1)
    for _, n in ipairs(new) do
      f:write(n.text, "\n")
      lines[#lines + 1] = n.line
    end
    f:close()
  end
  for w = 1, plan.workers do
    os.remove(("%s/%d.jsonl"):format(dir, w))
    if not keep_logs then os.remove(("%s/%d.log"):format(dir, w)) end
  end
  os.remove(dir .. "/plan.json")
  if not keep_logs then os.remove(dir) end   -- only when empty
  return #new
end

-- A child runner (--worker W/K): runs its slice of the plan's pairs (the W-th, (W+K)-th, ... of the pending
-- items), appending to DIR/workers/W.jsonl and saying "@worker W done" on standard output after each pair.
local function run_worker(o, items, fns, byname, model, model_name)
  local w, k = o.worker.index, o.worker.count
  local plan = read_plan(o) or die(("--worker %d/%d: no plan at %s/plan.json (--worker is for the runner's own "
    .. "child processes: use --workers K)"):format(w, k, workers_dir(o)), 1)
  if plan.workers ~= k then die(("--worker %d/%d: the plan is for %d workers"):format(w, k, plan.workers), 1) end
  local seen, mine, pos = {}, {}, 0
  for _, p in ipairs(plan.todo) do
    local i = p[1]
    if not seen[i] then
      seen[i] = true
      pos = pos + 1
      if (pos - 1) % k == w - 1 then mine[i] = true end
    end
  end
  local out = io.open(("%s/%d.jsonl"):format(workers_dir(o), w), "a")
    or die(("cannot append to %s/%d.jsonl"):format(workers_dir(o), w), 1)
  local mine_todo = {}
  for _, p in ipairs(plan.todo) do
    local i, name, id, set = p[1], p[2], p[3], math.tointeger(p[4]) or 1
    if mine[i] then
      local item, s = items[i], byname[name]
      if not item or tostring(item.id) ~= id or not s then
        die(("--worker %d/%d: the plan's pair (%s, %s) is not one of this run's"):format(w, k, tostring(id), tostring(name)), 1)
      end
      mine_todo[#mine_todo + 1] = {i, item, s, set}
    end
  end
  local function tick()
    io.stdout:write(("@worker %d done\n"):format(w))
    io.stdout:flush()
  end
  if o.batch > 1 then
    run_batched(o, mine_todo, fns, model, model_name, out, {}, {tick = tick})
  else
    for _, job in ipairs(mine_todo) do
      run_pair(o, job[3], fns[job[3].name], model, job[2], job[1], job[4], model_name, out)
      tick()
    end
  end
  out:close()
end

-- The number of cores (1 when it cannot be told).
local function cores()
  local p = io.popen("getconf _NPROCESSORS_ONLN 2>/dev/null")
  local n = p and math.tointeger(tonumber(p:read("l") or ""))
  if p then p:close() end
  return n and n > 0 and n or 1
end

-- The last `n` lines of a file, indented, or a note that it is empty or missing.
local function tail(path, n)
  local text = read_all(path)
  if not text or text:match("^%s*$") then return "    (nothing)" end
  local rows = {}
  for line in text:gmatch("[^\n]+") do rows[#rows + 1] = line end
  local out = {}
  for i = math.max(1, #rows - n + 1), #rows do out[#out + 1] = "    " .. rows[i] end
  return table.concat(out, "\n")
end

-- The parent of --workers K: writes the plan, starts K child runners (this script, with the same arguments and
-- --worker W/K, under the same refrain binary) from one shell that waits for them all and passes their progress
-- lines on, ticks the progress bar, then folds their lines into results.jsonl. A worker that failed is named with
-- the end of its log, after the lines the others finished are kept. -> the updated lines
local function run_workers(o, args, todo, results_path, lines, done, check, host_model)
  local k, dir = o.workers, workers_dir(o)
  os.execute("mkdir -p " .. shell_quote(dir))
  local pending = {}
  for _, job in ipairs(todo) do pending[#pending + 1] = {job[1], job[3].name, tostring(job[2].id), job[4]} end
  write_file(dir .. "/plan.json", lm.json.encode({workers = k, todo = pending}) .. "\n")
  local host = {shell_quote(lm.executable()), "run"}
  if not lm.store.path() then host[#host + 1] = "--no-store" end
  if #o.backends == 0 then
    local threads = o.threads or math.max(1, cores() // k)
    host[#host + 1] = "--threads " .. threads
    if not o.model then host[#host + 1] = "--model " .. shell_quote(host_model) end
    io.stderr:write(("run.lua: --workers %d on the local model: each worker loads the model and computes with %d "
      .. "thread%s; this is faster than one process only with cores to spare\n"):format(k, threads, threads == 1 and "" or "s"))
  end
  host[#host + 1] = shell_quote(SCRIPT)
  for _, a in ipairs(args) do host[#host + 1] = shell_quote(a) end
  local sh, pids = {}, {}
  for w = 1, k do pids[#pids + 1] = "$p" .. w end
  sh[1] = "trap 'kill " .. table.concat(pids, " ") .. " 2>/dev/null; exit 130' INT TERM HUP"
  for w = 1, k do
    sh[#sh + 1] = ("%s --worker %d/%d </dev/null 2>%s & p%d=$!; echo \"@worker %d pid $p%d\""):format(
      table.concat(host, " "), w, k, shell_quote(("%s/%d.log"):format(dir, w)), w, w, w)
  end
  for w = 1, k do sh[#sh + 1] = ("wait $p%d; echo \"@worker %d exit $?\""):format(w, w) end
  local p = io.popen(table.concat(sh, "\n"), "r") or die("cannot start the workers' shell", 1)
  local bar = lm.progress(#todo, o.data:match("^[^:]*"))
  local pid, status = {}, {}
  for line in p:lines() do
    local w, what, rest = line:match("^@worker (%d+) (%a+) ?(.*)$")
    w = math.tointeger(tonumber(w))
    if w and what == "done" then bar:tick()
    elseif w and what == "pid" then
      pid[w] = rest
      local b = worker_backends(o.backends, w, k)
      print(("worker %d/%d: pid %s%s, log %s/%d.log"):format(w, k, rest,
        #b > 0 and " on " .. table.concat(b, ", ") or "", dir, w))
      io.stdout:flush()
    elseif w and what == "exit" then status[w] = math.tointeger(tonumber(rest))
    else print(line) end     -- what a strategy printed
  end
  p:close()
  local failed = {}
  for w = 1, k do
    if status[w] ~= 0 then
      local how = status[w] == nil and "stopped (no exit status)"
        or status[w] > 128 and ("killed by signal %d"):format(status[w] - 128)
        or ("exited with status %d"):format(status[w])
      failed[#failed + 1] = ("worker %d/%d (pid %s%s) %s; the end of %s/%d.log:\n%s"):format(w, k, pid[w] or "?",
        #o.backends > 0 and ", " .. table.concat(worker_backends(o.backends, w, k), ", ") or "", how, dir, w,
        tail(("%s/%d.log"):format(dir, w), 12))
    end
  end
  local got = absorb_workers(o, results_path, lines, done, check, #failed > 0)
  if #failed > 0 then
    bar:done()
    die(("%s\nkept %d results the workers finished in %s; %d of %d pairs are left: run the same command again "
      .. "to resume"):format(table.concat(failed, "\n"), got, results_path, #todo - got, #todo), 1)
  end
  bar:done()
  return lines
end

-- Main -------------------------------------------------------------------------------------------------------

local args = {}
for i = 1, #arg do args[i] = arg[i] end
local o = parse_args(table.move(args, 1, #args, 1, {}))
lm.fs.mkdir(o.out)   -- not os.execute("mkdir -p"): that is blocked under refrain run --sandbox=DIR
local results_path, meta_path = o.out .. "/results.jsonl", o.out .. "/run.json"

-- One runner per folder: two would both run every pending pair (a runner started twice by mistake). The lock is
-- the kernel's (flock on DIR/.lock), so a runner that was killed leaves none behind; the workers of --workers run
-- under their parent's.
if not o.report and not o.worker then
  local ok, holder = lm.fs.lock(o.out .. "/.lock")
  if not ok then
    die(("%s is in use by another runner (%s): wait for it to finish or stop it; two runners on one folder would "
      .. "both run every pending pair"):format(o.out, holder), 1)
  end
end

if o.report then
  local meta = lm.json.decode(read_all(meta_path) or die("no " .. meta_path .. ": run the experiment first", 1))
  local baseline = o.baseline or meta.baseline
  local lines = read_results(results_path)
  print(write_report(o.out, meta, lines, baseline, o.n or meta.n, o.seeds or meta.seeds or 1))
  print(("wrote %s/results.md, results.csv, summary.json, accuracy.svg"):format(o.out))
  return   -- not os.exit(0), which --sandbox blocks
end

local baseline = o.baseline or o.strategies[1].name
local byname = {}
for _, s in ipairs(o.strategies) do byname[s.name] = s end
if not byname[baseline] then die(("--baseline %s is not one of the strategies"):format(baseline)) end
local fns = {}
for _, s in ipairs(o.strategies) do fns[s.name] = resolve(s) end

local model = lm.model
if #o.backends > 0 then
  if o.model then die("give --model or --backend, not both") end
  local urls = o.worker and worker_backends(o.backends, o.worker.index, o.worker.count) or o.backends
  local ok, m = pcall(lm.remote, {url = urls, model = o.backend_model, api_key_env = o.api_key_env,
                                  concurrency = o.concurrency})
  if not ok then die(tostring(m), 1) end
  model = m
elseif o.model then
  local ok, m = pcall(lm.load, o.model, o.threads and {threads = o.threads} or nil)
  if not ok then die(tostring(m), 1) end
  model = m
end
if model == nil then die("no model: give --model NAME, or start refrain with a model", 1) end
local model_name = basename(model.info.path)

local items = load_items(o)
local meta = {command = shown_command(command_line(args)), data = o.data, seed = o.seed, seeds = o.seeds,
              deterministic = o.deterministic, offset = o.offset, n = #items,
              model = model_name, model_name = model.info.name, baseline = baseline, strategies = {}}
for i, s in ipairs(o.strategies) do meta.strategies[i] = {name = s.name, spec = s.spec, call = s.call} end
if #o.backends > 0 then meta.backends, meta.backend_model = o.backends, model.model end

if o.worker then
  run_worker(o, items, fns, byname, model, model_name)
  os.exit(0)
end

-- What is there already: results.jsonl, then what the run store kept for this experiment that the file lacks (the
-- file was lost, or cut short by a crash), appended to the file.
local lines = read_results(results_path, true)
local done = {}
local function check(k, l, where)
  check_line(results_path, k, l, o, byname, model_name, where)
  if l.seed_base and l.seed_base ~= o.seed then die(("%s line %d has --seed %s"):format(results_path, k, l.seed_base), 1) end
end
for k, l in ipairs(lines) do
  check(k, l)
  done[pair_key(l.item, l.strategy, l.seed_set)] = true
end
local absorbed = absorb_workers(o, results_path, lines, done, check)
if absorbed > 0 then print(("kept %d results the workers of a stopped run had written"):format(absorbed)) end
if lm.store.path() then
  local restored, unbacked, sandboxed = {}, 0, 0
  for _, r in ipairs(lm.store.results{experiment = o.experiment}) do
    local l = lm.json.decode(r.data)
    local key = pair_key(l.item, l.strategy, l.seed_set)
    if not done[key] and r.calls == 0 then
      -- No call of the store made it (written by something other than a run of its pair): run the pair again.
      unbacked = unbacked + 1
    elseif not done[key] and r.sandboxed then
      -- Written by a script under refrain --sandbox of another folder (or read outside any): not restored.
      sandboxed = sandboxed + 1
    elseif not done[key] then
      -- Not in the file: the store kept it when the file was moved, lost or cut short.
      check(#lines + 1, l, ("the run store's result for item %s, strategy %s, of experiment %s (kept there, not "
        .. "in %s; --experiment NAME starts afresh)"):format(r.item, r.strategy, o.experiment, results_path))
      lines[#lines + 1] = l
      restored[#restored + 1] = r.data .. "\n"
      done[key] = true
    end
  end
  if #restored > 0 then
    local f = io.open(results_path, "a") or die("cannot append to " .. results_path, 1)
    f:write(table.concat(restored))
    f:close()
    print(("restored %d results from the run store (experiment %s)"):format(#restored, o.experiment))
  end
  if sandboxed > 0 then
    io.stderr:write(("run.lua: warning: %d results the run store holds for experiment %s were written by a sandboxed "
      .. "run; they are not restored here, and their pairs run again\n"):format(sandboxed, o.experiment))
  end
  if unbacked > 0 then
    io.stderr:write(("run.lua: warning: %d results the run store holds for experiment %s have no calls under their "
      .. "labels in the store; they are not restored, and their pairs run again\n"):format(unbacked, o.experiment))
  end
end
write_file(meta_path, lm.json.encode(meta) .. "\n")
local todo, skipped = {}, 0
for set = 1, o.seeds do
  for i, item in ipairs(items) do
    for _, s in ipairs(o.strategies) do
      if done[pair_key(item.id, s.name, set)] then skipped = skipped + 1
      elseif not (set > 1 and o.fixed[s.name]) then todo[#todo + 1] = {i, item, s, set} end
    end
  end
end
print(("%d items × %d strategies%s on %s: %d to run, %d skipped (already in %s)"):format(#items, #o.strategies,
  o.seeds > 1 and (" × %d seed sets"):format(o.seeds) or "", model_name, #todo, skipped, results_path))
io.stdout:flush()

local pending_items = {}
for _, job in ipairs(todo) do pending_items[job[1]] = true end
local n_pending = 0
for _ in pairs(pending_items) do n_pending = n_pending + 1 end
if o.workers > 1 and n_pending > 1 then
  o.workers = math.min(o.workers, n_pending)
  run_workers(o, args, todo, results_path, lines, done, check, lm.model and lm.model.info.path)
else
  local out = io.open(results_path, "a") or die("cannot append to " .. results_path, 1)
  local bar = lm.progress(#todo, o.data:match("^[^:]*"))
  if o.batch > 1 then
    run_batched(o, todo, fns, model, model_name, out, lines, bar)
  else
    for _, job in ipairs(todo) do
      local i, item, s, set = job[1], job[2], job[3], job[4]
      lines[#lines + 1] = run_pair(o, s, fns[s.name], model, item, i, set, model_name, out)
      bar:tick()
    end
  end
  out:close()
  bar:done()
end
print(write_report(o.out, meta, lines, baseline, #items, o.seeds))
print(("wrote %s/results.jsonl, results.md, results.csv, summary.json, accuracy.svg"):format(o.out))
