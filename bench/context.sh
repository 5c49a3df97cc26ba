#!/usr/bin/env bash
# Decode speed as the context grows, refrain beside llama.cpp on the same file and threads, in one run: for each
# context length N the cache is filled with N tokens once (timed: prompt processing at that length), then --tg
# tokens are decoded --runs times (rewound in between); medians. Prints a table and writes an SVG chart of
# milliseconds per token against N (a straight line is linear growth).
#   bench/context.sh [--runs N] [--threads T] [--tg N] [--contexts 128,512,2048,8192] [--svg FILE] [MODEL.gguf]
# Needs `./setup.sh --llama-cpp` first (pass --no-llama-cpp to measure refrain alone).
set -euo pipefail
cd "$(dirname "$0")/.."
REFRAIN_HOME="${REFRAIN_HOME:-$HOME/.cache/refrain}"
runs=3; threads=2; tg=32; contexts=128,512,2048,8192; svg=docs/context.svg; llama=1
model="$REFRAIN_HOME/models/SmolLM2-135M-Instruct.Q4_1.gguf"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --tg) tg="$2"; shift 2 ;;
    --contexts) contexts="$2"; shift 2 ;;
    --svg) svg="$2"; shift 2 ;;
    --no-llama-cpp) llama=0; shift ;;
    -*) echo "context.sh: unknown option $1" >&2; exit 2 ;;
    *) model="$1"; shift ;;
  esac
done
py="$REFRAIN_HOME/venv-llamacpp/bin/python"
if [ "$llama" = 1 ] && [ ! -x "$py" ]; then
  echo "context.sh: no llama.cpp venv at $REFRAIN_HOME/venv-llamacpp: run ./setup.sh --llama-cpp (or pass --no-llama-cpp)" >&2
  exit 1
fi
swift build -c release --product refrain >/dev/null
bin="$(swift build -c release --show-bin-path)/refrain"
results=()
for n in ${contexts//,/ }; do
  ours="$("$bin" bench --model "$model" --threads "$threads" --runs "$runs" --pp 0 --tg "$tg" --context "$n" --json)"
  theirs=null
  if [ "$llama" = 1 ]; then
    theirs="$("$py" bench/llama_cpp_bench.py --model "$model" --threads "$threads" --runs "$runs" --pp 0 --tg "$tg" --context "$n")"
  fi
  results+=("{\"context\": $n, \"refrain\": $ours, \"llama_cpp\": $theirs}")
done
printf '%s\n' "${results[@]}" | python3 bench/context_report.py --svg "$svg" --threads "$threads"
