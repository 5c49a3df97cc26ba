-- Counts the comparisons the results in a folder of experiment folders report: every row of a Markdown table with a
-- "Holm p" column (the runner's results.md, the report scripts' tables) that holds a p-value, that is, every test
-- of an arm or a read-out against its baseline. The total is the number docs/results/README.md gives for the
-- multiple comparisons made in all; the per-folder counts follow it.
--
--   refrain run scripts/experiments/comparisons.lua docs/results
local root = arg[1] or "docs/results"

local function cells(line)
  local out = {}
  for c in (line:match("^|(.*)|%s*$") or ""):gmatch("([^|]*)") do out[#out + 1] = c:match("^%s*(.-)%s*$") end
  return out
end

local p = assert(io.popen("ls -1 " .. ("%q"):format(root)))
local folders = {}
for name in p:lines() do folders[#folders + 1] = name end
p:close()

local total, rows = 0, {}
for _, name in ipairs(folders) do
  local q = io.popen(("ls -1 %q/%q/*.md 2>/dev/null"):format(root, name))
  local count = 0
  for path in q:lines() do
    if not path:match("/README%.md$") then
      local pcol
      for line in io.lines(path) do
        if line:match("^|") then
          local c = cells(line)
          local header = false
          for i, text in ipairs(c) do
            if text == "Holm p" then pcol, header = i - 1, true end
          end
          if not header and pcol and c[pcol] and (c[pcol]:match("^<?[01]%.%d+$")) then count = count + 1 end
        else
          pcol = nil
        end
      end
    end
  end
  q:close()
  if count > 0 then rows[#rows + 1] = ("%s %d"):format(name, count) end
  total = total + count
end
print(("%d comparisons in all"):format(total))
for _, r in ipairs(rows) do print(r) end
