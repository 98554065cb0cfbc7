#!/usr/bin/env bash
# Installs what is missing, builds criu-fast, and runs the whole test suite:
# unit tests and end-to-end tests on real processes (release build), then the
# same unit and end-to-end tests, dumps and restores, again built with
# AddressSanitizer and UBSan (the test programs too: restores then rebuild
# processes whose ASan shadow and allocator reserve terabytes of address space).
# Usage (as root): bash scripts/test.sh        CF_SKIP_SANITIZE=1 skips the second pass.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build.sh build

jobs=$(nproc)
echo "== release build: unit and end-to-end tests"
ctest --test-dir build --output-on-failure -j "$jobs"

if [ "${CF_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== ASan/UBSan build: unit and end-to-end tests"
  CF_CMAKE_ARGS="-DCF_SANITIZE=ON -DCF_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo" bash scripts/build.sh build-asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi

