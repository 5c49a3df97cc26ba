-- A tiny test helper for the Lua tests: T.test(name, fn) runs one case, T.eq / T.ok / T.err check, T.done()
-- prints the tally and exits non-zero when a case failed or none ran. Load it with dofile next to the test file.
local T = { passed = 0, failed = 0 }

local function show(v) return type(v) == "string" and string.format("%q", v) or tostring(v) end

function T.ok(cond, msg)
  if not cond then error(msg or "expected a true value", 2) end
end

function T.eq(got, want, msg)
  if got ~= want then error((msg and msg .. ": " or "") .. "expected " .. show(want) .. ", got " .. show(got), 2) end
end

-- Checks that fn raises an error whose message contains `text` (plain text, not a pattern).
function T.err(fn, text)
  local ok, msg = pcall(fn)
  if ok then error("expected an error containing " .. show(text) .. ", got none", 2) end
  msg = tostring(msg)
  if not msg:find(text, 1, true) then error("expected an error containing " .. show(text) .. ", got " .. show(msg), 2) end
  return msg
end

function T.test(name, fn)
  local ok, msg = xpcall(fn, debug.traceback)
  if ok then T.passed = T.passed + 1 else
    T.failed = T.failed + 1
    io.stderr:write("FAIL " .. name .. ": " .. tostring(msg) .. "\n")
  end
end

-- For strategy tests: a checker of their own, so that they do not depend on lm.extract's rules (the last integer
-- in the text), and one arithmetic item.
function T.last_integer(text)
  local last
  for n in text:gmatch("%-?%d+") do last = n end
  return last and tonumber(last)
end
function T.same_number(pred, gold) return tonumber(pred) == tonumber(gold) end
T.QUESTION = "Tom has 12 apples and buys 7 more. How many apples does he have now?"
T.ITEM = {id = "tom", question = T.QUESTION, answer = "19"}

-- For the tests that run refrain as a child process: a shell-quoted word, a command's exit code and output
-- (standard output and error together), a file's bytes (nil when missing), and a new temporary folder.
function T.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function T.sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

function T.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function T.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. T.q(dir))
  return dir
end

-- For the experiment runner's tests: an experiment folder's files with what depends on the machine and on what the
-- process ran before taken out (the seconds, and the prompt tokens found in the prefix cache), so that runs with one
-- and with several workers compare equal. results.jsonl -> its lines re-encoded without those fields; results.md ->
-- its text without the command line and the s/item column; results.csv -> its text without those two columns.
local function timeless(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if not (tostring(k):find("seconds", 1, true) or k == "cached") then out[k] = timeless(x) end
  end
  return out
end

function T.results_without_timing(dir)
  local out = {}
  for line in (T.read(dir .. "/results.jsonl") or ""):gmatch("[^\n]+") do
    out[#out + 1] = lm.json.encode(timeless(lm.json.decode(line)))
  end
  return out
end

function T.report_without_timing(dir)
  local out = {}
  for line in (T.read(dir .. "/results.md") or ""):gmatch("[^\n]*") do
    if line:match("^| ") then out[#out + 1] = (line:gsub("| [^|]* |$", "|"))
    elseif not line:match("^refrain run ") then out[#out + 1] = line end
  end
  return table.concat(out, "\n")
end

function T.csv_without_timing(dir)
  local out = {}
  for line in (T.read(dir .. "/results.csv") or ""):gmatch("[^\n]+") do
    local fields = {}
    for f in (line .. ","):gmatch("([^,]*),") do fields[#fields + 1] = f end
    -- The columns end with cached_tokens_per_item, scored_tokens_per_item, calls_per_item, seconds_per_item.
    table.remove(fields, #fields)          -- seconds_per_item
    table.remove(fields, #fields - 2)      -- cached_tokens_per_item
    out[#out + 1] = table.concat(fields, ",")
  end
  return table.concat(out, "\n")
end

-- The tally, "N passed, M failed", is the last line a test file prints, on a line of its own (after a newline, since
-- a streamed generation may have left a line open): the Swift side (LuaTests.expectedCases) compares N + M with the
-- number of cases the file defines. A file that ran no case fails here too.
function T.done()
  print(string.format("\n%d passed, %d failed", T.passed, T.failed))
  if T.passed + T.failed == 0 then io.stderr:write("FAIL no case ran\n") end
  if T.failed > 0 or T.passed == 0 then os.exit(1) end
end

return T
