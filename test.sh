#!/usr/bin/env bash
# The whole test suite, as CI runs it: the XCTest suites (engine against llama.cpp's reference figures, the host,
# the Lua tests run through the host), then the portable kernel path (REFRAIN_PORTABLE=1: Swift SIMD without the
# AVX2 intrinsics, built apart under .build-portable) against the scalar references and the SmolLM2 figures.
# Extra arguments go to the first `swift test` (e.g. --filter LuaTests). REFRAIN_SKIP_PORTABLE=1 skips the second.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="/opt/swift/usr/bin:$PATH"
swift test -c release --disable-swift-testing "$@"
if [ "${REFRAIN_SKIP_PORTABLE:-0}" != 1 ] && [ $# -eq 0 ]; then
  REFRAIN_PORTABLE=1 swift test -c release --disable-swift-testing --scratch-path .build-portable \
    --filter 'KernelTests|AttentionTests.testKernelAgainstReference|ReferenceTests.testSmolLM2Logits'
fi
