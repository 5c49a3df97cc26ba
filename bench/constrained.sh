#!/usr/bin/env bash
# The cost of a grammar: milliseconds per generated token with a grammar over without one, in refrain and in
# llama.cpp (through llama-cpp-python, whose constrained and free readings take the same path, so its ratio is its
# own), on the same GGUF, prompt, grammar, seed, temperature and thread count, runs interleaved. Prints each run
# and the median ratio of each engine. The free run generates as many tokens as the constrained one did. refrain's
# ratio is given cold (the first generation under the grammar in its process: every matcher state new) and warm
# (the next one, whose matcher states met before are known); llama.cpp computes every step's mask afresh. The
# vocabulary's byte trie, built by the first constrained call of a process whatever its grammar, is timed apart.
#   bench/constrained.sh [--runs N] [--tokens N] [--threads N] [--temperature T] [--sampling top-k|whole]
#                        [--grammar FILE | --schema FILE.json] [--prompt TEXT] [MODEL.gguf ...]
# --sampling: top-k (the default: top-k 40, top-p 0.95, min-p 0.05, both engines' defaults) or whole (top-k 0,
# top-p 1, min-p 0), on both engines. refrain draws the first from the best candidates and the second by rejection,
# so that neither needs a new state's whole mask; llama.cpp's binding applies the grammar to the whole vocabulary
# each step either way.
# --schema: a JSON schema, made into a grammar by refrain's converter (which gives llama.cpp's converter's grammar).
# Needs `./setup.sh --all --llama-cpp` first.
set -euo pipefail
cd "$(dirname "$0")/.."
REFRAIN_HOME="${REFRAIN_HOME:-$HOME/.cache/refrain}"
runs=5; tokens=64; threads=2; temperature=1; sampling=top-k; grammar=Tests/EngineTests/Fixtures/grammars/list.gbnf; models=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --tokens) tokens="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --temperature) temperature="$2"; shift 2 ;;
    --sampling) sampling="$2"; shift 2 ;;
    --grammar) grammar="$2"; shift 2 ;;
    --schema) schema="$2"; shift 2 ;;
    --prompt) prompt="$2"; shift 2 ;;
    *) models+=("$1"); shift ;;
  esac
done
[ ${#models[@]} -gt 0 ] || models=("$REFRAIN_HOME/models/SmolLM2-135M-Instruct.Q4_1.gguf" "$REFRAIN_HOME/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
py="$REFRAIN_HOME/venv-llamacpp/bin/python"
[ -x "$py" ] || { echo "constrained.sh: no llama.cpp venv at $REFRAIN_HOME/venv-llamacpp: run ./setup.sh --llama-cpp" >&2; exit 1; }
swift build -c release --product refrain >/dev/null
bin="$(swift build -c release --show-bin-path)/refrain"
if [ -n "${schema:-}" ]; then
  grammar="$(mktemp --suffix=.gbnf)"
  REFRAIN_STORE=0 "$bin" -e "io.write((lm.grammar{json_schema = assert(io.open('$schema')):read('a')}))" > "$grammar"
fi
prompt="${prompt:-A shopping list:
}"
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
for m in "${models[@]}"; do
  echo "## $(basename "$m"), grammar $(basename "${schema:-$grammar}"), $tokens tokens at most, temperature $temperature, sampling $sampling, $threads threads"
  echo "engine    run  tokens  ms/token cold  ms/token warm  ms/token free  ratio cold  ratio warm  trie ms"
  r_cold=(); r_warm=(); l_ratios=(); tries=()
  for i in $(seq "$runs"); do
    read -r n c w fc fw b < <(REFRAIN_STORE=0 "$bin" run --model "$m" --threads "$threads" bench/constrained.lua "$grammar" "$tokens" "$temperature" "$sampling" "$prompt")
    rc=$(awk -v c="$c" -v f="$fc" 'BEGIN {printf "%.3f", c / f}'); r_cold+=("$rc")
    rw=$(awk -v c="$w" -v f="$fw" 'BEGIN {printf "%.3f", c / f}'); r_warm+=("$rw")
    f="$fw"
    tries+=("$b")
    printf "refrain   %3d  %6d  %13s  %13s  %13s  %10s  %10s  %7s\n" "$i" "$n" "$c" "$w" "$f" "$rc" "$rw" "$b"
    read -r n c f < <("$py" bench/constrained_llama.py "$m" "$grammar" "$tokens" "$temperature" "$threads" "$sampling" "$prompt" 2>/dev/null)
    r=$(awk -v c="$c" -v f="$f" 'BEGIN {printf "%.3f", c / f}'); l_ratios+=("$r")
    printf "llama.cpp %3d  %6d  %13s  %13s  %13s  %10s  %10s\n" "$i" "$n" "$c" "-" "$f" "$r" "-"
  done
  echo "median ratio: refrain cold $(printf '%s\n' "${r_cold[@]}" | median) (range $(printf '%s\n' "${r_cold[@]}" | sort -g | head -1)-$(printf '%s\n' "${r_cold[@]}" | sort -g | tail -1)), warm $(printf '%s\n' "${r_warm[@]}" | median) (range $(printf '%s\n' "${r_warm[@]}" | sort -g | head -1)-$(printf '%s\n' "${r_warm[@]}" | sort -g | tail -1)); llama.cpp $(printf '%s\n' "${l_ratios[@]}" | median) (range $(printf '%s\n' "${l_ratios[@]}" | sort -g | head -1)-$(printf '%s\n' "${l_ratios[@]}" | sort -g | tail -1)); refrain's trie, once per process: $(printf '%s\n' "${tries[@]}" | median) ms"
done
