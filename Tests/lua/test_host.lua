-- The host around lm: arguments, help and lm.doc, lm.pretty, package.path and require, lm.model absent.
-- Run as: refrain run test_host.lua one two (with REFRAIN_SCRIPTS pointing at Tests/lua/scripts).
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local args = {...}

T.test("arg and ...", function()
  T.ok(arg[0]:find("test_host.lua$"), arg[0])
  T.eq(arg[1], "one"); T.eq(arg[2], "two"); T.eq(#arg, 2)
  T.eq(args[1], "one"); T.eq(#args, 2)
end)

T.test("help text for every function and method", function()
  local m = lm.model
  for _, name in ipairs({"tokenize", "detokenize", "token", "template", "generate", "sample", "score", "choose", "state"}) do
    local byname, byfn, bymethod = lm.doc(name), lm.doc(lm[name]), lm.doc(m[name])
    T.ok(byname and byname:find("m:" .. name, 1, true), name)
    T.eq(byfn, byname, "lm." .. name); T.eq(bymethod, byname, "m." .. name)
    T.ok(byname:find("example:", 1, true), name .. " has an example")
  end
  local st = m:state("x")
  for _, name in ipairs({"append", "generate", "fork", "rewind", "text", "ids"}) do
    local d = lm.doc(st[name])
    T.ok(d and d:find("st:" .. name, 1, true), "st:" .. name)
    T.eq(lm.doc("st:" .. name), d)
  end
  T.ok(lm.doc("generate"):find("temperature", 1, true))
  for _, name in ipairs({"lm.load", "lm.defaults", "lm.model", "lm.pretty", "lm.doc", "info"}) do T.ok(lm.doc(name), name) end
  T.eq(lm.doc(lm.load), lm.doc("lm.load"))
  T.eq(lm.doc("lm.generate"), lm.doc("generate"))
  T.eq(lm.doc("nonesuch"), nil)
  T.ok(lm.doc():find("m:generate", 1, true), "the overview lists the methods")
  T.ok(lm.doc():find("st:fork", 1, true))
  T.eq(type(help), "function")
end)

T.test("pretty", function()
  T.eq(lm.pretty({}), "{}")
  T.eq(lm.pretty({1, 2, 3}), "{1, 2, 3}")
  T.eq(lm.pretty({b = 1, a = "x", [1] = true}), '{true, a = "x", b = 1}')
  T.eq(lm.pretty({["not ident"] = 1, ["end"] = 2}), '{["end"] = 2, ["not ident"] = 1}')
  T.eq(lm.pretty({0.1 + 0.2}), "{0.3}")
  T.eq(lm.pretty({"a\nb"}), '{"a\\nb"}')
  local c = {}; c.self = c
  T.ok(lm.pretty(c):find("self = <cycle: table: ", 1, true), lm.pretty(c))
  local deep = {{{{{{}}}}}}
  T.ok(lm.pretty(deep):find("{...}", 1, true), lm.pretty(deep))
  local long = {}; for i = 1, 100 do long[i] = i end
  T.ok(lm.pretty(long):find("... (76 more)", 1, true), lm.pretty(long))
  T.ok(lm.pretty({string.rep("x", 1000)}):find("... (1000 bytes)", 1, true))
  local wide = {}; for i = 1, 10 do wide["key" .. i] = string.rep("v", 10) end
  T.ok(lm.pretty(wide):find("\n  key1 = ", 1, true), "a wide table is laid out one field a line")
  T.eq(lm.pretty("plain"), "plain"); T.eq(lm.pretty(42), "42")
  T.ok(lm.pretty(lm.model):find("^model: "))
end)

T.test("package.path and require", function()
  T.ok(package.path:find("./?.lua", 1, true))
  T.ok(package.path:find("/.refrain/?.lua", 1, true))
  T.ok(package.path:find("scripts/?.lua", 1, true))
  T.ok(package.path:find("scripts/?/init.lua", 1, true))
  local echo = require "strategies.echo"
  local r = echo(lm.model, "item 1", {k = 1})
  T.eq(r.answer, "item 1"); T.eq(r.model, "llama")
  T.eq(require "lm", lm)
end)

T.done()
