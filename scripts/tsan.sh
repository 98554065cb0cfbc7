#!/usr/bin/env bash
# ThreadSanitizer pass over the concurrent code below the engine: the page
# pipeline (oneTBB stages, shared slot pool, first-error bookkeeping), the
# drains it reads through, the stream stages and the writers, and
# common's SerialWorker. Builds only cf_tsan_tests (sched/, streams/,
# memdrain/ and common/ unit tests, on real child processes) with
# -fsanitize=thread into BUILD_DIR (default build-tsan) and
# runs it; any report fails the run.
# Usage (as root, after scripts/setup.sh): bash scripts/tsan.sh [BUILD_DIR]
# CF_BUILD_ONLY=1 builds and stops there (scripts/test.sh builds ahead).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build-tsan}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCF_TSAN=ON -DCF_BUILD_BENCH=OFF >/dev/null
ninja -C "$build_dir" cf_tsan_tests
[ "${CF_BUILD_ONLY:-0}" = 1 ] && exit 0
# A race is reported and the run exits 66 at the end (halt_on_error would
# stop a oneTBB worker midway and hang the test).
export TSAN_OPTIONS="second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp"
"$build_dir/cf_tsan_tests" --gtest_brief=1
