-- lm.plot: the SVG it writes is well-formed XML (checked by a small parser below), and holds the bars, whiskers,
-- lines, points, tick labels, legend and escaped text asked for. Needs no model.
local T = dofile((arg[0]:match("(.*/)") or "./") .. "check.lua")
local P = lm.plot

-- Parses XML enough to check it is well-formed: every tag closed in order, attributes quoted and not repeated,
-- text and attribute values free of raw '<' and of '&' outside an entity. -> the elements, each
-- {name=, attrs=, text=, parent=} in document order (text: the element's own text, entities decoded).
local ENTITIES = {amp = "&", lt = "<", gt = ">", quot = '"', apos = "'"}
local function decode(s, where)
  if s:find("<", 1, true) then error("raw '<' in " .. where, 3) end
  return (s:gsub("&([#%w]*);?", function(name)
    if ENTITIES[name] then return ENTITIES[name] end
    local n = name:match("^#(%d+)$")
    if n then return utf8.char(tonumber(n)) end
    error("bad entity '&" .. name .. "' in " .. where, 5)
  end))
end

local function parse(svg)
  local elements, stack, i = {}, {}, 1
  local prolog = svg:match("^<%?xml[^?]*%?>%s*()")
  if prolog then i = prolog end
  local root_seen = false
  while i <= #svg do
    local lt = svg:find("<", i, true)
    local text = svg:sub(i, (lt or #svg + 1) - 1)
    if #stack == 0 then
      if text:find("%S") then error("text outside the root element: " .. text) end
    else
      local e = stack[#stack]
      e.text = e.text .. decode(text, "text of <" .. e.name .. ">")
    end
    if not lt then break end
    local gt = svg:find(">", lt, true) or error("unclosed tag at byte " .. lt)
    local tag = svg:sub(lt + 1, gt - 1)
    if tag:sub(1, 1) == "/" then
      local name = tag:sub(2)
      local open = table.remove(stack) or error("</" .. name .. "> closes nothing")
      if open.name ~= name then error("</" .. name .. "> closes <" .. open.name .. ">") end
    else
      local selfclose = tag:sub(-1) == "/"
      if selfclose then tag = tag:sub(1, -2) end
      local name, rest = tag:match("^([%w:%-]+)(.*)$")
      if not name then error("bad tag <" .. tag .. ">") end
      if #stack == 0 then
        if root_seen then error("a second root element <" .. name .. ">") end
        root_seen = true
      end
      local attrs = {}
      rest = rest:gsub('%s+([%w:%-]+)="([^"]*)"', function(k, v)
        if attrs[k] then error("attribute " .. k .. " twice in <" .. name .. ">") end
        attrs[k] = decode(v, "attribute " .. k)
        return ""
      end)
      if rest:find("%S") then error("bad attributes in <" .. name .. ">: " .. rest) end
      local e = {name = name, attrs = attrs, text = "", parent = stack[#stack]}
      elements[#elements + 1] = e
      if not selfclose then stack[#stack + 1] = e end
    end
    i = gt + 1
  end
  if #stack > 0 then error("<" .. stack[#stack].name .. "> is never closed") end
  if not root_seen then error("no root element") end
  return elements
end

local function find_all(els, name, class)
  local out = {}
  for _, e in ipairs(els) do
    if e.name == name and (class == nil or e.attrs.class == class) then out[#out + 1] = e end
  end
  return out
end

local function texts(els, class)
  local out = {}
  for _, e in ipairs(find_all(els, "text", class)) do out[#out + 1] = e.text end
  return out
end

local function has(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

T.test("the checker itself rejects what is not well-formed", function()
  T.err(function() parse("<svg><g></svg>") end, "closes <g>")
  T.err(function() parse('<svg a="1" a="2"/>') end, "twice")
  T.err(function() parse("<svg>a & b</svg>") end, "bad entity")
  T.err(function() parse("<svg/><svg/>") end, "second root")
  T.eq(#parse('<?xml version="1.0"?>\n<svg><t a="&lt;">x &amp; y</t></svg>'), 2)
end)

T.test("bars: one rect per value, whiskers, value and tick labels, escaped labels", function()
  local path = os.tmpname()
  local svg = P.bars({
    {label = "greedy", value = 0.41, lo = 0.34, hi = 0.48},
    {label = "sc <n=8> & \"co\"", value = 0.52, lo = 0.45, hi = 0.59},
    {label = "no interval", value = 0.2},
  }, {file = path, title = "Accuracy & more", ylabel = "accuracy", ymin = 0, ymax = 1})
  local f = io.open(path); T.eq(f:read("a"), svg, "the file holds what was returned"); f:close(); os.remove(path)
  T.ok(svg:find('^<%?xml version="1.0" encoding="UTF%-8"%?>\n<svg xmlns="http://www.w3.org/2000/svg"'))
  local els = parse(svg)
  T.eq(els[1].name, "svg")
  local bars = find_all(els, "rect", "bar")
  T.eq(#bars, 3)
  local tips = {}
  for _, e in ipairs(find_all(els, "title")) do if e.parent == bars[2] then tips[#tips + 1] = e.text end end
  T.eq(tips[1], "sc <n=8> & \"co\": 0.52 [0.45, 0.59]", "tooltip")
  T.eq(#find_all(els, "path", "whisker"), 2)
  local ticks = texts(els, "tick")
  for _, t in ipairs({"0", "0.2", "0.4", "0.6", "0.8", "1", "greedy", "sc <n=8> & \"co\"", "no interval"}) do
    T.ok(has(ticks, t), "tick label " .. t)
  end
  T.ok(svg:find("sc &lt;n=8&gt; &amp; &quot;co&quot;", 1, true), "escaped in the file")
  T.ok(has(texts(els, "value"), "0.41") and has(texts(els, "value"), "0.20"))
  T.eq(texts(els, "title")[1], "Accuracy & more"); T.eq(texts(els, "label")[1], "accuracy")
  T.eq(#find_all(els, "g", "legend"), 0, "one series: no legend")
  -- Heights: a bar of 0.52 on a 0..1 axis is 0.52 of the axis, and taller than the 0.41 one.
  local h1, h2 = tonumber(bars[1].attrs.height), tonumber(bars[2].attrs.height)
  T.ok(math.abs(h2 / h1 - 0.52 / 0.41) < 0.01, ("heights %s %s"):format(h1, h2))
end)

T.test("bars: clusters with a legend, errors as pairs and half-widths, negative values", function()
  local els = parse(P.bars({
    {label = "arithmetic", value = {0.4, 0.5}},
    {label = "gsm8k", value = {0.1, 0 / 0}},
  }, {series = {"greedy", "sc"}, errors = {{{0.3, 0.5}, 0.05}, {0.02, nil}}}))
  T.eq(#find_all(els, "rect", "bar"), 3, "a NaN value leaves a gap")
  T.eq(#find_all(els, "path", "whisker"), 3)
  T.eq(#find_all(els, "g", "legend"), 1)
  local legend = texts(els, "legend-label")
  T.eq(#legend, 2); T.eq(legend[1], "greedy"); T.eq(legend[2], "sc")
  local neg = parse(P.bars({{label = "a", value = -2}, {label = "b", value = 3}}))
  T.ok(has(texts(neg, "tick"), "-2") and has(texts(neg, "tick"), "3"), table.concat(texts(neg, "tick"), " "))
end)

T.test("lines: one path per series, gaps, points, x ticks at the given xs, legend", function()
  local path = os.tmpname()
  local svg = P.lines({
    {name = "correct", values = {0.12, 0.15, 0.14, 0 / 0, 0.2}},
    {name = "wrong <traces>", values = {0.11, 0.12, 0.12, 0.13, 0.1}},
  }, {file = path, xs = {0, 1, 2, 3, 4}, xlabel = "layer", ylabel = "attention on the question", title = "Attention"})
  os.remove(path)
  local els = parse(svg)
  local lines = find_all(els, "path", "line")
  T.eq(#lines, 2)
  local _, moves = lines[1].attrs.d:gsub("M", "")
  T.eq(moves, 2, "the NaN breaks the first line")
  T.eq((lines[2].attrs.d:gsub("[^L]", "")), "LLLL")
  T.eq(#find_all(els, "circle", "point"), 9)
  local ticks = texts(els, "tick")
  for _, t in ipairs({"0", "1", "2", "3", "4"}) do T.ok(has(ticks, t), "x tick " .. t) end
  local legend = texts(els, "legend-label")
  T.eq(legend[1], "correct"); T.eq(legend[2], "wrong <traces>")
  T.eq(texts(els, "label")[1], "attention on the question"); T.eq(texts(els, "label")[2], "layer")
  T.eq(els[1].attrs.width, "640")
  -- Many points: no markers; x values of their own; nice ticks.
  local xs, ys = {}, {}
  for i = 1, 100 do xs[i] = i * 0.37; ys[i] = math.sin(i / 10) end
  local many = parse(P.lines({{name = "sin", xs = xs, values = ys}}, {width = 800, height = 300}))
  T.eq(#find_all(many, "circle", "point"), 0)
  T.eq(many[1].attrs.width, "800")
end)

T.test("escape and ticks", function()
  T.eq(P.escape('a < b & "c" \'d\' > e'), "a &lt; b &amp; &quot;c&quot; &#39;d&#39; &gt; e")
  T.eq(P.escape("tab\tnew\nline\1"), "tab new line")
  T.eq(table.concat(P.ticks(0, 0.83), " "), "0 0.25 0.5 0.75 1")
  T.eq(table.concat(P.ticks(0, 1, 6), " "), "0 0.2 0.4 0.6 0.8 1")
  T.eq(table.concat(P.ticks(-3, 17), " "), "-5 0 5 10 15 20")
  local t, lo, hi = P.ticks(3, 3)
  T.ok(lo < 3 and hi > 3 and #t >= 2, "a single value gets a range around it")
end)

T.test("errors name the argument", function()
  T.err(function() P.bars({}) end, "lm.plot.bars: groups must be a non-empty list")
  T.err(function() P.bars({{label = "a", value = "x"}}) end, "lm.plot.bars: groups[1].value must be a number, got string")
  T.err(function() P.bars({{label = "a", value = 1}}, {colour = "red"}) end, "lm.plot.bars: unknown option 'colour'")
  T.err(function() P.lines({{name = "a"}}) end, "lm.plot.lines: series[1] must be a table {name=, values={...}}")
  T.err(function() P.lines({{name = "a", values = {0 / 0}}}) end, "lm.plot.lines: no finite points")
  T.err(function() P.lines({{values = {1}}}, {xlabl = "x"}) end, "unknown option 'xlabl'")
  T.err(function() P.bars({{label = "a", value = 1}}, {file = "/nonexistent/dir/a.svg"}) end, "lm.plot: cannot write")
end)

T.test("help", function()
  T.ok(lm.doc(P.bars):find("lm.plot.bars(groups [, {file=", 1, true))
  T.ok(lm.doc(P.lines):find("lm.plot.lines(series [, {file=", 1, true))
  T.ok(lm.doc(P):find("lm.plot.bars(", 1, true), lm.doc(P))
  T.eq(require("lm.plot"), P)
end)

T.test("heatmap: one cell per non-zero element, coloured by value, token labels on both axes, a colour bar", function()
  local path = os.tmpname()
  local x = lm.matrix({{1, 0, 0}, {0.5, 0.5, 0}, {0.2, 0.3, 0.5}})
  local svg = P.heatmap(x, {labels = {"<s>", " cat", "\n"}, title = "layer 3", file = path})
  local f = io.open(path); T.eq(f:read("a"), svg); f:close(); os.remove(path)
  local els = parse(svg)
  local cells = find_all(els, "rect", "cell")
  T.eq(#cells, 6, "the zeros above the diagonal are left white")
  T.eq(cells[1].attrs.fill, "#800026", "the largest value is dark red")
  local tips = {}
  for _, e in ipairs(find_all(els, "title")) do if e.parent == cells[2] then tips[#tips + 1] = e.text end end
  T.eq(tips[1], "␣cat → <s>: 0.5")
  local ticks = texts(els, "tick")
  for _, t in ipairs({"<s>", "␣cat", "\\n", "1", "0"}) do T.ok(has(ticks, t), "label " .. t) end
  T.ok(svg:find("&lt;s&gt;", 1, true), "escaped")
  T.eq(#find_all(els, "g", "colorbar"), 1)
  T.eq(texts(els, "label")[1], "query"); T.eq(texts(els, "label")[2], "key")
  -- Nested tables work too, and the scale can be fixed.
  local els2 = parse(P.heatmap({{0.25, 0.5}}, {max = 1}))
  T.eq(#find_all(els2, "rect", "cell"), 2)
  T.err(function() P.heatmap(lm.matrix({1, 2, 3})) end, "expects a 2-D matrix")
  T.err(function() P.heatmap({{1, 2}, {3}}) end, "row 2 has a different length")
end)

T.test("surprisal: one bar per token, heights -logprob, labels from the pieces", function()
  local svg = P.surprisal({-0.1, -2.3, -0.7}, {labels = {"The", " cat", " sat"}, title = "surprisal"})
  local els = parse(svg)
  local bars = find_all(els, "rect", "bar")
  T.eq(#bars, 3)
  local h = {}
  for i, b in ipairs(bars) do h[i] = tonumber(b.attrs.height) end
  T.ok(h[2] > h[3] and h[3] > h[1], "taller for more surprising tokens")
  local tips = {}
  for _, e in ipairs(find_all(els, "title")) do if e.parent == bars[2] then tips[#tips + 1] = e.text end end
  T.eq(tips[1], "␣cat: 2.3 nats (p = 0.1)")
  T.ok(has(texts(els, "tick"), "␣sat"))
  T.eq(texts(els, "label")[1], "surprisal (nats)")
  local bits = parse(P.surprisal({-math.log(2)}, {bits = true}))
  T.eq(texts(bits, "label")[1], "surprisal (bits)")
  T.err(function() P.surprisal({}) end, "expects a result with logprobs")
end)

T.test("a long title is wrapped at spaces, not cut off at the chart's edges", function()
  local long = "GSM8K test, 100 items × 3 seed sets, Qwen2.5 Coder 0.5B Instruct AWQ: neutral, heart, fixed and blind feedback"
  local svg = P.bars({{label = "a", value = 0.5}}, {title = long, width = 480})
  local lines = {}
  for line in svg:gmatch('<text class="title"[^>]*>([^<]*)</text>') do lines[#lines + 1] = line end
  T.ok(#lines >= 2, "wrapped into " .. #lines .. " lines")
  T.eq(table.concat(lines, " "), long, "every word kept, in order")
  for _, l in ipairs(lines) do T.ok(utf8.len(l) * 9.2 <= 480 - 24, "fits: " .. l) end
  T.ok(svg:find("<title>" .. long .. "</title>", 1, true), "the whole title is the tooltip")
  local short = P.bars({{label = "a", value = 0.5}}, {title = "Accuracy"})
  local n = 0
  for _ in short:gmatch('<text class="title"') do n = n + 1 end
  T.eq(n, 1)
end)

T.done()
