#!/usr/bin/env bash
# Installs what is missing, builds criu-fast, and runs the whole test suite:
# unit tests and end-to-end tests on real processes (release build); a short
# fuzzing run of the image readers (scripts/fuzz.sh); then the unit tests,
# the dump-side end-to-end tests and a representative set of restore tests
# (label "sanitize": one process, memory layouts, threads, a tree, shared
# memory, signals, a stream, restore faults) again built with
# AddressSanitizer and UBSan (the test programs too: restores then rebuild
# processes whose ASan shadow and allocator reserve terabytes of address
# space). Every restore test passes under ASan; the rest of them only cost
# time there (about 17 min on 2 cores): CF_ASAN_ALL=1 runs them all.
# Before the ASan pass, a ThreadSanitizer build of the concurrent code's unit
# tests (scripts/tsan.sh).
# Usage (as root): bash scripts/test.sh        CF_SKIP_SANITIZE=1 skips the sanitizer pass,
# CF_SKIP_FUZZ=1 the fuzzing, CF_SKIP_TSAN=1 the ThreadSanitizer pass.
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

# ThreadSanitizer: the page pipeline, drains, writers and stream stages'
# unit tests (scripts/tsan.sh builds only those, about 4 minutes).
if [ "${CF_SKIP_TSAN:-0}" != 1 ]; then
  echo "== ThreadSanitizer build: page pipeline, drain and stream unit tests"
  bash scripts/tsan.sh build-tsan
fi

if [ "${CF_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== ASan/UBSan build: unit tests, dump-side and selected restore end-to-end tests"
  CF_CMAKE_ARGS="-DCF_SANITIZE=ON -DCF_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo" bash scripts/build.sh build-asan
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  if [ "${CF_ASAN_ALL:-0}" = 1 ]; then
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
  else
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE restore
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -L sanitize
  fi
fi
