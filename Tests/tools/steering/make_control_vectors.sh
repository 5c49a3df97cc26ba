#!/usr/bin/env bash
# Makes the control vectors of Tests/EngineTests/Fixtures/steering/ with llama.cpp's own llama-cvector-generator
# (built here from the llama.cpp source that ./setup.sh --llama-cpp unpacks): happy (positive.txt) minus sad
# (negative.txt), method mean (unit directions for layers 1 to n - 1), on the three models. The files are GGUF, named
# .cvec so that the repository's rule against model files (*.gguf) does not catch them; every reader takes them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
home="${REFRAIN_HOME:-$HOME/.cache/refrain}"
lcpp="$home/llama.cpp"
out="$here/../../EngineTests/Fixtures/steering"
[ -x "$lcpp/build/bin/llama-cvector-generator" ] || cmake --build "$lcpp/build" -j "$(nproc)" --target llama-cvector-generator
mkdir -p "$out"
for m in SmolLM2-135M-Instruct.Q4_1 gemma-3-270m-q4_k_m qwen2.5-coder-0.5b-instruct-q4_k_m; do
  "$lcpp/build/bin/llama-cvector-generator" -m "$home/models/$m.gguf" -t 2 --method mean \
    --positive-file "$here/positive.txt" --negative-file "$here/negative.txt" -o "$out/happy-sad-$m.cvec"
done
