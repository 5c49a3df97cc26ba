-- lm.progress: a progress bar for long loops, with the rate and the time left, redrawn in place on standard
-- error. It draws only when standard error is a terminal (lm.isatty), so logs and pipes stay clean.
local lm = require "lm"

local Progress = {}
Progress.__index = Progress
Progress.__name = "lm.progress"

-- "42s", "3m05s", "2h07m".
local function duration(s)
  s = math.floor(s + 0.5)
  if s < 60 then return s .. "s" end
  if s < 3600 then return ("%dm%02ds"):format(s // 60, s % 60) end
  return ("%dh%02dm"):format(s // 3600, s % 3600 // 60)
end

-- Items per second, or seconds per item when that reads better.
local function rate(count, elapsed)
  if count == 0 or elapsed <= 0 then return "--/s" end
  local r = count / elapsed
  if r >= 1 then return ("%.1f/s"):format(r) end
  return ("%.1fs each"):format(1 / r)
end

local WIDTH = 24

-- The text of the bar as it stands (what is drawn, without the carriage return).
function Progress:line()
  local elapsed = lm.clock() - self.start
  local frac = self.n > 0 and math.min(self.count / self.n, 1) or 1
  local filled = math.floor(frac * WIDTH + 1e-9)
  local bar = ("="):rep(filled) .. (filled < WIDTH and ">" .. (" "):rep(WIDTH - filled - 1) or "")
  local left
  if self.finished then left = "in " .. duration(elapsed)
  elseif self.count == 0 then left = "left --"
  else left = "left " .. duration(math.max(self.n - self.count, 0) * elapsed / self.count) end
  local label = self.label ~= "" and self.label:sub(1, 20) .. " " or ""
  return ("%s[%s] %d/%d %3d%%  %s  %s"):format(label, bar, self.count, self.n, math.floor(frac * 100 + 1e-9),
    rate(self.count, elapsed), left)
end

local function draw(self, final)
  if not self.out then return end
  self.out:write("\r", self:line(), "\27[K", final and "\n" or "")
  self.out:flush()
  self.drawn = lm.clock()
end

-- Counts k more items done (default 1) and redraws when interval seconds have passed or the count reached n.
function Progress:tick(k)
  if self.finished then return self end
  k = k or 1
  if type(k) ~= "number" then error("lm.progress: tick(k) needs a number, got " .. type(k), 2) end
  self.count = self.count + k
  local now = lm.clock()
  if self.count >= self.n or now - self.drawn >= self.interval then draw(self) end
  return self
end

-- Ends the bar: draws the final line (with the total time) and a newline. Returns the seconds since the start.
function Progress:done()
  if not self.finished then
    self.finished = true
    draw(self, true)
  end
  return lm.clock() - self.start
end

local function new(n, label, opts)
  if not math.tointeger(n) or n < 0 then
    error("lm.progress: n must be an integer >= 0, got " .. tostring(n), 2)
  end
  if label ~= nil and type(label) ~= "string" then
    error("lm.progress: label must be a string, got " .. type(label), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("lm.progress: options must be a table, got " .. type(opts), 2) end
  for k in pairs(opts) do
    if k ~= "out" and k ~= "interval" then error(("lm.progress: unknown option '%s' (out, interval)"):format(tostring(k)), 2) end
  end
  local out = opts.out
  if out == nil and lm.isatty(io.stderr) then out = io.stderr end
  local self = setmetatable({n = math.tointeger(n), label = label or "", count = 0, out = out,
                             interval = opts.interval or 0.1, start = lm.clock(), finished = false}, Progress)
  self.drawn = -math.huge
  draw(self)
  return self
end

lm.document(new, {
  name = "lm.progress",
  usage = "lm.progress(n [, label [, {out=, interval=0.1}]]) -> bar",
  text = "A progress bar for a loop over n items, drawn in place on standard error with the count, the rate "
    .. "and the time left: \"gsm8k [=====>      ] 37/200  18%  2.4/s  left 1m08s\". bar:tick([k]) counts k "
    .. "more items (default 1; it redraws at most every interval seconds, and at n); bar:done() draws the "
    .. "final line with the total time and a newline and returns the elapsed seconds; bar:line() is the text. "
    .. "Silent when standard error is not a terminal, unless out (a file such as io.stdout) is given.",
  example = "local items = lm.tasks.arithmetic({n = 20})\nlocal bar = lm.progress(#items, \"arithmetic\")\n"
    .. "for _, it in ipairs(items) do lm.generate(it.question, {max_tokens = 8}); bar:tick() end\nbar:done()",
})
return new
