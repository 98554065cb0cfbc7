#!/usr/bin/env bash
# Installs what is missing, builds criu-fast, and runs the whole test suite:
# unit tests and end-to-end tests on real processes (release build), then the
# unit tests and the dump-side end-to-end tests again built with
# AddressSanitizer and UBSan. (Restores are not run under ASan: the restored
# process starts as a clone of criu-fast and unmaps all of it, ASan's runtime
# included, and ASan's huge address-space reservations collide with the
# premapping of the target's memory.)
# Between the two, a short fuzzing run of the image readers (scripts/fuzz.sh).
# Usage (as root): bash scripts/test.sh        CF_SKIP_SANITIZE=1 skips the second pass,
# CF_SKIP_FUZZ=1 the fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build.sh build

jobs=$(nproc)
echo "== release build: unit and end-to-end tests"
ctest --test-dir build --output-on-failure -j "$jobs"

# Fuzzing: a short run of every image-reader harness (tests/fuzz/README.md).
if [ "${CF_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzzing: 10 s per harness"
  bash scripts/fuzz.sh 10
fi

if [ "${CF_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== ASan/UBSan build: unit and end-to-end tests"
  CF_CMAKE_ARGS="-DCF_SANITIZE=ON -DCF_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo" bash scripts/build.sh build-asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE restore
fi
