#!/bin/bash
# The performance targets of the parallel dump engine, measured side by side
# in one run on this machine, each printed with its target:
#   1. draining alone (cf_micro_bench, 256 MiB): process_vm_readv with 1 and
#      2 threads, and the vmsplice parasite with 1 and 2 readers;
#   2. end-to-end dump of a 1 GiB mixed workload (1/3 random, 1/3 zero, 1/3
#      text pages) to tmpfs with lz4: GB/s of process memory, image size;
#   3. a tree of 8 x 128 MiB: --jobs 2 vs --jobs 1, alternated;
#   4. criu-fast's peak RSS while dumping 4 GiB;
#   5. drain backend x codec table (1 GiB mix): frozen time, total time, image.
# Usage: bench/targets.sh [RUNS=3]   (as root, after scripts/build.sh)
# Environment: CRIU_FAST, PROGS, BENCH (cf_micro_bench), OUT_DIR (/dev/shm/cf-targets).
set -u -o pipefail
RUNS=${1:-3}
CRIU_FAST=${CRIU_FAST:-./build/criu-fast}
PROGS=${PROGS:-./build/progs}
BENCH=${BENCH:-./build/bench/cf_micro_bench}
OUT_DIR=${OUT_DIR:-/dev/shm/cf-targets}
die() { echo "targets: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
for f in "$CRIU_FAST" "$PROGS/memload" "$PROGS/fanout"; do [ -x "$f" ] || die "missing $f (build first)"; done
WORK=$(mktemp -d /tmp/cf-targets.XXXXXX) || die mktemp
mkdir -p "$OUT_DIR"
ROOT=
cleanup() {
  [ -n "$ROOT" ] && kill -KILL "$ROOT" 2>/dev/null
  pkill -KILL -f "$PROGS/(memload|fanout) $WORK" 2>/dev/null
  rm -rf "$WORK" "$OUT_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

stat_of() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$2" | head -n 1; }
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print("%.1f" % statistics.median(v) if v else "nan")' "$@"; }

# start PROG ARGS...: starts a workload in $WORK/w, sets ROOT.
start() {
  local prog=$1 i
  shift
  rm -rf "$WORK/w"
  mkdir -p "$WORK/w"
  setsid -f "$PROGS/$prog" "$WORK/w" "$@" </dev/null >/dev/null 2>&1 || die "cannot start $prog"
  for ((i = 0; i < 2400; i++)); do [ -s "$WORK/w/ready" ] && break; sleep 0.05; done
  [ -s "$WORK/w/ready" ] || die "$prog not ready"
  ROOT=$(tr -dc '0-9' <"$WORK/w/ready")
  sleep 0.2
}
stop() {
  [ -n "$ROOT" ] && kill -KILL "$ROOT" 2>/dev/null
  pkill -KILL -f "$PROGS/(memload|fanout) $WORK" 2>/dev/null
  ROOT=
  sleep 0.3
}
# dump ARGS...: dumps $ROOT (killing it) into $OUT_DIR/img with --display-stats into $WORK/d.out.
dump() {
  rm -rf "$OUT_DIR/img"
  "$CRIU_FAST" dump -t "$ROOT" -D "$OUT_DIR/img" --display-stats "$@" >"$WORK/d.out" 2>"$WORK/d.err" ||
    { cat "$WORK/d.err" >&2; die "dump $* failed"; }
  IMG_BYTES=$(du -sb "$OUT_DIR/img" | cut -f1)
  rm -rf "$OUT_DIR/img"
  stop
}

echo "== criu-fast performance targets ($(nproc) CPUs, $(uname -r), commit $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null))"

# --- 1. draining alone ------------------------------------------------------------------------
if [ -x "$BENCH" ]; then
  "$BENCH" --benchmark_filter='BM_Drain256MiB/iov:1MiB|BM_DrainVmsplice' --benchmark_repetitions="$((RUNS < 2 ? 2 : RUNS))" \
    --benchmark_report_aggregates_only=true --benchmark_format=csv 2>/dev/null >"$WORK/drain.csv"
  python3 - "$WORK/drain.csv" <<'EOF2'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if r and r[0].endswith("_median")]
print("1. draining 256 MiB from a frozen process (medians)      target: >= 5 GB/s one job, >= 8 GB/s two")
for r in rows:
    name = r[0].replace("/min_warmup_time:0.100", "").replace("_median", "").replace("/real_time", "")
    gbs = float(r[5]) / 1e9 if len(r) > 5 and r[5] else 0
    print("   %-48s %6.2f GB/s" % (name, gbs))
EOF2
else
  echo "1. (no $BENCH: build with CF_BUILD_BENCH=ON)"
fi

# --- 2. 1 GiB mixed, lz4 -------------------------------------------------------------------------
rates=() ratios=()
for ((r = 0; r < RUNS; r++)); do
  start memload 1024 mix
  dump --compress lz4
  total=$(stat_of "total time" "$WORK/d.out")
  rates+=("$(python3 -c "print(1073741824 / ($total / 1000) / 1e9)")")
  ratios+=("$(python3 -c "print(100.0 * $IMG_BYTES / 1073741824)")")
done
echo "2. 1 GiB mixed workload, lz4, to tmpfs: $(median "${rates[@]}") GB/s, image $(median "${ratios[@]}")% of memory" \
  "  target: >= 2 GB/s, <= 45%"

# --- 3. tree of 8 x 128 MiB, --jobs 1 vs 2 -------------------------------------------------------------
j1=() j2=()
for ((r = 0; r < RUNS; r++)); do
  for jobs in 1 2; do
    [ $((r % 2)) = 1 ] && jobs=$((3 - jobs))
    start fanout procs 8 128
    dump --jobs "$jobs"
    t=$(stat_of "total time" "$WORK/d.out")
    if [ "$jobs" = 1 ]; then j1+=("$t"); else j2+=("$t"); fi
  done
done
m1=$(median "${j1[@]}") m2=$(median "${j2[@]}")
echo "3. tree of 8 x 128 MiB: --jobs 1 $m1 ms, --jobs 2 $m2 ms: x$(python3 -c "print('%.2f' % ($m1 / $m2))") faster" \
  "  target: >= 1.6x"

# --- 4. peak RSS, 4 GiB --------------------------------------------------------------------------
start memload 4096 mix
dump --compress lz4
echo "4. criu-fast peak RSS while dumping 4 GiB (lz4): $(stat_of "peak RSS" "$WORK/d.out") MiB   target: <= 256 MiB"

# --- 5. drain x codec ----------------------------------------------------------------------------
echo "5. 1 GiB mixed workload (medians of $RUNS, alternated): drain backend x codec"
printf "   %-9s %-7s %11s %11s %10s\n" drain codec "frozen ms" "total ms" "image MB"
declare -A F T S
combos=()
for d in read vmsplice; do for c in none lz4 zstd; do combos+=("$d/$c"); done; done
for ((r = 0; r < RUNS; r++)); do
  order=("${combos[@]}")
  [ $((r % 2)) = 1 ] && order=($(printf '%s\n' "${combos[@]}" | tac))
  for combo in "${order[@]}"; do
    start memload 1024 mix
    dump --drain "${combo%/*}" --compress "${combo#*/}"
    F[$combo]+=" $(stat_of "frozen time" "$WORK/d.out")"
    T[$combo]+=" $(stat_of "total time" "$WORK/d.out")"
    S[$combo]+=" $(python3 -c "print($IMG_BYTES / 1e6)")"
  done
done
for combo in "${combos[@]}"; do
  # shellcheck disable=SC2086
  printf "   %-9s %-7s %11s %11s %10s\n" "${combo%/*}" "${combo#*/}" "$(median ${F[$combo]})" "$(median ${T[$combo]})" \
    "$(median ${S[$combo]})"
done
