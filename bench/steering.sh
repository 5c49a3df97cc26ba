#!/usr/bin/env bash
# What an intervention costs: decode (tg) and prompt processing (pp) with a control vector added after every layer
# it holds, beside the same measurement without it, in one run, the two interleaved round by round so that the
# machine's noise falls on both. Prints per model the medians over rounds, the spread (min–max), and the ratio
# steered / plain (the issue's goal: decode at most 5% slower, i.e. a tg ratio ≥ 0.95).
#   bench/steering.sh [--rounds N] [--runs N] [--threads T] [--pp N] [--tg N] [MODEL.gguf VECTOR.gguf SCALE ...]
# Default: the three models with the happy-vs-sad vectors llama-cvector-generator made for them
# (Tests/EngineTests/Fixtures/steering/).
set -euo pipefail
cd "$(dirname "$0")/.."
REFRAIN_HOME="${REFRAIN_HOME:-$HOME/.cache/refrain}"
rounds=5; runs=3; threads=2; pp=128; tg=128
cases=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --pp) pp="$2"; shift 2 ;;
    --tg) tg="$2"; shift 2 ;;
    -*) echo "steering.sh: unknown option $1" >&2; exit 2 ;;
    *) [ $# -ge 3 ] || { echo "steering.sh: give MODEL VECTOR SCALE" >&2; exit 2; }
       cases+=("$1|$2|$3"); shift 3 ;;
  esac
done
F=Tests/EngineTests/Fixtures/steering
if [ ${#cases[@]} -eq 0 ]; then
  for m in SmolLM2-135M-Instruct.Q4_1 gemma-3-270m-q4_k_m qwen2.5-coder-0.5b-instruct-q4_k_m; do
    cases+=("$REFRAIN_HOME/models/$m.gguf|$F/happy-sad-$m.cvec|1")
  done
fi
swift build -c release --product refrain >/dev/null
bin="$(swift build -c release --show-bin-path)/refrain"
out="$(mktemp)"
for c in "${cases[@]}"; do
  IFS='|' read -r model vector scale <<<"$c"
  for r in $(seq "$rounds"); do
    # The order alternates by round, so that neither kind always runs first.
    order="plain steered"; [ $((r % 2)) = 0 ] && order="steered plain"
    for kind in $order; do
      extra=()
      [ "$kind" = steered ] && extra=(--control-vector-scaled "$vector" "$scale")
      j="$("$bin" bench --model "$model" --threads "$threads" --runs "$runs" --pp "$pp" --tg "$tg" --json "${extra[@]}")"
      echo "{\"model\": \"$(basename "$model")\", \"kind\": \"$kind\", \"round\": $r, \"bench\": $j}" >>"$out"
    done
  done
done
python3 - "$out" "$pp" "$tg" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pp, tg = sys.argv[2], sys.argv[3]
print(f"median over rounds (min–max), tok/s, threads {rows[0]['bench']['results'][0]['threads']}")
print(f"| model | interventions | pp{pp} plain | pp{pp} steered | ratio | tg{tg} plain | tg{tg} steered | ratio (per-round median, min–max) |")
print("|---|---|---|---|---|---|---|---|")
for model in dict.fromkeys(r["model"] for r in rows):
    def vals(kind, key):
        return [r["bench"]["results"][0][key] for r in rows if r["model"] == model and r["kind"] == kind]
    n = max(r["bench"]["interventions"] for r in rows if r["model"] == model)
    cells = [model, str(n)]
    for key in ("pp_tps", "tg_tps"):
        a, b = vals("plain", key), vals("steered", key)
        ratios = [y / x for x, y in zip(a, b)]
        cells += [f"{statistics.median(a):.1f} ({min(a):.1f}–{max(a):.1f})", f"{statistics.median(b):.1f} ({min(b):.1f}–{max(b):.1f})",
                  f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f})"]
    print("| " + " | ".join(cells) + " |")
EOF
rm -f "$out"
