#!/usr/bin/env bash
# Short fuzzing run (CI): builds the libFuzzer harnesses of tests/fuzz into
# build-fuzz (clang, ASan + UBSan), makes seed corpora from real images
# (tests/fuzz/make_seeds.sh: needs root and the release build in build/; as
# another user the harnesses start from an empty corpus), then runs every
# harness for SECONDS_PER_HARNESS (default 10). Fails on any crash,
# sanitizer report, leak, timeout (25 s on one input: a loaded machine
# stalls a harness for seconds) or out-of-memory; the input that caused it
# is left in build-fuzz/artifacts/. See tests/fuzz/README.md.
#
#   scripts/fuzz.sh [SECONDS_PER_HARNESS]
# CF_BUILD_ONLY=1 builds the harnesses and stops there (scripts/test.sh
# builds ahead).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
jobs=${CF_FUZZ_JOBS:-$(nproc)}

bash scripts/setup.sh

# The release build makes the seeds (criu-fast dumps a test program).
if [ "$(id -u)" = 0 ] && [ "${CF_BUILD_ONLY:-0}" != 1 ]; then
  [ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C build -j "$jobs" criu-fast counter >/dev/null
fi

[ -f build-fuzz/build.ninja ] ||
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCF_FUZZ=ON -DCF_SANITIZE=ON -DCF_BUILD_BENCH=OFF >/dev/null
# (Quiet unless it fails: then its last lines say why.)
mkdir -p build-fuzz/logs
ninja -C build-fuzz -j "$jobs" cf_fuzz >build-fuzz/logs/build.log 2>&1 || {
  tail -n 30 build-fuzz/logs/build.log
  echo "fuzz: FAILED: the harnesses do not build"
  exit 1
}
[ "${CF_BUILD_ONLY:-0}" = 1 ] && exit 0

bash tests/fuzz/make_seeds.sh build build-fuzz/seeds

# UBSan only prints by default: make every report fatal.
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
mkdir -p build-fuzz/artifacts build-fuzz/logs
failed=()
for h in fuzz_image_file fuzz_messages fuzz_codec fuzz_stream fuzz_restore_images fuzz_show; do
  corpus=build-fuzz/corpus/$h
  mkdir -p "$corpus" "build-fuzz/seeds/$h"
  log=build-fuzz/logs/$h.log
  if build-fuzz/fuzz/$h -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/$h-" "$corpus" "build-fuzz/seeds/$h" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz: $h: ok, $execs runs in ${secs}s, $cov, corpus $(find "$corpus" -type f | wc -l)"
  else
    echo "fuzz: $h: FAILED (log $log, input in build-fuzz/artifacts/):"
    grep -E 'ERROR|runtime error|invariant|SUMMARY|Test unit written' "$log" | head -8 || tail -20 "$log"
    failed+=("$h")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: PASS"
