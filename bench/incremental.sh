#!/bin/bash
# Incremental dumps against a full dump, side by side in one run: a 1 GiB
# process (tests/progs/incremental.c: every page random) has 1% of its pages
# rewritten between a pre-dump and the final dump. Each round (RUNS of them,
# one workload each) measures, on the same process:
#   full   dump -R of the whole process (frozen time, image size)
#   pre    pre-dump (frozen: listing, scanning, arming write tracking)
#   step   1% of the pages rewritten (plus a few new mappings)
#   inc    dump -R --prev-images-dir of the pre-dump (frozen time, image size
#          of the increment alone)
# and prints the medians and the ratios inc/full (targets: frozen <= 5%,
# image <= 3%). Images go to tmpfs (OUT_DIR).
# With CRIU_FAST_OLD=PATH (another build), rounds alternate between the two
# binaries (RUNS rounds each) and each gets its medians and ratios: the
# machine is noisy, only figures of one run compare.
# Usage: bench/incremental.sh [RUNS=3] [MB=1024]   (as root, after scripts/build.sh)
set -u -o pipefail
RUNS=${1:-3}
MB=${2:-1024}
CRIU_FAST=${CRIU_FAST:-./build/criu-fast}
PROGS=${PROGS:-./build/progs}
OUT_DIR=${OUT_DIR:-/dev/shm/cf-incremental}
die() { echo "incremental: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
CRIU_FAST_OLD=${CRIU_FAST_OLD:-}
for f in "$CRIU_FAST" ${CRIU_FAST_OLD:+"$CRIU_FAST_OLD"} "$PROGS/incremental"; do [ -x "$f" ] || die "missing $f (build first)"; done
WORK=$(mktemp -d /tmp/cf-incr.XXXXXX) || die mktemp
PID=
cleanup() {
  [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
  rm -rf "$WORK" "$OUT_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

stat_of() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$2" | head -n 1; }
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print("%.2f" % statistics.median(v) if v else "nan")' "$@"; }
size_mb() { du -sm --exclude=parent "$1" | cut -f1; }

declare -A full_frozen full_size pre_frozen inc_frozen inc_size
round() {  # round BIN KEY
  local CRIU_FAST=$1 k=$2
  rm -rf "$WORK/w" "$OUT_DIR" && mkdir -p "$WORK/w" "$OUT_DIR"
  setsid "$PROGS/incremental" "$WORK/w" "$MB" </dev/null >/dev/null 2>&1 &
  for ((i = 0; i < 600; i++)); do [ -s "$WORK/w/ready" ] && break; sleep 0.1; done
  PID=$(cat "$WORK/w/ready") || die "workload did not start"
  "$CRIU_FAST" dump -R -t "$PID" -D "$OUT_DIR/full" --display-stats >"$WORK/full.out" 2>&1 || die "full dump failed"
  full_frozen[$k]+=" $(stat_of "frozen time" "$WORK/full.out")"
  full_size[$k]+=" $(size_mb "$OUT_DIR/full")"
  rm -rf "$OUT_DIR/full"
  "$CRIU_FAST" pre-dump -t "$PID" -D "$OUT_DIR/pre" --display-stats >"$WORK/pre.out" 2>&1 || die "pre-dump failed"
  pre_frozen[$k]+=" $(stat_of "frozen time" "$WORK/pre.out")"
  kill -USR2 "$PID"
  for ((i = 0; i < 200; i++)); do [ "$(cat "$WORK/w/step")" = 1 ] && break; sleep 0.05; done
  "$CRIU_FAST" dump -R -t "$PID" -D "$OUT_DIR/inc" --prev-images-dir ../pre --display-stats >"$WORK/inc.out" 2>&1 ||
    die "incremental dump failed: $(cat "$WORK/inc.out")"
  inc_frozen[$k]+=" $(stat_of "frozen time" "$WORK/inc.out")"
  inc_size[$k]+=" $(size_mb "$OUT_DIR/inc")"
  kill -KILL "$PID"
  PID=
}
for ((r = 0; r < RUNS; r++)); do
  round "$CRIU_FAST" new
  [ -n "$CRIU_FAST_OLD" ] && round "$CRIU_FAST_OLD" old
done
report() {  # report KEY LABEL
  local k=$1
  # shellcheck disable=SC2086
  ff=$(median ${full_frozen[$k]}); fs=$(median ${full_size[$k]})
  # shellcheck disable=SC2086
  pf=$(median ${pre_frozen[$k]}); inf=$(median ${inc_frozen[$k]}); ins=$(median ${inc_size[$k]})
echo "incremental dump of $MB MiB, 1% of pages rewritten, medians of $RUNS runs ($2):"
echo "  inc frozen times (ms):${inc_frozen[$k]}; full:${full_frozen[$k]}"
printf "  full dump -R:        frozen %8s ms   image %6s MiB\n" "$ff" "$fs"
printf "  pre-dump:            frozen %8s ms\n" "$pf"
printf "  incremental dump -R: frozen %8s ms   image %6s MiB (increment only)\n" "$inf" "$ins"
python3 -c 'import sys; ff,fs,inf,ins=map(float,sys.argv[1:]); print("  ratio inc/full: frozen %.1f%% (target <= 5%%), image %.1f%% (target <= 3%%)" % (100*inf/ff, 100*ins/fs))' "$ff" "$fs" "$inf" "$ins"
}
report new "$CRIU_FAST"
[ -n "$CRIU_FAST_OLD" ] && report old "$CRIU_FAST_OLD"
exit 0
