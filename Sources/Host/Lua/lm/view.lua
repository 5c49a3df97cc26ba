-- lm.view: pictures in the terminal. The tokens of a generation coloured by their probability (with one
-- position's alternatives and entropy on request), and a compact heatmap of a matrix (attention). Colour (ANSI
-- escapes) only when writing to a terminal and NO_COLOR is unset, or when opts.color says so; without colour
-- the same information is written in plain characters (brackets, shade blocks).
local lm = require "lm"
local M, doc = {}, {}

-- Read when the host starts, before refrain --sandbox takes the environment away.
local getenv = os.getenv

local function use_color(opts)
  if opts.color ~= nil then return opts.color end
  local no = getenv("NO_COLOR")
  return (no == nil or no == "") and lm.isatty(io.stdout)
end

local function check_options(fname, opts, known)
  opts = opts or {}
  if type(opts) ~= "table" then error(("lm.view.%s: options must be a table, got %s"):format(fname, type(opts)), 3) end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(("lm.view.%s: unknown option '%s' (%s)"):format(fname, tostring(k), table.concat(names, ", ")), 3)
    end
  end
  return opts
end

-- Probability bands, most likely first: the least p of the band, its ANSI colour, its name in the legend.
local BANDS = {{0.9, "32", "p>=.9"}, {0.5, "36", ">=.5"}, {0.2, "33", ">=.2"}, {0.05, "35", ">=.05"}, {0, "31", "<.05"}}
local function band(p)
  for _, b in ipairs(BANDS) do if p >= b[1] then return b end end
  return BANDS[#BANDS]
end

-- A piece as it should appear in a one-line listing (newlines and tabs visible).
local function visible(s) return (s:gsub("\n", "\\n"):gsub("\t", "\\t")) end

doc.render_tokens = {
  usage = "lm.view.render_tokens(result [, {model=, position=, color=, legend=true}]) -> text",
  text = "The text lm.view.tokens prints, as a string.",
  example = "local s = lm.view.render_tokens(r, {color = false})",
}
function M.render_tokens(r, opts)
  opts = check_options("tokens", opts, {model = true, position = true, color = true, legend = true})
  if type(r) ~= "table" or type(r.ids) ~= "table" or type(r.logprobs) ~= "table" then
    error("lm.view.tokens: expects a generation result (with ids and logprobs)", 3)
  end
  local m = opts.model or lm.model
  if not m then error("lm.view.tokens: no model to read the pieces from (give {model = m})", 3) end
  local color = use_color(opts)
  local pos = opts.position
  if pos ~= nil and (not math.tointeger(pos) or pos < 1 or pos > #r.ids) then
    error(("lm.view.tokens: position %s is not a token of the result (1..%d)"):format(tostring(pos), #r.ids), 3)
  end
  local out = {}
  for i, id in ipairs(r.ids) do
    local piece, p = m:token(id), math.exp(r.logprobs[i])
    if color then
      local b = band(p)
      out[#out + 1] = ("\27[%s%sm%s\27[0m"):format(b[2], i == pos and ";7" or "", piece)
    elseif i == pos then
      out[#out + 1] = ("[[%s]]"):format(piece)
    elseif p < 0.5 then
      out[#out + 1] = ("[%s|%d%%]"):format(visible(piece), math.floor(100 * p + 0.5))
    else
      out[#out + 1] = piece
    end
  end
  local text = table.concat(out)
  if opts.legend ~= false then
    if color then
      local parts = {}
      for _, b in ipairs(BANDS) do parts[#parts + 1] = ("\27[%sm%s\27[0m"):format(b[2], b[3]) end
      text = text .. "\n(" .. table.concat(parts, " ") .. ")"
    else
      text = text .. "\n([piece|p%]: tokens the model gave less than 50%)"
    end
  end
  if pos then
    local p = math.exp(r.logprobs[pos])
    local lines = {("position %d: %q  p = %.3f  logprob = %.3f"):format(pos, visible(m:token(r.ids[pos])), p, r.logprobs[pos])}
    if r.entropy and r.entropy[pos] and r.entropy[pos] == r.entropy[pos] then
      lines[1] = lines[1] .. ("  entropy = %.3f nats"):format(r.entropy[pos])
    end
    if r.top and r.top[pos] then
      for k, alt in ipairs(r.top[pos]) do
        local q = ("%q"):format(visible(alt.piece))
        lines[#lines + 1] = ("  %2d. %-18s %6.3f  (logprob %.3f)"):format(k, q, math.exp(alt.logprob), alt.logprob)
      end
    else
      lines[#lines + 1] = "  (generate with {logprobs = k} for the alternatives and the entropy)"
    end
    text = text .. "\n" .. table.concat(lines, "\n")
  end
  return text
end

doc.tokens = {
  usage = "lm.view.tokens(result [, {model=lm.model, position=, color=, legend=true}])",
  text = "Prints a generation's tokens coloured by the probability the model gave each one (green: 90% or more, "
    .. "cyan 50%, yellow 20%, magenta 5%, red below; without colour, tokens under 50% are written [piece|p%]). "
    .. "position = i marks token i and lists its alternatives with their probabilities and the entropy of the "
    .. "model's distribution there (generate with {logprobs = k} to have them).",
  example = "local r = m:generate(\"The capital of France is\", {max_tokens = 12, temperature = 0, logprobs = 5})\n"
    .. "lm.view.tokens(r, {position = 2})",
}
function M.tokens(r, opts)
  io.stdout:write(M.render_tokens(r, opts), "\n")
end

-- Shades from light to dark, and a 256-colour ramp (white through yellow and orange to dark red).
local SHADES = {" ", "░", "▒", "▓", "█"}
local RAMP = {231, 230, 229, 228, 227, 221, 215, 209, 203, 197, 161, 125, 89, 52}

-- The matrix as rows of numbers, average-pooled to at most max_rows x max_cols cells.
local function pooled(x, max_rows, max_cols)
  local t = x:totable()
  local R, C = #t, #t[1]
  local fr, fc = math.max(1, math.ceil(R / max_rows)), math.max(1, math.ceil(C / max_cols))
  local out = {}
  for i = 1, math.ceil(R / fr) do
    local row = {}
    for j = 1, math.ceil(C / fc) do
      local s, n = 0, 0
      for a = (i - 1) * fr + 1, math.min(i * fr, R) do
        for b = (j - 1) * fc + 1, math.min(j * fc, C) do s, n = s + t[a][b], n + 1 end
      end
      row[j] = s / n
    end
    out[i] = row
  end
  return out, fr, fc
end

doc.render_heatmap = {
  usage = "lm.view.render_heatmap(matrix [, opts]) -> text",
  text = "The text lm.view.heatmap prints, as a string.",
  example = "local s = lm.view.render_heatmap(att:layer(3):mean(1), {color = false})",
}
function M.render_heatmap(x, opts)
  opts = check_options("heatmap", opts, {labels = true, color = true, max = true, width = true, height = true, title = true})
  if type(x) == "table" then x = lm.matrix(x) end
  local ok, shape = pcall(function() return x:shape() end)
  if not ok or #shape ~= 2 then error("lm.view.heatmap: expects a 2-D matrix (for attention: att:layer(l):mean(1))", 3) end
  local color = use_color(opts)
  local labels = opts.labels
  local label_w = 0
  if labels then
    for i = 1, #labels do label_w = math.max(label_w, utf8.len(visible(labels[i])) or #labels[i]) end
    label_w = math.min(label_w, 12)
  end
  local cell = color and 2 or 1
  local rows, fr, fc = pooled(x, opts.height or 48, math.floor(((opts.width or 100) - label_w - 1) / cell))
  local hi = opts.max or x:max()
  if hi <= 0 then hi = 1 end
  local out = {}
  if opts.title then out[1] = opts.title end
  if fr > 1 or fc > 1 then
    out[#out + 1] = ("(%dx%d matrix, each cell the mean of %dx%d)"):format(shape[1], shape[2], fr, fc)
  end
  for i, row in ipairs(rows) do
    local line = {}
    if labels then
      local l = fr == 1 and visible(labels[i] or "") or ("%d-%d"):format((i - 1) * fr + 1, math.min(i * fr, shape[1]))
      if utf8.len(l) and utf8.len(l) > label_w then l = l:sub(1, utf8.offset(l, label_w + 1) - 1) end
      line[1] = l .. (" "):rep(label_w - (utf8.len(l) or #l)) .. " "
    end
    for _, v in ipairs(row) do
      local f = math.max(0, math.min(1, v / hi))
      if color then
        line[#line + 1] = ("\27[48;5;%dm  "):format(RAMP[math.floor(f * (#RAMP - 1) + 0.5) + 1])
      else
        line[#line + 1] = SHADES[math.floor(f * (#SHADES - 1) + 0.5) + 1]
      end
    end
    if color then line[#line + 1] = "\27[0m" end
    out[#out + 1] = table.concat(line)
  end
  out[#out + 1] = ("scale: 0 .. %.3g (%s)"):format(hi, color and "light to dark red" or "' ░▒▓█'")
  return table.concat(out, "\n")
end

doc.heatmap = {
  usage = "lm.view.heatmap(matrix [, {labels=, color=, max=, width=100, height=48, title=}])",
  text = "Prints a 2-D matrix (or nested table) as a heatmap in the terminal: one cell per element, darker for "
    .. "larger values (256-colour backgrounds on a terminal, the shade blocks ' ░▒▓█' without colour), scaled "
    .. "to max (default the matrix's largest value). Rows are labelled with labels (token pieces, say). A matrix "
    .. "larger than width x height characters is averaged in blocks to fit, and says so.",
  example = "local att = m:attention(\"The cat sat on the mat\", {layers = {3}})\n"
    .. "lm.view.heatmap(att:layer(3):mean(1), {labels = att.tokens})",
}
function M.heatmap(x, opts)
  io.stdout:write(M.render_heatmap(x, opts), "\n")
end

for name, entry in pairs(doc) do
  entry.name = "lm.view." .. name
  lm.document(M[name], entry)
end
lm.document(M, {
  name = "lm.view",
  usage = "lm.view",
  text = "Terminal views: tokens (a generation coloured by token probability, one position's alternatives and "
    .. "entropy) and heatmap (a matrix, attention say, as shaded cells). render_tokens and render_heatmap return "
    .. "the text instead of printing it.",
  example = "lm.view.tokens(m:generate(\"Hi\", {max_tokens = 8, logprobs = 3}), {position = 1})",
})
return M
