#!/bin/sh
# A subset of the tests under AddressSanitizer, then ThreadSanitizer, each in its own build folder
# (.build-sanitize-address, .build-sanitize-thread: a first build takes many minutes on two cores). The subsets
# cover the code that takes outside input or runs threads; set REFRAIN_ASAN_FILTER / REFRAIN_TSAN_FILTER to run
# others, REFRAIN_SANITIZERS="address" to run one.
# The tests that run `refrain` run the sanitized binary of the same build folder (TestEnvironment.binary), and the
# sanitizers' reports, from the test process and from every child `refrain`, go to files under
# .build-sanitize-*/reports: a child's report counts even when its test expected it to fail.
#   Tests/sanitize.sh
set -eu
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
ASAN_FILTER="${REFRAIN_ASAN_FILTER:-GGUFTests|FuzzTests|FuzzHostTests|LimitsTests|ChatTemplateTests|TokenizerUnitTests|SandboxTests|BadInputTests|LuaHostTests|REPLTests|StoreTests|CommandLineTests|ServeTests.testRemoteFaults|ServeTests.testServeCommandLine}"
TSAN_FILTER="${REFRAIN_TSAN_FILTER:-ThreadPoolTests|BatchTests.testSampleCallbacks|LuaHostTests|SandboxTests.testTimeLimit$|REPLTests.testCtrlCInterruptsALuaLoop|ServeTests.testRemoteFaults|ServeTests.testServeCommandLine}"
status=0
for s in ${REFRAIN_SANITIZERS:-address thread}; do
    if [ "$s" = address ]; then filter="$ASAN_FILTER"; else filter="$TSAN_FILTER"; fi
    echo "== -sanitize=$s: $filter"
    dir="$(pwd)/.build-sanitize-$s"
    mkdir -p "$dir"
    rm -rf "$dir/reports"; mkdir "$dir/reports"
    start=$(date +%s)
    # Leaks are reported by LeakSanitizer but do not fail the run: the Lua state and the models live until exit.
    if ASAN_OPTIONS="detect_leaks=0:log_path=$dir/reports/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
        TSAN_OPTIONS="halt_on_error=1:log_path=$dir/reports/tsan${TSAN_OPTIONS:+:$TSAN_OPTIONS}" \
        nice swift test -c release --disable-swift-testing --sanitize="$s" --build-path "$dir" \
        --filter "$filter" > "$dir/sanitize.log" 2>&1; then
        result="passed"
    else
        status=1
        result="FAILED"
    fi
    reports=$(ls "$dir/reports" | wc -l)
    [ "$reports" -eq 0 ] || status=1
    echo "   tests $result, $reports sanitizer report(s), $(( $(date +%s) - start )) s: see $dir/sanitize.log and $dir/reports"
    grep -E "Executed [0-9]+ tests" "$dir/sanitize.log" | tail -1 || true
    cat "$dir"/reports/* 2>/dev/null | grep -E "^(SUMMARY|WARNING: ThreadSanitizer|ERROR: AddressSanitizer)" | sort | uniq -c || true
done
exit $status
