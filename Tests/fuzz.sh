#!/bin/sh
# The fuzzing targets in their long mode: REFRAIN_FUZZ_RUNS inputs per target (default a million), at low
# priority, one seed (REFRAIN_FUZZ_SEED). Prints each target's line (inputs, executions, findings, seconds).
#   Tests/fuzz.sh                       a million inputs per target
#   REFRAIN_FUZZ_RUNS=10000 Tests/fuzz.sh
# A crash stops the test process: the GGUF input that caused it is left in /dev/shm/refrain-fuzz-PID.gguf, and
# the seed and the count reproduce any other.
set -eu
cd "$(dirname "$0")/.."
export REFRAIN_FUZZ_RUNS="${REFRAIN_FUZZ_RUNS:-1000000}"
export REFRAIN_FUZZ_SEED="${REFRAIN_FUZZ_SEED:-20261129}"
export PATH="/opt/swift/usr/bin:$PATH"
nice -n 19 swift test -c release --disable-swift-testing --filter 'FuzzTests|FuzzHostTests' 2>&1 \
    | tee "${TMPDIR:-/tmp}/refrain-fuzz.log" | grep -E '^fuzz |findings|error:|passed|failed|crashed'
