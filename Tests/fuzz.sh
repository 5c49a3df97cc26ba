#!/bin/sh
# The fuzzing targets in their long mode: REFRAIN_FUZZ_RUNS inputs per target (default a million), at low
# priority, one seed (REFRAIN_FUZZ_SEED). Prints each target's line (inputs, executions, findings, seconds).
#   Tests/fuzz.sh                       a million inputs per target
#   REFRAIN_FUZZ_RUNS=10000 Tests/fuzz.sh
# The targets: FuzzTests (GGUF, tokenizer, chat templates), FuzzHostTests (lm.json, lm.data, the model's methods;
# REFRAIN_FUZZ_TARGETS=json,json-values,jsonl,api picks some) and ServeFuzzTests (refrain serve's request parsing
# and checks, JSON.swift). ServeFuzzTests prints a progress line every 100,000 inputs, and so does
# Tests/lua/fuzz_host.lua on its standard error when run alone (refrain run --sandbox=DIR FILE RUNS SEED DIR).
# A crash stops the test process: the GGUF input that caused it is left in /dev/shm/refrain-fuzz-PID.gguf, and
# the seed and the count reproduce any other.
set -eu
cd "$(dirname "$0")/.."
export REFRAIN_FUZZ_RUNS="${REFRAIN_FUZZ_RUNS:-1000000}"
export REFRAIN_FUZZ_SEED="${REFRAIN_FUZZ_SEED:-20261129}"
export PATH="/opt/swift/usr/bin:$PATH"
nice -n 19 swift test -c release --disable-swift-testing --filter 'FuzzTests|FuzzHostTests|ServeFuzzTests' 2>&1 \
    | tee "${TMPDIR:-/tmp}/refrain-fuzz.log" | grep -E '^fuzz |^progress |findings|error:|passed|failed|crashed'
