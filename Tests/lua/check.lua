-- A tiny test helper for the Lua tests: T.test(name, fn) runs one case, T.eq / T.ok / T.err check, T.done()
-- prints the tally and exits non-zero when a case failed. Load it with dofile next to the test file.
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

function T.done()
  print(string.format("%d passed, %d failed", T.passed, T.failed))
  if T.failed > 0 then os.exit(1) end
end

return T
