#!/bin/bash
# Dump and restore of a process tree and of a multi-threaded process
# (tests/progs/fanout.c): by default 8 processes x 128 MiB and 8 threads x
# 128 MiB, each dumped with --jobs 1 and --jobs 2 alternated (ABAB, BABA),
# images on tmpfs. Prints per run and medians: frozen time, dump time, GB/s,
# restore time (excluding the wait for the dumped PIDs to be reaped).
#
# Usage: bench/tree_e2e.sh [N=8] [SIZE_MB=128] [RUNS=3] [OUT_DIR=/dev/shm/cf-tree-bench]
# Environment: CRIU_FAST (default ./build/criu-fast), PROGS (./build/progs), DUMP_ARGS.
set -u -o pipefail

N=${1:-8}
SIZE_MB=${2:-128}
RUNS=${3:-3}
OUT_DIR=${4:-/dev/shm/cf-tree-bench}
CRIU_FAST=${CRIU_FAST:-./build/criu-fast}
PROGS=${PROGS:-./build/progs}
read -r -a EXTRA <<<"${DUMP_ARGS:-}"
die() { echo "tree_e2e: $*" >&2; exit 1; }
[ -x "$CRIU_FAST" ] || die "no criu-fast at $CRIU_FAST"
[ -x "$PROGS/fanout" ] || die "no fanout in $PROGS"
[ "$(id -u)" = 0 ] || die "run as root"
WORK=$(mktemp -d /tmp/cf-tree-bench.XXXXXX) || die mktemp
mkdir -p "$OUT_DIR"
RESULTS=$WORK/results.tsv
ROOT=
cleanup() {
  [ -n "$ROOT" ] && pkill -KILL -f "$PROGS/fanout $WORK" 2>/dev/null
  rm -rf "$WORK" "$OUT_DIR/img"
}
trap cleanup EXIT

echo "== criu-fast tree/threads benchmark: $N x $SIZE_MB MiB"
echo "kernel: $(uname -r); cpus: $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "commit: $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown); dump options: ${EXTRA[*]:-(none)}"

stat_of() { sed -n "s/^ *$1: *\([0-9.]*\).*/\1/p" "$2" | head -n 1; }

# one_run LABEL MODE JOBS
one_run() {
  local label=$1 mode=$2 jobs=$3 w=$WORK/w img=$OUT_DIR/img i
  rm -rf "$w" "$img"
  mkdir -p "$w"
  setsid -f "$PROGS/fanout" "$w" "$mode" "$N" "$SIZE_MB" </dev/null >/dev/null 2>&1 || die "cannot start fanout"
  for ((i = 0; i < 1200; i++)); do [ -s "$w/ready" ] && break; [ -s "$w/error" ] && die "$(cat "$w/error")"; sleep 0.05; done
  [ -s "$w/ready" ] || die "fanout not ready"
  ROOT=$(tr -dc '0-9' <"$w/ready")
  sleep 0.2
  "$CRIU_FAST" dump -t "$ROOT" -D "$img" --jobs "$jobs" --display-stats "${EXTRA[@]}" >"$WORK/d.out" 2>"$WORK/d.err" ||
    { cat "$WORK/d.err" >&2; die "dump failed ($label)"; }
  "$CRIU_FAST" restore -D "$img" -d --jobs "$jobs" --display-stats >"$WORK/r.out" 2>"$WORK/r.err" ||
    { cat "$WORK/r.err" >&2; die "restore failed ($label)"; }
  rm -f "$w/result"
  kill -USR1 "$ROOT"
  for ((i = 0; i < 200; i++)); do [ -s "$w/result" ] && break; sleep 0.05; done
  [ "$(head -n 1 "$w/result" 2>/dev/null)" = PASS ] || die "restored workload failed its check ($label): $(cat "$w/result" 2>/dev/null)"
  local rst wait
  rst=$(stat_of "restore time" "$WORK/r.out")
  wait=$(stat_of "pid wait time" "$WORK/r.out")
  printf "%s\t%s\t%s\t%s\n" "$label" "$(stat_of "frozen time" "$WORK/d.out")" "$(stat_of "total time" "$WORK/d.out")" \
    "$(awk -v a="$rst" -v b="$wait" 'BEGIN { printf "%.3f", a - b }')" >>"$RESULTS"
  pkill -KILL -f "$PROGS/fanout $w" 2>/dev/null
  ROOT=
  sleep 0.3
}

: >"$RESULTS"
one_run warmup procs 2
: >"$RESULTS"
for mode in procs threads; do
  for ((r = 1; r <= RUNS; r++)); do
    if ((r % 2)); then one_run "$mode-jobs1/$r" "$mode" 1; one_run "$mode-jobs2/$r" "$mode" 2
    else one_run "$mode-jobs2/$r" "$mode" 2; one_run "$mode-jobs1/$r" "$mode" 1; fi
  done
done

python3 - "$RESULTS" "$N" "$SIZE_MB" <<'EOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines() if l]
total = int(sys.argv[2]) * int(sys.argv[3]) * 1048576
gbs = lambda ms: total / (ms / 1000.0) / 1e9 if ms > 0 else 0.0
print("%-18s %10s %10s %7s %11s %8s" % ("run", "frozen ms", "dump ms", "GB/s", "restore ms", "rst GB/s"))
groups = {}
for label, frozen, dump, rst in rows:
    f, d, r = float(frozen), float(dump), float(rst)
    groups.setdefault(label.split("/")[0], []).append((f, d, r))
    print("%-18s %10.1f %10.1f %7.2f %11.1f %8.2f" % (label, f, d, gbs(d), r, gbs(r)))
print("\nmedians")
med = {}
for name, g in groups.items():
    m = [statistics.median(x[i] for x in g) for i in range(3)]
    med[name] = m
    print("%-18s %10.1f %10.1f %7.2f %11.1f %8.2f" % (name, m[0], m[1], gbs(m[1]), m[2], gbs(m[2])))
for mode in ("procs", "threads"):
    a, b = med.get(mode + "-jobs1"), med.get(mode + "-jobs2")
    if a and b:
        print("%s: --jobs 2 vs --jobs 1: dump x%.2f, restore x%.2f (below 1: faster)" % (mode, b[1] / a[1], b[2] / a[2]))
EOF
