-- lm.plot: charts written as SVG by plain Lua, for result files: bars with confidence-interval whiskers
-- (accuracy per strategy) and lines (a metric per layer). Each function returns the SVG text and, with
-- {file = "x.svg"}, writes it too. The pieces every chart shares (escaping, number formatting, nice ticks, the
-- frame with its axes, tick labels and legend) are the local helpers at the top: a new chart kind (a heatmap,
-- say) builds a `chart`, draws into its plot area with `chart:add`, and calls `chart:finish`.
local lm = require "lm"
local M, doc = {}, {}

-- Text and numbers -----------------------------------------------------------------------------------------

-- Text made safe inside an SVG element or attribute: the five XML entities, and control characters XML does not
-- allow dropped (tab, newline and carriage return become spaces).
local function escape(s)
  s = tostring(s)
  s = s:gsub("[\t\n\r]", " "):gsub("[%z\1-\8\11\12\14-\31\127]", "")
  return (s:gsub("[&<>\"']", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;"}))
end

-- A coordinate: two decimals at most, no trailing zeros ("12", "3.5").
local function coord(x)
  local s = ("%.2f"):format(x):gsub("0+$", ""):gsub("%.$", "")
  if s == "-0" then s = "0" end
  return s
end

-- A tick or value label: up to `digits` significant digits, no float noise (0.30000000000000004 is "0.3").
local function label_number(x, digits)
  if x ~= x then return "NaN" end
  if math.abs(x) < 1e-12 then return "0" end
  local s = ("%." .. (digits or 4) .. "g"):format(x)
  return s
end

-- Nice tick values covering [lo, hi], about `count` of them, with steps of 1, 2, 2.5 or 5 times a power of ten
-- (Heckbert's "nice numbers"). Returns the ticks, and the range they span (wider than [lo, hi] or equal).
local function ticks(lo, hi, count)
  count = count or 5
  if hi < lo then lo, hi = hi, lo end
  if hi - lo < 1e-12 then
    local pad = math.abs(lo) > 0 and math.abs(lo) * 0.1 or 1
    lo, hi = lo - pad, hi + pad
  end
  local raw = (hi - lo) / math.max(count - 1, 1)
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step
  for _, m in ipairs({1, 2, 2.5, 5, 10}) do
    step = m * mag
    if step >= raw - 1e-12 * raw then break end
  end
  local first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
  local out = {}
  for k = first, last do
    local v = k * step
    if math.abs(v) < step * 1e-9 then v = 0 end
    out[#out + 1] = math.tointeger(v) or v
  end
  return out, out[1], out[#out]
end

-- A linear map from [d0, d1] to [r0, r1].
local function scale(d0, d1, r0, r1)
  local k = d1 ~= d0 and (r1 - r0) / (d1 - d0) or 0
  return function(v) return r0 + (v - d0) * k end
end

-- Tableau's ten colours: distinct, and readable by most colour-blind readers.
local PALETTE = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac"}
local function color(i) return PALETTE[(i - 1) % #PALETTE + 1] end

-- About how wide a text is drawn at `size` pixels (sans-serif averages a little over half the size a character).
local function text_width(s, size) return #tostring(s) * (size or 12) * 0.6 end

-- Options and arguments ------------------------------------------------------------------------------------

-- Checks an options table against the names a function takes.
local function options(fname, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(("lm.plot.%s: options must be a table, got %s"):format(fname, type(opts)), 3) end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(("lm.plot.%s: unknown option '%s' (%s)"):format(fname, tostring(k), table.concat(names, ", ")), 3)
    end
  end
  return opts
end

local function number_or_gap(fname, v, where)
  if v == nil or v == false then return nil end
  if type(v) ~= "number" then error(("lm.plot.%s: %s must be a number, got %s"):format(fname, where, type(v)), 4) end
  if v ~= v or v == math.huge or v == -math.huge then return nil end
  return v
end

-- The chart frame ------------------------------------------------------------------------------------------

local Chart = {}
Chart.__index = Chart

-- A chart of width x height pixels whose plot area leaves room for a title, axis labels and a legend on the
-- right `legend_width` pixels wide; `x_label_room` is the height the x tick labels need.
-- The title's lines: the whole title when it fits the width, else broken at spaces into lines that do (a word
-- longer than a line is cut with an ellipsis), so that a long title is wrapped rather than cut off at the chart's
-- edges. 15 px bold Helvetica takes about 8.6 px a character on average in chromium (a 72-character line of a
-- results chart title measured 618 px); 9.2 leaves a margin for titles with more capitals and wide letters.
local TITLE_CHAR = 9.2
local function title_lines(title, width)
  local per = math.max(10, math.floor((width - 24) / TITLE_CHAR))
  local lines, line = {}, ""
  for word in tostring(title):gmatch("%S+") do
    if #word > per then word = word:sub(1, per - 1) .. "…" end
    if line == "" then line = word
    elseif utf8.len(line) + 1 + utf8.len(word) <= per then line = line .. " " .. word
    else lines[#lines + 1] = line; line = word end
  end
  if line ~= "" then lines[#lines + 1] = line end
  return lines
end

local function chart(opts, legend_width, x_label_room)
  local w, h = opts.width or 640, opts.height or 400
  local self = setmetatable({width = w, height = h, parts = {}, opts = opts}, Chart)
  self.title_lines = opts.title and title_lines(opts.title, w) or {}
  self.left = 64 + (opts.ylabel and 18 or 0)
  self.top = opts.title and 40 + 19 * (#self.title_lines - 1) or 16
  self.right = w - 20 - (legend_width or 0)
  self.bottom = h - (x_label_room or 22) - (opts.xlabel and 24 or 8)
  if self.right - self.left < 40 or self.bottom - self.top < 40 then
    error(("lm.plot: the chart is too small for its labels (%dx%d): give a larger width or height"):format(w, h), 3)
  end
  return self
end

-- Appends one SVG element (a string.format pattern and its values).
function Chart:add(fmt, ...) self.parts[#self.parts + 1] = fmt:format(...) end

-- A text element: `anchor` start/middle/end, extra attributes as a string.
function Chart:text(x, y, s, anchor, attrs)
  self:add('<text x="%s" y="%s" text-anchor="%s"%s>%s</text>', coord(x), coord(y), anchor or "start",
    attrs and " " .. attrs or "", escape(s))
end

-- The y axis: gridlines and labels at `yt`, mapped by `sy`, plus the axis title.
function Chart:y_axis(yt, sy)
  self:add('<g class="y-axis">')
  for _, v in ipairs(yt) do
    local y = sy(v)
    self:add('<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e0e0e0"/>', coord(self.left), coord(y),
      coord(self.right), coord(y))
    self:text(self.left - 6, y + 4, label_number(v), "end", 'class="tick"')
  end
  self:add('<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>', coord(self.left), coord(self.top),
    coord(self.left), coord(self.bottom))
  if self.opts.ylabel then
    local x, y = 16, (self.top + self.bottom) / 2
    self:text(x, y, self.opts.ylabel, "middle", ('class="label" transform="rotate(-90 %s %s)"'):format(coord(x), coord(y)))
  end
  self:add('</g>')
end

-- The x axis line, tick labels at {x = pixel, text =} (rotated when `rotate`), and the axis title.
function Chart:x_axis(labels, rotate)
  self:add('<g class="x-axis">')
  self:add('<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>', coord(self.left), coord(self.bottom),
    coord(self.right), coord(self.bottom))
  for _, l in ipairs(labels) do
    self:add('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>', coord(l.x), coord(self.bottom), coord(l.x),
      coord(self.bottom + 4))
    if rotate then
      local y = self.bottom + 14
      self:text(l.x, y, l.text, "end", ('class="tick" transform="rotate(-35 %s %s)"'):format(coord(l.x), coord(y)))
    else
      self:text(l.x, self.bottom + 17, l.text, "middle", 'class="tick"')
    end
  end
  if self.opts.xlabel then
    self:text((self.left + self.right) / 2, self.height - 8, self.opts.xlabel, "middle", 'class="label"')
  end
  self:add('</g>')
end

-- The legend to the right of the plot area: entries {name=, color=, kind = "line" | "box"}.
function Chart:legend(entries)
  if #entries == 0 then return end
  self:add('<g class="legend">')
  local x, y = self.right + 14, self.top + 4
  for i, e in ipairs(entries) do
    local cy = y + (i - 1) * 18
    if e.kind == "line" then
      self:add('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"/>', coord(x), coord(cy + 6),
        coord(x + 16), coord(cy + 6), e.color)
    else
      self:add('<rect x="%s" y="%s" width="12" height="12" fill="%s"/>', coord(x + 2), coord(cy), e.color)
    end
    self:text(x + 22, cy + 10, e.name, "start", 'class="legend-label"')
  end
  self:add('</g>')
end

-- The width a legend of these names needs (0 without names).
local function legend_width(names)
  local w = 0
  for _, n in ipairs(names) do w = math.max(w, text_width(n)) end
  return w > 0 and w + 44 or 0
end

-- The whole SVG text; written to opts.file when given.
function Chart:finish()
  local head = {
    '<?xml version="1.0" encoding="UTF-8"?>',
    ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
      .. 'font-family="Helvetica, Arial, sans-serif" font-size="12">'):format(self.width, self.height, self.width,
      self.height),
    '<rect width="100%" height="100%" fill="white"/>',
  }
  if self.opts.title then
    head[#head + 1] = ("<title>%s</title>"):format(escape(self.opts.title))
    for i, line in ipairs(self.title_lines) do
      head[#head + 1] = ('<text class="title" x="%s" y="%d" text-anchor="middle" font-size="15" font-weight="bold">%s</text>')
        :format(coord(self.width / 2), 24 + 19 * (i - 1), escape(line))
    end
  end
  local svg = table.concat(head, "\n") .. "\n" .. table.concat(self.parts, "\n") .. "\n</svg>\n"
  if self.opts.file then
    local f, err = io.open(self.opts.file, "w")
    if not f then error("lm.plot: cannot write " .. tostring(err), 3) end
    f:write(svg)
    f:close()
  end
  return svg
end

-- Bars -----------------------------------------------------------------------------------------------------

-- An interval from errors[i] (or errors[i][j]): {lo, hi} as given, or a number for value ± it.
local function interval(e, v)
  if e == nil or v == nil then return nil end
  if type(e) == "number" then return v - e, v + e end
  if type(e) == "table" then
    local lo, hi = e.lo or e[1], e.hi or e[2]
    if type(lo) == "number" and type(hi) == "number" then return lo, hi end
  end
  return nil
end

doc.bars = {
  usage = "lm.plot.bars(groups [, {file=, title=, ylabel=, errors=, series=, ...}]) -> svg",
  text = "A bar chart as SVG text (written to file when given). Options: file, title, ylabel, xlabel, errors, "
    .. "series, ymin, ymax, format, width (640), height (400). groups is a list of {label=, value=} (value a "
    .. "number; lo= and hi= draw a whisker, a confidence interval); a value that is a list draws a cluster of bars "
    .. "per group, named by series (a legend), with lo/hi lists. errors (a list parallel to groups, of {lo, hi} "
    .. "pairs or half-widths; lists of them for clusters) is the other way to give the whiskers. Each bar shows "
    .. "its value (format, default \"%.2f\") and has a tooltip. The y axis starts at 0 unless ymin says "
    .. "otherwise and ends at a nice number above the highest whisker (or ymax). nil, NaN or missing values "
    .. "leave a gap.",
  example = "lm.plot.bars({{label = \"greedy\", value = 0.41, lo = 0.34, hi = 0.48},\n"
    .. "              {label = \"sc@8\", value = 0.52, lo = 0.45, hi = 0.59}},\n"
    .. "             {file = \"accuracy.svg\", title = \"Accuracy\", ylabel = \"accuracy\", ymax = 1})",
}
function M.bars(groups, opts)
  opts = options("bars", opts, {file = true, title = true, ylabel = true, xlabel = true, errors = true, series = true,
                                ymin = true, ymax = true, format = true, width = true, height = true})
  if type(groups) ~= "table" or #groups == 0 then
    error("lm.plot.bars: groups must be a non-empty list of {label=, value=}", 2)
  end
  local series = opts.series
  -- Every bar as {group =, k =, value =, lo =, hi =}; clusters have #series (or the longest value list) bars.
  local width_of = 1
  for i, g in ipairs(groups) do
    if type(g) ~= "table" then error(("lm.plot.bars: groups[%d] must be a table {label=, value=}, got %s"):format(i, type(g)), 2) end
    if type(g.value) == "table" then width_of = math.max(width_of, #g.value) end
  end
  if series then width_of = math.max(width_of, #series) end
  local bars, lo_all, hi_all = {}, 0, 0
  for i, g in ipairs(groups) do
    local values = type(g.value) == "table" and g.value or {g.value}
    for k = 1, width_of do
      local where = type(g.value) == "table" and ("groups[%d].value[%d]"):format(i, k) or ("groups[%d].value"):format(i)
      local v = number_or_gap("bars", values[k], where)
      local lo, hi
      if type(g.value) == "table" then
        lo, hi = g.lo and g.lo[k], g.hi and g.hi[k]
        if lo == nil and opts.errors and opts.errors[i] then lo, hi = interval(opts.errors[i][k], v) end
      else
        lo, hi = g.lo, g.hi
        if lo == nil and opts.errors then lo, hi = interval(opts.errors[i], v) end
      end
      lo, hi = number_or_gap("bars", lo, where .. "'s lo"), number_or_gap("bars", hi, where .. "'s hi")
      bars[#bars + 1] = {group = i, k = k, value = v, lo = lo, hi = hi}
      for _, x in ipairs({v or 0, lo or v or 0, hi or v or 0}) do
        lo_all, hi_all = math.min(lo_all, x), math.max(hi_all, x)
      end
    end
  end
  local yt, y0, y1 = ticks(opts.ymin or lo_all, opts.ymax or hi_all, 6)
  if opts.ymin then y0 = opts.ymin end
  if opts.ymax then y1 = opts.ymax end
  local kept = {}
  for _, v in ipairs(yt) do if v >= y0 - 1e-9 and v <= y1 + 1e-9 then kept[#kept + 1] = v end end

  local names = {}
  if width_of > 1 or series then
    for k = 1, width_of do names[k] = series and series[k] and tostring(series[k]) or ("series " .. k) end
  end
  local longest = 0
  for _, g in ipairs(groups) do longest = math.max(longest, text_width(g.label or "")) end
  local c0 = chart(opts, legend_width(names), 22)
  local slot = (c0.right - c0.left) / #groups
  local rotate = longest > slot - 6
  local c = rotate and chart(opts, legend_width(names), math.min(longest * 0.82 + 16, opts.height and opts.height / 3 or 140)) or c0
  slot = (c.right - c.left) / #groups
  local sy = scale(y0, y1, c.bottom, c.top)
  c:y_axis(kept, sy)
  local bar_w = slot * 0.7 / width_of
  local fmt = opts.format or "%.2f"
  c:add('<g class="bars">')
  for _, b in ipairs(bars) do
    if b.value then
      local x = c.left + (b.group - 1) * slot + slot * 0.15 + (b.k - 1) * bar_w
      local base = sy(math.max(y0, math.min(0, y1)))
      local top = sy(math.max(y0, math.min(b.value, y1)))
      local label = groups[b.group].label or ("group " .. b.group)
      local tip = (#names > 0 and label .. " / " .. names[b.k] or label) .. ": " .. fmt:format(b.value)
      if b.lo then tip = tip .. (" [" .. fmt .. ", " .. fmt .. "]"):format(b.lo, b.hi) end
      c:add('<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>', coord(x),
        coord(math.min(base, top)), coord(bar_w * 0.92), coord(math.abs(base - top)), color(#names > 0 and b.k or 1),
        escape(tip))
      local cx, label_y = x + bar_w * 0.46, math.min(base, top) - 4
      if b.lo and b.hi then
        local ylo = sy(math.max(y0, math.min(b.lo, y1)))
        local yhi = sy(math.max(y0, math.min(b.hi, y1)))
        local cap = math.min(bar_w * 0.2, 8)
        c:add('<path class="whisker" d="M%s %sV%sM%s %sH%sM%s %sH%s" stroke="#222" stroke-width="1.5" fill="none"/>',
          coord(cx), coord(ylo), coord(yhi), coord(cx - cap), coord(ylo), coord(cx + cap), coord(cx - cap), coord(yhi),
          coord(cx + cap))
        label_y = math.min(label_y, yhi - 4)
      end
      c:text(cx, label_y, fmt:format(b.value), "middle", 'class="value" font-size="11"')
    end
  end
  c:add('</g>')
  local labels = {}
  for i, g in ipairs(groups) do
    labels[i] = {x = c.left + (i - 0.5) * slot, text = g.label or ("group " .. i)}
  end
  c:x_axis(labels, rotate)
  local entries = {}
  for k, n in ipairs(names) do entries[k] = {name = n, color = color(k), kind = "box"} end
  c:legend(entries)
  return c:finish()
end

-- Lines ----------------------------------------------------------------------------------------------------

doc.lines = {
  usage = "lm.plot.lines(series [, {file=, title=, xlabel=, ylabel=, xs=, ...}]) -> svg",
  text = "A line chart as SVG text (written to file when given). Options: file, title, xlabel, ylabel, xs, ymin, "
    .. "ymax, markers, width (640), height (400). One line per series, each {name=, values={...}} "
    .. "(or {name=, xs=, values=} with its own x values), drawn against xs (shared x values; default 1, 2, ...). "
    .. "NaN or false in values leaves a gap in the line. Points are marked when there are 60 or fewer per series "
    .. "(markers = true/false forces it). A legend names the series. The axes span the data, widened to nice "
    .. "ticks (ymin, ymax fix the y range).",
  example = "lm.plot.lines({{name = \"correct\", values = {0.12, 0.15, 0.14}},\n"
    .. "               {name = \"wrong\", values = {0.11, 0.12, 0.12}}},\n"
    .. "              {file = \"attention.svg\", xlabel = \"layer\", ylabel = \"attention on question\", xs = {0, 1, 2}})",
}
function M.lines(series, opts)
  opts = options("lines", opts, {file = true, title = true, xlabel = true, ylabel = true, xs = true, ymin = true,
                                 ymax = true, markers = true, width = true, height = true})
  if type(series) ~= "table" or #series == 0 then
    error("lm.plot.lines: series must be a non-empty list of {name=, values=}", 2)
  end
  local lines, names = {}, {}
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for i, s in ipairs(series) do
    if type(s) ~= "table" or type(s.values) ~= "table" then
      error(("lm.plot.lines: series[%d] must be a table {name=, values={...}}"):format(i), 2)
    end
    local xs = s.xs or opts.xs
    local n = xs and #xs or #s.values
    local pts = {}
    for j = 1, n do
      local x = xs and number_or_gap("lines", xs[j], ("xs[%d]"):format(j)) or j
      local y = number_or_gap("lines", s.values[j], ("series[%d].values[%d]"):format(i, j))
      pts[j] = (x and y) and {x, y} or false
      if x and y then
        xmin, xmax, ymin, ymax = math.min(xmin, x), math.max(xmax, x), math.min(ymin, y), math.max(ymax, y)
      end
    end
    lines[i] = pts
    names[i] = s.name ~= nil and tostring(s.name) or ("series " .. i)
  end
  if xmin == math.huge then error("lm.plot.lines: no finite points to draw", 2) end

  local c = chart(opts, legend_width(names), 22)
  -- x ticks: every x when there are few whole numbers (layers), nice ticks otherwise.
  local distinct, whole = {}, true
  for _, pts in ipairs(lines) do
    for _, p in ipairs(pts) do
      if p then distinct[p[1]] = true; if math.type(p[1]) ~= "integer" and p[1] ~= math.floor(p[1]) then whole = false end end
    end
  end
  local xt = {}
  for x in pairs(distinct) do xt[#xt + 1] = x end
  table.sort(xt)
  local x0, x1 = xmin, xmax
  if not (whole and #xt <= 16) then xt, x0, x1 = ticks(xmin, xmax, 7) end
  if x0 == x1 then x0, x1 = x0 - 1, x1 + 1 end
  local yt, y0, y1 = ticks(opts.ymin or ymin, opts.ymax or ymax, 6)
  if opts.ymin then y0 = opts.ymin end
  if opts.ymax then y1 = opts.ymax end
  local kept = {}
  for _, v in ipairs(yt) do if v >= y0 - 1e-9 and v <= y1 + 1e-9 then kept[#kept + 1] = v end end
  local pad = (c.right - c.left) * 0.03
  local sx, sy = scale(x0, x1, c.left + pad, c.right - pad), scale(y0, y1, c.bottom, c.top)
  c:y_axis(kept, sy)
  local labels = {}
  for i, x in ipairs(xt) do labels[i] = {x = sx(x), text = label_number(x)} end
  c:x_axis(labels, false)
  for i, pts in ipairs(lines) do
    local d, pen = {}, "M"
    local count = 0
    for _, p in ipairs(pts) do
      if p then
        d[#d + 1] = pen .. coord(sx(p[1])) .. " " .. coord(sy(p[2])); pen = "L"; count = count + 1
      else
        pen = "M"
      end
    end
    c:add('<g class="series" data-name="%s">', escape(names[i]))
    c:add('<path class="line" d="%s" stroke="%s" stroke-width="2" fill="none"/>', table.concat(d), color(i))
    local markers = opts.markers
    if markers == nil then markers = count <= 60 end
    if markers then
      for _, p in ipairs(pts) do
        if p then
          c:add('<circle class="point" cx="%s" cy="%s" r="3" fill="%s"><title>%s</title></circle>', coord(sx(p[1])),
            coord(sy(p[2])), color(i), escape(("%s: (%s, %s)"):format(names[i], label_number(p[1]), label_number(p[2], 6))))
        end
      end
    end
    c:add('</g>')
  end
  local entries = {}
  for i, n in ipairs(names) do entries[i] = {name = n, color = color(i), kind = "line"} end
  c:legend(entries)
  return c:finish()
end

-- Heatmaps and surprisal ---------------------------------------------------------------------------------------

-- A sequential colour for f in [0, 1]: white through yellow and orange to dark red (readable in grey too).
local HEAT = {{255, 255, 255}, {255, 237, 160}, {254, 178, 76}, {240, 59, 32}, {128, 0, 38}}
local function heat(f)
  f = math.max(0, math.min(1, f)) * (#HEAT - 1)
  local i = math.min(math.floor(f), #HEAT - 2)
  local t, a, b = f - i, HEAT[i + 1], HEAT[i + 2]
  return ("#%02x%02x%02x"):format(math.floor(a[1] + t * (b[1] - a[1]) + 0.5), math.floor(a[2] + t * (b[2] - a[2]) + 0.5),
    math.floor(a[3] + t * (b[3] - a[3]) + 0.5))
end

-- Rows of numbers from a 2-D matrix (lm.matrix, m:attention's slices) or a nested table.
local function rows_of(fname, x)
  if type(x) == "userdata" then
    local ok, shape = pcall(function() return x:shape() end)
    if not ok or #shape ~= 2 then
      error(("lm.plot.%s: expects a 2-D matrix (for attention: att:layer(l):mean(1)), got %s"):format(fname,
        ok and table.concat(shape, "x") or "a userdata"), 3)
    end
    return x:totable()
  end
  if type(x) ~= "table" or type(x[1]) ~= "table" or #x[1] == 0 then
    error(("lm.plot.%s: expects a 2-D matrix or a non-empty table of rows"):format(fname), 3)
  end
  for i = 2, #x do
    if type(x[i]) ~= "table" or #x[i] ~= #x[1] then error(("lm.plot.%s: row %d has a different length"):format(fname, i), 3) end
  end
  return x
end

-- A label for a token piece: spaces shown as "␣" at the start, newlines as "\n", cut to `n` characters.
local function piece_label(s, n)
  s = tostring(s):gsub("\n", "\\n"):gsub("\t", "\\t"):gsub("^ ", "␣")
  if (utf8.len(s) or #s) > n then s = s:sub(1, (utf8.offset(s, n) or n + 1) - 1) .. "…" end
  return s
end

doc.heatmap = {
  usage = "lm.plot.heatmap(matrix, {file=, labels=, xlabels=, ylabels=, title=, max=, cell=14, xlabel=\"key\", ylabel=\"query\"}) -> svg",
  text = "A heatmap of a 2-D matrix (an attention matrix: att:layer(l):mean(1) or att:layer(l, h)) as SVG text, "
    .. "written to file when given: one square cell per element, white for 0 through yellow and orange to dark "
    .. "red for max (default the largest value), with a tooltip holding the row, column and value, and a colour "
    .. "bar. labels (the token pieces, att.tokens) name both rows and columns; xlabels and ylabels name them "
    .. "separately. cell is the side of a cell in pixels.",
  example = "local att = m:attention(\"The cat sat on the mat\", {layers = {3}})\n"
    .. "lm.plot.heatmap(att:layer(3):mean(1), {labels = att.tokens, title = \"layer 3\", file = \"att.svg\"})",
}
function M.heatmap(x, opts)
  opts = options("heatmap", opts, {file = true, labels = true, xlabels = true, ylabels = true, title = true, max = true,
                                   cell = true, xlabel = true, ylabel = true})
  local rows = rows_of("heatmap", x)
  local R, C = #rows, #rows[1]
  local xl, yl = opts.xlabels or opts.labels, opts.ylabels or opts.labels
  local hi = opts.max
  if not hi then
    hi = -math.huge
    for _, r in ipairs(rows) do for _, v in ipairs(r) do if v == v then hi = math.max(hi, v) end end end
  end
  if not (hi > 0) then hi = 1 end
  local cell = opts.cell or 14
  local function longest(ls) local w = 0 for _, l in ipairs(ls or {}) do w = math.max(w, text_width(piece_label(l, 14), 11)) end return w end
  local left = 16 + (opts.ylabel ~= false and 18 or 0) + math.max(longest(yl), 12)
  local bottom_room = math.max(longest(xl) * 0.82 + 16, 24) + (opts.xlabel ~= false and 20 or 0)
  local bar_w = 70
  local width = math.floor(left + C * cell + bar_w + 24)
  local top = opts.title and 40 + 19 * (#title_lines(opts.title, width) - 1) or 16
  local c = chart({width = width, height = math.floor(top + R * cell + bottom_room),
                   title = opts.title, file = opts.file}, 0, 0)
  c.left, c.top, c.right, c.bottom = left, top, left + C * cell, top + R * cell
  c:add('<g class="cells">')
  for i, r in ipairs(rows) do
    for j, v in ipairs(r) do
      if v == v and v ~= 0 then
        local tip = ("%s → %s: %s"):format(yl and piece_label(yl[i], 20) or ("row " .. i), xl and piece_label(xl[j], 20)
          or ("column " .. j), label_number(v, 4))
        c:add('<rect class="cell" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>',
          coord(left + (j - 1) * cell), coord(top + (i - 1) * cell), coord(cell), coord(cell), heat(v / hi), escape(tip))
      end
    end
  end
  c:add('</g>')
  c:add('<rect class="frame" x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#888"/>', coord(left), coord(top),
    coord(C * cell), coord(R * cell))
  if yl then
    for i = 1, R do c:text(left - 4, top + (i - 0.5) * cell + 4, piece_label(yl[i] or "", 14), "end", 'class="tick" font-size="11"') end
  end
  if xl then
    for j = 1, C do
      local xx, yy = left + (j - 0.5) * cell + 4, c.bottom + 6
      c:text(xx, yy, piece_label(xl[j] or "", 14), "end",
        ('class="tick" font-size="11" transform="rotate(-60 %s %s)"'):format(coord(xx), coord(yy)))
    end
  end
  if opts.ylabel ~= false then
    local lx, ly = 14, top + R * cell / 2
    c:text(lx, ly, opts.ylabel or "query", "middle", ('class="label" transform="rotate(-90 %s %s)"'):format(coord(lx), coord(ly)))
  end
  if opts.xlabel ~= false then c:text(left + C * cell / 2, c.height - 6, opts.xlabel or "key", "middle", 'class="label"') end
  -- The colour bar: ten steps from 0 to max.
  local bx, bh = c.right + 18, math.max(R * cell, 60)
  c:add('<g class="colorbar">')
  for k = 0, 9 do
    c:add('<rect x="%s" y="%s" width="14" height="%s" fill="%s"/>', coord(bx), coord(top + (9 - k) * bh / 10), coord(bh / 10 + 0.5), heat((k + 0.5) / 10))
  end
  c:text(bx + 18, top + 10, label_number(hi, 3), "start", 'class="tick" font-size="11"')
  c:text(bx + 18, top + bh, "0", "start", 'class="tick" font-size="11"')
  c:add('</g>')
  return c:finish()
end

doc.surprisal = {
  usage = "lm.plot.surprisal(result, {file=, model=lm.model, labels=, title=, bits=false, width=, height=320}) -> svg",
  text = "A per-token surprisal chart as SVG text (written to file when given): one bar per token, the "
    .. "surprisal -log p of the token (nats; bits with bits = true), coloured from light (expected) to dark red "
    .. "(surprising), labelled with the token pieces below. result is anything with ids and logprobs (what "
    .. "m:generate and m:score return) or a plain list of log-probabilities (then labels name the tokens).",
  example = "local s = m:score(\"The capital of France is\", \" Paris, a city on the Seine.\")\n"
    .. "lm.plot.surprisal(s, {file = \"surprisal.svg\", title = \"surprisal\"})",
}
function M.surprisal(r, opts)
  opts = options("surprisal", opts, {file = true, model = true, labels = true, title = true, bits = true, width = true,
                                     height = true})
  local lps, labels = r, opts.labels
  if type(r) == "table" and type(r.logprobs) == "table" then
    lps = r.logprobs
    if not labels and r.ids then
      local m = opts.model or lm.model
      if not m then error("lm.plot.surprisal: no model to read the pieces from (give {model = m} or labels)", 2) end
      labels = {}
      for i, id in ipairs(r.ids) do labels[i] = m:token(id) end
    end
  end
  if type(lps) ~= "table" or #lps == 0 then error("lm.plot.surprisal: expects a result with logprobs, or a list of log-probabilities", 2) end
  local unit = opts.bits and math.log(2) or 1
  local s, top_value = {}, 0
  for i, lp in ipairs(lps) do
    if type(lp) ~= "number" then error(("lm.plot.surprisal: logprobs[%d] is not a number"):format(i), 2) end
    s[i] = -lp / unit
    top_value = math.max(top_value, s[i])
  end
  local longest = 0
  for _, l in ipairs(labels or {}) do longest = math.max(longest, text_width(piece_label(l, 14), 11)) end
  local width = opts.width or math.max(360, 110 + 16 * #s)
  local c = chart({width = width, height = opts.height or 320, title = opts.title, file = opts.file,
                   ylabel = opts.bits and "surprisal (bits)" or "surprisal (nats)"}, 0, math.max(longest * 0.82 + 16, 22))
  local yt, y0, y1 = ticks(0, math.max(top_value, 1e-6), 5)
  local sy = scale(y0, y1, c.bottom, c.top)
  c:y_axis(yt, sy)
  local slot = (c.right - c.left) / #s
  c:add('<g class="bars">')
  for i, v in ipairs(s) do
    local x = c.left + (i - 1) * slot + slot * 0.1
    local tip = ("%s: %s %s (p = %s)"):format(labels and piece_label(labels[i], 20) or ("token " .. i), label_number(v, 3),
      opts.bits and "bits" or "nats", label_number(math.exp(lps[i]), 3))
    c:add('<rect class="bar" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>', coord(x), coord(sy(v)),
      coord(slot * 0.8), coord(c.bottom - sy(v)), heat(0.15 + 0.85 * v / math.max(y1, 1e-9)), escape(tip))
  end
  c:add('</g>')
  local xlabels = {}
  for i = 1, #s do xlabels[i] = {x = c.left + (i - 0.5) * slot, text = labels and piece_label(labels[i], 14) or tostring(i)} end
  c:x_axis(xlabels, labels ~= nil)
  return c:finish()
end

-- Shared helpers, public because they are handy for labels and other charts ---------------------------------

doc.escape = {
  usage = "lm.plot.escape(text) -> text",
  text = "Text made safe for SVG or XML: & < > \" ' as entities, control characters removed (tab and newlines "
    .. "become spaces).",
  example = "print(lm.plot.escape('a < b & \"c\"'))  --> a &lt; b &amp; &quot;c&quot;",
}
M.escape = escape

doc.ticks = {
  usage = "lm.plot.ticks(lo, hi [, count=5]) -> ticks, first, last",
  text = "About count nice tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering lo..hi, and the "
    .. "range they span.",
  example = "print(table.concat(lm.plot.ticks(0, 0.83), \" \"))  --> 0 0.25 0.5 0.75 1",
}
M.ticks = ticks

for name, entry in pairs(doc) do
  entry.name = "lm.plot." .. name
  lm.document(M[name], entry)
end
lm.document(M, {
  name = "lm.plot",
  usage = "lm.plot",
  text = "Charts as SVG files, with no dependencies: bars (values with confidence-interval whiskers, e.g. "
    .. "accuracy per strategy), lines (one line per series, e.g. a metric per layer), heatmap (an attention "
    .. "matrix with token labels), surprisal (per-token -log p of a generation or score); escape and ticks, the "
    .. "helpers they share. Every chart returns its SVG text and writes it to opts.file when given.",
  example = "lm.plot.bars({{label = \"a\", value = 0.4, lo = 0.3, hi = 0.5}}, {file = \"a.svg\"})",
})
return M
