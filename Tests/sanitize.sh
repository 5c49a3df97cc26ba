#!/bin/sh
# A subset of the tests under AddressSanitizer, then ThreadSanitizer, each in its own build folder
# (.build-sanitize-address, .build-sanitize-thread: a first build takes many minutes on two cores). The subsets
# cover the code that takes outside input or runs threads; set REFRAIN_ASAN_FILTER / REFRAIN_TSAN_FILTER to run
# others, REFRAIN_SANITIZERS="address" to run one.
#   Tests/sanitize.sh
set -eu
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
ASAN_FILTER="${REFRAIN_ASAN_FILTER:-GGUFTests|FuzzTests|LimitsTests|ChatTemplateTests|TokenizerUnitTests|SandboxTests|BadInputTests.testNUL|BadInputTests.testModelFile|LuaHostTests}"
TSAN_FILTER="${REFRAIN_TSAN_FILTER:-ThreadPoolTests|BatchTests.testSampleCallbacks|LuaHostTests.testStreamSinkAndInterrupt|SandboxTests.testTimeLimit}"
status=0
for s in ${REFRAIN_SANITIZERS:-address thread}; do
    if [ "$s" = address ]; then filter="$ASAN_FILTER"; else filter="$TSAN_FILTER"; fi
    echo "== -sanitize=$s: $filter"
    mkdir -p ".build-sanitize-$s"
    # Leaks are reported by LeakSanitizer but do not fail the run: the Lua state and the models live until exit.
    if ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" TSAN_OPTIONS="halt_on_error=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}" \
        nice swift test -c release --disable-swift-testing --sanitize="$s" --build-path ".build-sanitize-$s" \
        --filter "$filter" > ".build-sanitize-$s/sanitize.log" 2>&1; then
        echo "   clean"
    else
        status=1
        echo "   FAILED: see .build-sanitize-$s/sanitize.log"
    fi
    grep -E "^(SUMMARY|WARNING: ThreadSanitizer|ERROR: AddressSanitizer)|Executed [0-9]+ tests" ".build-sanitize-$s/sanitize.log" | sort | uniq -c || true
done
exit $status
