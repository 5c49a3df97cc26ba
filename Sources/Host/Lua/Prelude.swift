// The Lua half of the host: the pretty-printer the REPL shows values with (`lm.pretty`). Written in Lua because
// it walks tables the way Lua code does (`pairs` honours `__pairs`).
extension LuaHost {
    /// A chunk returning the pretty-printer `pretty(value [, opts])`.
    static let prelude = #"""
    local MAX_DEPTH, MAX_ITEMS, MAX_STRING, WIDTH = 4, 24, 400, 78

    local keywords = {}
    for w in ([[and break do else elseif end false for function goto if in local nil not or repeat return then
                true until while]]):gmatch("%a+") do keywords[w] = true end

    local function quote(s)
      local body = s
      local folded = ""
      if #s > MAX_STRING then body = s:sub(1, MAX_STRING); folded = "... (" .. #s .. " bytes)" end
      body = body:gsub('[%c"\\]', function(c)
        local named = { ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r", ['"'] = '\\"', ["\\"] = "\\\\" }
        return named[c] or string.format("\\%03d", c:byte())
      end)
      return '"' .. body .. '"' .. folded
    end

    local function scalar(v)
      if type(v) == "string" then return quote(v) end
      if math.type(v) == "float" and v == v and v ~= math.huge and v ~= -math.huge then
        return string.format("%.6g", v)
      end
      return tostring(v)
    end

    -- Numbers first (in order), then strings, then the rest by their text.
    local rank = { number = 1, string = 2 }
    local function before(a, b)
      local ra, rb = rank[type(a)] or 3, rank[type(b)] or 3
      if ra ~= rb then return ra < rb end
      if ra == 3 then return tostring(a) < tostring(b) end
      return a < b
    end

    local function key(k)
      if type(k) == "string" and k:match("^[%a_][%w_]*$") and not keywords[k] then return k end
      return "[" .. scalar(k) .. "]"
    end

    local format
    local function tbl(t, depth, open, indent)
      local mt = getmetatable(t)
      if type(mt) == "table" and rawget(mt, "__tostring") then return tostring(t) end
      if open[t] then return "<cycle: " .. tostring(t) .. ">" end
      if depth > MAX_DEPTH then return "{...}" end
      open[t] = true
      local n = 0
      while rawget(t, n + 1) ~= nil do n = n + 1 end
      local keys = {}
      for k in pairs(t) do
        if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
      end
      table.sort(keys, before)
      local parts, inner = {}, indent .. "  "
      for i = 1, math.min(n, MAX_ITEMS) do parts[#parts + 1] = format(t[i], depth + 1, open, inner) end
      if n > MAX_ITEMS then parts[#parts + 1] = "... (" .. (n - MAX_ITEMS) .. " more)" end
      for i = 1, math.min(#keys, MAX_ITEMS) do
        local k = keys[i]
        parts[#parts + 1] = key(k) .. " = " .. format(t[k], depth + 1, open, inner)
      end
      if #keys > MAX_ITEMS then parts[#parts + 1] = "... (" .. (#keys - MAX_ITEMS) .. " more keys)" end
      open[t] = nil
      if #parts == 0 then return "{}" end
      local line = "{" .. table.concat(parts, ", ") .. "}"
      if #line + #indent <= WIDTH and not line:find("\n", 1, true) then return line end
      return "{\n" .. inner .. table.concat(parts, ",\n" .. inner) .. ",\n" .. indent .. "}"
    end

    format = function(v, depth, open, indent)
      if type(v) == "table" then return tbl(v, depth, open, indent) end
      return scalar(v)
    end

    -- A value at the top level prints as tostring makes it, as in lua.c; tables are laid out, strings inside
    -- them quoted and numbers shortened.
    return function(v)
      if type(v) ~= "table" then return tostring(v) end
      return format(v, 1, {}, "")
    end
    """#
}
