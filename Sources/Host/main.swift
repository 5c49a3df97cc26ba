// refrain's command line. The REPL comes with the Lua host; for now: tokenize, generate, score, bench.
import Engine

print("refrain: not yet")
