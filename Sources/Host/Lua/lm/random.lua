-- lm.random: a seeded generator that gives the same numbers on every machine (SplitMix64 on Lua 5.4's
-- 64-bit integers, whose arithmetic wraps around), so that generated tasks and bootstrap intervals are
-- reproducible from their seed alone. math.random is not: its algorithm and seeding belong to the Lua build.
local lm = require "lm"

local Random = {}
Random.__index = Random
Random.__name = "lm.random"

local GAMMA = 0x9E3779B97F4A7C15          -- hexadecimal integer literals wrap around to 64-bit integers
local M1, M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB

-- The next 64-bit output (SplitMix64: Steele, Lea and Flood, 2014).
local function next64(r)
  r.state = r.state + GAMMA
  local z = r.state
  z = (z ~ (z >> 30)) * M1
  z = (z ~ (z >> 27)) * M2
  return z ~ (z >> 31)
end

-- A float in [0, 1): the top 53 bits.
function Random:float()
  return (next64(self) >> 11) * 2.0 ^ -53
end

-- An integer in [lo, hi]: the top 53 bits modulo the range (the bias is below 2^-40 for ranges under 2^13).
function Random:int(lo, hi)
  if hi == nil then lo, hi = 1, lo end
  lo, hi = math.tointeger(lo), math.tointeger(hi)
  if not lo or not hi or hi < lo then
    error("lm.random: int(lo, hi) needs integers with lo <= hi", 2)
  end
  return lo + (next64(self) >> 11) % (hi - lo + 1)
end

-- One element of a list.
function Random:pick(list)
  if #list == 0 then error("lm.random: pick from an empty list", 2) end
  return list[self:int(1, #list)]
end

-- Shuffles a list in place (Fisher–Yates) and returns it.
function Random:shuffle(list)
  for i = #list, 2, -1 do
    local j = self:int(1, i)
    list[i], list[j] = list[j], list[i]
  end
  return list
end

local function new(seed)
  local s = math.tointeger(seed or 0)
  if not s then error("lm.random: the seed must be an integer, got " .. tostring(seed), 2) end
  return setmetatable({state = s}, Random)
end

lm.document(new, {
  name = "lm.random",
  usage = "lm.random([seed=0]) -> rng",
  text = "A seeded generator (SplitMix64 in Lua) that gives the same numbers on every machine, unlike "
    .. "math.random. Methods: rng:float() in [0, 1), rng:int(lo, hi) (or rng:int(n) for 1..n), rng:pick(list), "
    .. "rng:shuffle(list) (in place). lm.tasks and lm.stats.bootstrap_ci draw from it.",
  example = "local r = lm.random(7)\nprint(r:int(1, 6), r:float(), r:pick({\"a\", \"b\"}))",
})
return new
