#!/usr/bin/env bash
# refrain against llama.cpp on the same GGUF files and thread counts, in one run: prints both engines'
# pp128, pp512 and tg128 tokens per second (medians) and the ratios refrain / llama.cpp.
#   bench/compare.sh [--runs N] [--threads 1,2] [--baseline BIN] [MODEL.gguf ...]   (default: the three models in
#   the cache). --baseline BIN also measures another refrain build (an older commit's, say) in the same run, each
#   measurement right after this build's, and prints the ratios this build / BIN.
# Needs `./setup.sh --all --llama-cpp` first.
set -euo pipefail
cd "$(dirname "$0")/.."
REFRAIN_HOME="${REFRAIN_HOME:-$HOME/.cache/refrain}"
runs=5; threads=1,2; models=(); baseline=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --baseline) baseline="$2"; shift 2
      [ -x "$baseline" ] || { echo "compare.sh: --baseline $baseline is not an executable" >&2; exit 1; } ;;
    *) models+=("$1"); shift ;;
  esac
done
if [ ${#models[@]} -eq 0 ]; then
  for f in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; do
    models+=("$REFRAIN_HOME/models/$f")
  done
fi
py="$REFRAIN_HOME/venv-llamacpp/bin/python"
[ -x "$py" ] || { echo "compare.sh: no llama.cpp venv at $REFRAIN_HOME/venv-llamacpp: run ./setup.sh --llama-cpp" >&2; exit 1; }
swift build -c release --product refrain >/dev/null
bin="$(swift build -c release --show-bin-path)/refrain"
for m in "${models[@]}"; do
  ours="$("$bin" bench --model "$m" --threads "$threads" --runs "$runs" --json)"
  base="null"; base512="null"
  [ -n "$baseline" ] && base="$("$baseline" bench --model "$m" --threads "$threads" --runs "$runs" --json)"
  ours512="$("$bin" bench --model "$m" --threads "$threads" --runs "$runs" --pp 512 --tg 0 --json)"
  [ -n "$baseline" ] && base512="$("$baseline" bench --model "$m" --threads "$threads" --runs "$runs" --pp 512 --tg 0 --json)"
  theirs="$("$py" bench/llama_cpp_bench.py --model "$m" --threads "$threads" --runs "$runs")"
  theirs512="$("$py" bench/llama_cpp_bench.py --model "$m" --threads "$threads" --runs "$runs" --pp 512 --tg 0)"
  python3 - "$ours" "$theirs" "$ours512" "$theirs512" "$base" "$base512" <<'PY'
import json, os, sys
o, t, o5, t5, base, base5 = (json.loads(a) for a in sys.argv[1:7])
peak = max(o['peak_rss_bytes'], o5['peak_rss_bytes'])
print(f"{os.path.basename(o['model'])}  (median of {o['runs']} runs; peak RSS {peak/2**20:.0f} MiB "
      f"(pp128/tg128 run {o['peak_rss_bytes']/2**20:.0f}, pp512 run {o5['peak_rss_bytes']/2**20:.0f}), "
      f"RSS after load {o['rss_after_load_bytes']/2**20:.0f} MiB, file {o['file_bytes']/2**20:.0f} MiB)")
print(f"  {'threads':>7}  {'refrain pp128':>13}  {'llama.cpp':>9}  {'ratio':>5}  {'refrain pp512':>13}  {'llama.cpp':>9}  {'ratio':>5}"
      f"  {'refrain tg128':>13}  {'llama.cpp':>9}  {'ratio':>5}")
for a, b, a5, b5 in zip(o["results"], t["results"], o5["results"], t5["results"]):
    print(f"  {a['threads']:>7}  {a['pp_tps']:>13.1f}  {b['pp_tps']:>9.1f}  {a['pp_tps']/b['pp_tps']:>5.2f}"
          f"  {a5['pp_tps']:>13.1f}  {b5['pp_tps']:>9.1f}  {a5['pp_tps']/b5['pp_tps']:>5.2f}"
          f"  {a['tg_tps']:>13.1f}  {b['tg_tps']:>9.1f}  {a['tg_tps']/b['tg_tps']:>5.2f}")
if base is not None:
    print(f"  {'threads':>7}  {'baseline pp128':>14}  {'this/base':>9}  {'baseline pp512':>14}  {'this/base':>9}"
          f"  {'baseline tg128':>14}  {'this/base':>9}")
    for a, a5, c, c5 in zip(o["results"], o5["results"], base["results"], base5["results"]):
        print(f"  {a['threads']:>7}  {c['pp_tps']:>14.1f}  {a['pp_tps']/c['pp_tps']:>9.3f}  {c5['pp_tps']:>14.1f}"
              f"  {a5['pp_tps']/c5['pp_tps']:>9.3f}  {c['tg_tps']:>14.1f}  {a['tg_tps']/c['tg_tps']:>9.3f}")
PY
done
