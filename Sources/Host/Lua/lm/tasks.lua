-- lm.tasks: generated tasks with known answers, easy enough that a small model is above its floor. Everything is
-- drawn from lm.random seeded by (seed, item number), so a seed names the same items on every machine and the
-- first k items do not depend on n.
local lm = require "lm"
local random = require "lm.random"
local M, doc = {}, {}

local NAMES = {"Ana", "Ben", "Carla", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kofi", "Lena",
               "Mia", "Noah", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wen", "Yusuf"}
local GOODS = {"apples", "pencils", "notebooks", "oranges", "stickers", "cookies", "books", "cups", "balloons", "pens"}
local THINGS = {"marbles", "cards", "stamps", "shells", "candies", "stickers", "coins", "beads"}

-- Two different names.
local function two_names(r)
  local a = r:pick(NAMES)
  local b = r:pick(NAMES)
  while b == a do b = r:pick(NAMES) end
  return a, b
end

-- One-step templates: each takes a generator and returns the question and its answer.
local ONE = {
  shopping = function(r)
    local who, n, p, what = r:pick(NAMES), r:int(2, 6), r:int(2, 9), r:pick(GOODS)
    return ("%s buys %d %s that cost %d dollars each. How many dollars does %s spend?"):format(who, n, what, p, who), n * p
  end,
  sharing = function(r)
    local who, k, q, what = r:pick(NAMES), r:int(2, 5), r:int(2, 9), r:pick(THINGS)
    return ("%s has %d %s and shares them equally among %d friends. How many %s does each friend get?")
      :format(who, k * q, what, k, what), q
  end,
  ages = function(r)
    local a, b = two_names(r)
    local age, diff = r:int(5, 15), r:int(2, 9)
    return ("%s is %d years old. %s is %d years older than %s. How old is %s?"):format(a, age, b, diff, a, b), age + diff
  end,
  younger = function(r)
    local a, b = two_names(r)
    local age, diff = r:int(10, 20), r:int(2, 8)
    return ("%s is %d years old. %s is %d years younger than %s. How old is %s?"):format(a, age, b, diff, a, b), age - diff
  end,
  distance = function(r)
    local who, x, y = r:pick(NAMES), r:int(2, 9), r:int(2, 9)
    return ("%s walks %d kilometers in the morning and %d kilometers in the afternoon. How many kilometers does %s walk in total?")
      :format(who, x, y, who), x + y
  end,
  spending = function(r)
    local who, a = r:pick(NAMES), r:int(10, 30)
    local b = r:int(2, a - 2)
    return ("%s has %d dollars and spends %d dollars on lunch. How many dollars does %s have left?"):format(who, a, b, who), a - b
  end,
  collection = function(r)
    local who, a, b, what = r:pick(NAMES), r:int(3, 20), r:int(2, 12), r:pick(THINGS)
    return ("%s has %d %s. A friend gives %s %d more. How many %s does %s have now?"):format(who, a, what, who, b, what, who), a + b
  end,
  rows = function(r)
    local rows, per = r:int(2, 8), r:int(3, 9)
    return ("A room has %d rows of chairs with %d chairs in each row. How many chairs are in the room?"):format(rows, per), rows * per
  end,
  reading = function(r)
    local who, p, d = r:pick(NAMES), r:int(2, 10), r:int(2, 7)
    return ("%s reads %d pages every day. How many pages does %s read in %d days?"):format(who, p, who, d), p * d
  end,
}

-- Two-step templates: two operations each.
local TWO = {
  change = function(r)
    local who, n, p, what = r:pick(NAMES), r:int(2, 5), r:int(2, 8), r:pick(GOODS)
    local bill = n * p < 20 and 20 or 50
    return ("%s buys %d %s at %d dollars each and pays with a %d dollar bill. How many dollars of change does %s get?")
      :format(who, n, what, p, bill, who), bill - n * p
  end,
  budget = function(r)
    local who, n, p, what = r:pick(NAMES), r:int(2, 5), r:int(2, 6), r:pick(GOODS)
    local have = n * p + r:int(1, 15)
    return ("%s has %d dollars. %s buys %d %s that cost %d dollars each. How many dollars does %s have left?")
      :format(who, have, who, n, what, p, who), have - n * p
  end,
  regroup = function(r)
    local who, k, q, what = r:pick(NAMES), r:int(2, 5), r:int(2, 8), r:pick(THINGS)
    local total = k * q
    local more = r:int(1, total - 1)
    return ("%s has %d %s and finds %d more. %s shares all of them equally among %d friends. How many %s does each friend get?")
      :format(who, total - more, what, more, who, k, what), q
  end,
  future_age = function(r)
    local a, b = two_names(r)
    local age, diff, years = r:int(5, 15), r:int(2, 9), r:int(2, 10)
    return ("%s is %d years old. %s is %d years older than %s. How old will %s be in %d years?")
      :format(a, age, b, diff, a, b, years), age + diff + years
  end,
  trip = function(r)
    local who, speed, hours, walk = r:pick(NAMES), r:int(5, 15), r:int(2, 4), r:int(1, 9)
    return ("%s rides a bike at %d kilometers per hour for %d hours and then walks %d kilometers. How many kilometers does %s travel in total?")
      :format(who, speed, hours, walk, who), speed * hours + walk
  end,
  give_away = function(r)
    local who, a, b, what = r:pick(NAMES), r:int(5, 20), r:int(2, 10), r:pick(THINGS)
    local c = r:int(1, a + b - 1)
    return ("%s has %d %s, gets %d more, and then gives %d away. How many %s does %s have now?")
      :format(who, a, what, b, c, what, who), a + b - c
  end,
  book = function(r)
    local who, p, d = r:pick(NAMES), r:int(3, 10), r:int(2, 6)
    local total = p * d + r:int(5, 60)
    return ("A book has %d pages. %s reads %d pages a day for %d days. How many pages are left to read?")
      :format(total, who, p, d), total - p * d
  end,
  pen_and_books = function(r)
    local who, n, p, pen = r:pick(NAMES), r:int(2, 5), r:int(2, 9), r:int(1, 5)
    return ("%s buys %d notebooks at %d dollars each and one pen for %d dollars. How many dollars does %s spend in all?")
      :format(who, n, p, pen, who), n * p + pen
  end,
}

-- Template names in a fixed order (pairs order is not fixed).
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end
local ONE_NAMES, TWO_NAMES = sorted_keys(ONE), sorted_keys(TWO)

doc.arithmetic = {
  usage = "lm.tasks.arithmetic([{n=100, seed=1, steps=\"mixed\"}]) -> {item, ...}",
  text = "Easy arithmetic word problems with whole-number answers (shopping, sharing, ages, distances, change, "
    .. "reading...), generated from a seed: the same seed gives the same items on every machine, and the first "
    .. "k items are the same for any n. steps = 1 (one operation), 2 (two operations) or \"mixed\" (each item "
    .. "one or the other, half and half on average). Numbers stay small (every answer is under 100). "
    .. "Each item: {id=, question=, answer=, steps=, template=}; id is \"arith-<steps>-s<seed>-<i>\"; "
    .. "no question repeats within a list.",
  example = "for _, it in ipairs(lm.tasks.arithmetic({n = 3, seed = 7, steps = 2})) do print(it.id, it.question, it.answer) end",
}
function M.arithmetic(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("lm.tasks.arithmetic: options must be a table, got " .. type(opts), 2) end
  for k in pairs(opts) do
    if k ~= "n" and k ~= "seed" and k ~= "steps" then
      error(("lm.tasks.arithmetic: unknown option '%s' (n, seed, steps)"):format(tostring(k)), 2)
    end
  end
  local n, seed, steps = opts.n or 100, opts.seed or 1, opts.steps or "mixed"
  if not math.tointeger(n) or n < 0 then error("lm.tasks.arithmetic: option 'n' must be an integer >= 0, got " .. tostring(n), 2) end
  if not math.tointeger(seed) then error("lm.tasks.arithmetic: option 'seed' must be an integer, got " .. tostring(seed), 2) end
  if steps ~= 1 and steps ~= 2 and steps ~= "mixed" then
    error("lm.tasks.arithmetic: option 'steps' must be 1, 2 or \"mixed\", got " .. tostring(steps), 2)
  end
  local items, seen = {}, {}
  for i = 1, n do
    local r = random(math.tointeger(seed) * 1048576 + i)
    local q, a, s, name
    for _ = 1, 50 do                          -- redraw (from the same item's generator) until the question is new
      s = steps == "mixed" and r:int(1, 2) or steps
      name = r:pick(s == 1 and ONE_NAMES or TWO_NAMES)
      q, a = (s == 1 and ONE or TWO)[name](r)
      if not seen[q] then break end
    end
    seen[q] = true
    items[i] = {id = ("arith-%s-s%d-%d"):format(steps, seed, i), question = q, answer = a, steps = s, template = name}
  end
  return items
end

for name, entry in pairs(doc) do
  entry.name = "lm.tasks." .. name
  lm.document(M[name], entry)
end
lm.document(M, {
  name = "lm.tasks",
  usage = "lm.tasks",
  text = "Generated tasks with known answers, where a small model is above its floor: arithmetic.",
  example = "local items = lm.tasks.arithmetic({n = 200, seed = 1})",
})
return M
