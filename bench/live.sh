#!/bin/bash
# Live checkpoints against a frozen dump, side by side in one run: a process
# of MB MiB (tests/progs/live_writer.c, one writer thread sweeping all of its
# memory again and again, 2 ms rest per sweep: every page is rewritten all
# the time, harsher than the issue's 1% per 10 ms) is dumped, in each round,
# with `dump -R` and with `dump -R --live` (alternating which goes first).
# Prints the medians of frozen time and total time, and the pages the live
# dump copied on fault. Images go to tmpfs (OUT_DIR). After the last round
# the program checks its memory was never torn (its self-check); then it is
# dumped live once more, killed, restored from that image, and checks that
# its memory is that of one instant (the freeze).
# Usage: bench/live.sh [RUNS=5] [MB=1024]   (as root, after scripts/build.sh)
set -u -o pipefail
RUNS=${1:-5}
MB=${2:-1024}
CRIU_FAST=${CRIU_FAST:-./build/criu-fast}
PROGS=${PROGS:-./build/progs}
OUT_DIR=${OUT_DIR:-/dev/shm/cf-live}
die() { echo "live: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
for f in "$CRIU_FAST" "$PROGS/live_writer"; do [ -x "$f" ] || die "missing $f (build first)"; done
WORK=$(mktemp -d /tmp/cf-live.XXXXXX) || die mktemp
PID=
cleanup() {
  [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null
  rm -rf "$WORK" "$OUT_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

stat_of() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$2" | head -n 1; }
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print("%.2f" % statistics.median(v) if v else "nan")' "$@"; }

mkdir -p "$WORK/w"
setsid "$PROGS/live_writer" "$WORK/w" "$MB" 1 </dev/null >/dev/null 2>&1 &
disown
for ((i = 0; i < 600; i++)); do [ -s "$WORK/w/ready" ] && break; sleep 0.1; done
PID=$(cat "$WORK/w/ready") || die "workload did not start"
echo "kernel $(uname -r), $(nproc) CPUs, commit $(git rev-parse --short HEAD 2>/dev/null), $MB MiB, $RUNS runs"

declare -a ff ft fc lf lt lc lp lcol
run_one() {
  local mode=$1 out=$WORK/$1.out
  rm -rf "$OUT_DIR" && mkdir -p "$OUT_DIR"
  if [ "$mode" = live ]; then
    "$CRIU_FAST" dump -R --live -t "$PID" -D "$OUT_DIR/img" --display-stats >"$out" 2>&1 || die "dump --live failed: $(cat "$out")"
    lf+=("$(stat_of "frozen time" "$out")"); lt+=("$(stat_of "total time" "$out")")
    lc+=("$(sed -n 's/^  live pages: .* \([0-9]*\) copied on fault.*/\1/p' "$out")")
    lp+=("$(sed -n 's/^  live early arm: *paused \([0-9.]*\) ms.*/\1/p' "$out")")
    lcol+=("$(stat_of "collect time" "$out")")
  else
    "$CRIU_FAST" dump -R -t "$PID" -D "$OUT_DIR/img" --display-stats >"$out" 2>&1 || die "dump failed: $(cat "$out")"
    ff+=("$(stat_of "frozen time" "$out")"); ft+=("$(stat_of "total time" "$out")")
    fc+=("$(stat_of "collect time" "$out")")
  fi
}
for ((r = 0; r < RUNS; r++)); do
  if ((r % 2)); then run_one live; run_one frozen; else run_one frozen; run_one live; fi
done
rm -f "$WORK/w/result"
kill -USR1 "$PID"
for ((i = 0; i < 300; i++)); do [ -s "$WORK/w/result" ] && break; sleep 0.1; done
check=$(cat "$WORK/w/result" 2>/dev/null)
# One more live dump, then the writer is killed and restored from it: its
# self-check finds any page not as it was at the freeze (live_writer.c).
rm -rf "$OUT_DIR" && mkdir -p "$OUT_DIR"
"$CRIU_FAST" dump -R --live -t "$PID" -D "$OUT_DIR/img" >/dev/null 2>&1 || die "last dump --live failed"
kill -KILL "$PID"
for ((i = 0; i < 100; i++)); do [ -e "/proc/$PID" ] || break; sleep 0.1; done
restored=FAIL
for ((i = 0; i < 30; i++)); do
  if "$CRIU_FAST" restore -D "$OUT_DIR/img" -d >/dev/null 2>&1; then restored=ok; break; fi
  sleep 0.2  # the pid is freed once its zombie is reaped
done
rcheck=none
if [ "$restored" = ok ]; then
  rm -f "$WORK/w/result"
  kill -USR1 "$PID"
  for ((i = 0; i < 300; i++)); do [ -s "$WORK/w/result" ] && break; sleep 0.1; done
  rcheck=$(cat "$WORK/w/result" 2>/dev/null)
fi
echo "dump -R of $MB MiB under a writer rewriting every page, medians of $RUNS runs:"
printf "  dump -R:         frozen %9s ms (collect %s)   total %9s ms\n" "$(median "${ff[@]}")" "$(median "${fc[@]}")" \
  "$(median "${ft[@]}")"
printf "  dump -R --live:  frozen %9s ms (collect %s)   total %9s ms   pages copied on fault %s\n" \
  "$(median "${lf[@]}")" "$(median "${lcol[@]}")" "$(median "${lt[@]}")" "$(median "${lc[@]}")"
printf "                   and a pause of %s ms before the freeze (early arm)\n" "$(median "${lp[@]}")"
python3 -c 'import sys; a,b=map(float,sys.argv[1:]); print("  frozen time --live / frozen: %.1f%%" % (100*b/a))' "$(median "${ff[@]}")" "$(median "${lf[@]}")"
echo "  workload self-check after the dumps: ${check:-none}"
echo "  restored from a live image (restore: $restored), its self-check: ${rcheck:-none}"
