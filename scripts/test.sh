#!/usr/bin/env bash
# Installs what is missing, builds criu-fast, and runs the whole test suite:
# unit tests and end-to-end tests on real processes (release build); a short
# fuzzing run of the image readers (scripts/fuzz.sh); a ThreadSanitizer
# build of the concurrent code's unit tests (scripts/tsan.sh); then the
# whole suite again built with AddressSanitizer and UBSan (the test programs
# too: restores then rebuild processes whose ASan shadow and allocator
# reserve terabytes of address space), but for the four end-to-end tests
# labelled "no_asan" whose test programs behave differently under ASan
# (tests/CMakeLists.txt; CF_ASAN_ALL=1 runs them too).
# The sanitizer, ThreadSanitizer and fuzzing builds start beside the
# release tests, at the lowest CPU priority (nice 19: little CPU time while
# a test wants it), and use the cores the end-to-end tests leave idle (they
# run one at a time); what is left of them is waited for afterwards.
# Usage (as root): bash scripts/test.sh        CF_SKIP_SANITIZE=1 skips the sanitizer pass,
# CF_SKIP_FUZZ=1 the fuzzing, CF_SKIP_TSAN=1 the ThreadSanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build.sh build

asan_args="-DCF_SANITIZE=ON -DCF_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo"
# The other builds, one after the other, beside the release tests.
side_builds() {
  if [ "${CF_SKIP_SANITIZE:-0}" != 1 ]; then
    CF_CMAKE_ARGS="$asan_args" bash scripts/build.sh build-asan
  fi
  if [ "${CF_SKIP_TSAN:-0}" != 1 ]; then
    CF_BUILD_ONLY=1 bash scripts/tsan.sh build-tsan
  fi
  if [ "${CF_SKIP_FUZZ:-0}" != 1 ]; then
    CF_BUILD_ONLY=1 bash scripts/fuzz.sh
  fi
}
mkdir -p build/logs
side_log=build/logs/side-builds.log
# In a process group of its own (job control on for this one start), so
# that it can be stopped whole: a failed test ends this script, and the
# builds beside it go too.
set -m
(
  renice -n 19 -p "$BASHPID" >/dev/null
  side_builds
) >"$side_log" 2>&1 &
side_pid=$!
set +m
trap 'kill -TERM -- "-$side_pid" 2>/dev/null || true' EXIT

jobs=$(nproc)
echo "== release build: unit and end-to-end tests"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== sanitizer, ThreadSanitizer and fuzzing builds (made beside the tests above)"
if ! wait "$side_pid"; then
  tail -n 40 "$side_log"
  echo "side builds: FAILED (whole log: $side_log)"
  exit 1
fi
trap - EXIT
grep -E "warning:" "$side_log" || true

# Fuzzing: a short run of every image-reader harness (tests/fuzz/README.md).
if [ "${CF_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzzing: 10 s per harness"
  bash scripts/fuzz.sh 10
fi

# ThreadSanitizer: the page pipeline, drains, writers and stream stages'
# unit tests (scripts/tsan.sh builds only those, above).
if [ "${CF_SKIP_TSAN:-0}" != 1 ]; then
  echo "== ThreadSanitizer build: page pipeline, drain and stream unit tests"
  bash scripts/tsan.sh build-tsan
fi

if [ "${CF_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== ASan/UBSan build: unit and end-to-end tests (but those labelled no_asan)"
  CF_CMAKE_ARGS="$asan_args" bash scripts/build.sh build-asan
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  if [ "${CF_ASAN_ALL:-0}" = 1 ]; then
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
  else
    ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE no_asan
  fi
fi
