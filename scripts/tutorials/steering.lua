-- Steering and interventions on the default model (docs/steering.md shows this script's output):
--   1. a happy-vs-sad steering vector from contrasting prompts (m:steer), its norms, and a dose-response of greedy
--      text over scales, beside a random direction of the same norms;
--   2. directional ablation and clamping, read back through m:hidden;
--   3. head ablation: every head of a layer zeroed equals the layer's attention removed;
--   4. activation patching: the position and layer that carry "France" rather than "Italy";
--   5. the vector saved in llama.cpp's control-vector format and loaded back.
-- Run: refrain run scripts/tutorials/steering.lua [out.gguf]
local m = lm.model
local PROMPT = "Tell me about your day."
local greedy = {max_tokens = 20, temperature = 0}
local function line(s) return (s:gsub("\n", " ")) end

print(("model %s, %d layers, embedding %d\n"):format(m.info.name or m.info.arch, m.info.layers, m.info.embedding))

-- 1. A steering vector and its dose-response.
local HAPPY = {"I am so happy today, everything is wonderful!", "What a joyful, delightful morning!",
               "I love this, it makes me smile.", "We won! This is the best day of my life!"}
local SAD = {"I am so sad today, everything is hopeless.", "What a gloomy, miserable morning.",
             "I hate this, it makes me cry.", "We lost. This is the worst day of my life."}
local v = m:steer(HAPPY, SAD)
local pca = m:steer(HAPPY, SAD, {method = "pca"})
print(tostring(v))
print(("norm at layers 5, 15, 25: %.1f %.1f %.1f (pca: %.1f %.1f %.1f)"):format(v:norm(5), v:norm(15), v:norm(25),
  pca:norm(5), pca:norm(15), pca:norm(25)))
local LAYERS = {8, 9, 10, 11, 12}
local random = lm.vector.random(v, {seed = 1})
print(("\ngreedy continuations of %q, the vector added after layers 8-12:"):format(PROMPT))
for _, s in ipairs{-0.3, -0.15, 0, 0.15, 0.3} do
  local g = m:generate(PROMPT, {max_tokens = 20, temperature = 0, intervene = {add = v, scale = s, layers = LAYERS}})
  print(("  scale %5.2f  %s"):format(s, line(g.text)))
end
for _, s in ipairs{-0.3, 0.3} do
  local r = m:generate(PROMPT, {max_tokens = 20, temperature = 0, intervene = {add = random, scale = s, layers = LAYERS}})
  print(("  random %5.2f %s"):format(s, line(r.text)))
end
-- The same dose-response as log-probabilities of two continuations.
print("\nlog p(continuation | prompt), summed over its tokens:")
for _, s in ipairs{-0.3, 0, 0.3} do
  local x = {intervene = {add = v, scale = s, layers = LAYERS}}
  print(("  scale %5.2f  ' I feel great' %7.2f   ' I feel terrible' %7.2f"):format(s,
    m:score(PROMPT, " I feel great", x).sum, m:score(PROMPT, " I feel terrible", x).sum))
end

-- 2. Directional ablation and clamping at layer 10, read back.
local u = v:normalized():get(10)
local function along(h)  -- the component of the last position's residual along u
  local row, dot = h[1][#h.ids], 0
  for i = 1, #u do dot = dot + row[i] * u[i] end
  return dot
end
print(("\ncomponent along the direction at layer 10, last position: plain %.3f, ablated %.3f, clamped to 5 %.3f"):format(
  along(m:hidden(PROMPT, {layers = 10})),
  along(m:hidden(PROMPT, {layers = 10, intervene = {ablate = v, layers = 10}})),
  along(m:hidden(PROMPT, {layers = 10, intervene = {clamp = v, value = 5, layers = 10}}))))

-- 3. Heads.
local C = " I went for a walk."
local plain = m:score(PROMPT, C).sum
local zero = m:score(PROMPT, C, {intervene = {heads = "all", layers = 4}}).sum
local removed = m:score(PROMPT, C, {intervene = {attention = 0, layers = 4}}).sum
local one = m:score(PROMPT, C, {intervene = {heads = {3}, layers = 4}}).sum
local mean = m:score(PROMPT, C, {intervene = {heads = {3}, layers = 4, mode = "mean", over = HAPPY}}).sum
print(("\nlog p(%q): plain %.3f; layer 4 with every head zeroed %.3f, its attention removed %.3f; head 3 zeroed %.3f, mean-ablated %.3f")
  :format(C, plain, zero, removed, one, mean))

-- 4. Activation patching.
local s = m:patching("The capital of France is the city of", "The capital of Italy is the city of",
  {target = " Paris", foil = " Rome", layers = {0, 6, 12, 18, 24, 29}})
print(("\npatching: log p(Paris) - log p(Rome) is %.2f clean, %.2f corrupted; share restored by patching one position:"):format(s.clean, s.corrupted))
local head = {"layer"}
for p = 1, #s.tokens do head[#head + 1] = ("%q"):format(s.tokens[p]) end
print("  " .. table.concat(head, " "))
for i, l in ipairs(s.layers) do
  local row = {("%5d"):format(l)}
  for p = 1, #s.tokens do row[#row + 1] = ("%.2f"):format(s.restored[i][p]) end
  print("  " .. table.concat(row, " "))
end

-- 5. llama.cpp's file format.
local out = arg[1] or os.tmpname() .. ".gguf"
v:save(out)
local w = lm.vector.load(out)
print(("\nsaved and loaded back: %s; norm of the difference at layer 15: %g"):format(tostring(w), (w - v):norm(15)))
print(("refrain generate --control-vector-scaled %s -0.3 --control-vector-layer-range 8 12 %q"):format(out, PROMPT))
