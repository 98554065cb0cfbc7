#!/bin/bash
# Dump to a directory vs dump as a stream: one memload workload
# (tests/progs/memload.c) is dumped with -R (it runs on, so every run sees the
# same memory) alternately
#   dir:     criu-fast dump -R -D OUT_DIR/img      (tmpfs by default)
#   stream:  criu-fast dump -R --stream > /dev/null
# and, with --compress lz4, the same two. Prints the wall time of each
# command and the dump's own "total time" and "frozen time" (--display-stats),
# per run and as medians. Runs alternate (ABAB, then BABA) so drifts hit both.
#
# Usage: bench/stream_e2e.sh [SIZE_MB=512] [RUNS=5] [OUT_DIR=/dev/shm/cf-stream-bench]
# Environment: CRIU_FAST (default ./build/criu-fast), PROGS (default ./build/progs)
set -u -o pipefail

SIZE_MB=${1:-512}
RUNS=${2:-5}
OUT_DIR=${3:-/dev/shm/cf-stream-bench}
CRIU_FAST=${CRIU_FAST:-./build/criu-fast}
PROGS=${PROGS:-./build/progs}

die() {
  echo "stream_e2e: $*" >&2
  exit 1
}
[ -x "$CRIU_FAST" ] || die "no criu-fast at $CRIU_FAST (set CRIU_FAST)"
[ -x "$PROGS/memload" ] || die "no memload in $PROGS (set PROGS)"
[ "$(id -u)" = 0 ] || die "run as root (the dump ptraces the workload)"
case $SIZE_MB$RUNS in *[!0-9]*) die "SIZE_MB and RUNS must be numbers" ;; esac
PROGS=$(cd "$PROGS" && pwd -P)
WORK=$(mktemp -d /tmp/cf-stream-bench.XXXXXX) || die "mktemp"
mkdir -p "$OUT_DIR" || die "mkdir $OUT_DIR"
LOAD_PID=
cleanup() {
  if [ -n "$LOAD_PID" ] && [ "$(readlink "/proc/$LOAD_PID/exe" 2>/dev/null)" = "$PROGS/memload" ]; then
    kill -KILL "$LOAD_PID" 2>/dev/null
  fi
  rm -rf "$WORK" "$OUT_DIR/img"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

echo "== criu-fast dump: directory vs stream"
echo "kernel:   $(uname -r); cpus: $(nproc); commit: $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null)"
echo "workload: memload $SIZE_MB MB (mix); $RUNS runs per variant; directory on $OUT_DIR"
echo

mkdir -p "$WORK/w"
setsid -f "$PROGS/memload" "$WORK/w" "$SIZE_MB" mix </dev/null >/dev/null 2>&1 || die "cannot start memload"
for ((i = 0; i < 1200; i++)); do [ -s "$WORK/w/ready" ] && break; sleep 0.05; done
[ -s "$WORK/w/ready" ] || die "memload not ready"
LOAD_PID=$(tr -dc '0-9' <"$WORK/w/ready")

# run LABEL MODE [ARGS...]: one dump -R; appends "label wall_ms total_ms frozen_ms bytes".
run() {
  local label=$1 mode=$2 t0 t1 bytes
  shift 2
  rm -rf "$OUT_DIR/img"
  t0=$(date +%s%N)
  if [ "$mode" = dir ]; then
    "$CRIU_FAST" dump -t "$LOAD_PID" -R -D "$OUT_DIR/img" --display-stats "$@" >"$WORK/stats" 2>"$WORK/err" ||
      die "dump failed: $(cat "$WORK/err")"
    t1=$(date +%s%N)
    bytes=$(du -sb "$OUT_DIR/img" | cut -f1)
  else
    "$CRIU_FAST" dump -t "$LOAD_PID" -R --stream --display-stats "$@" 2>"$WORK/stats" | wc -c >"$WORK/bytes" ||
      die "dump --stream failed: $(cat "$WORK/stats")"
    t1=$(date +%s%N)
    bytes=$(cat "$WORK/bytes")
  fi
  python3 - "$WORK/stats" "$label" "$(((t1 - t0) / 1000))" "$bytes" >>"$WORK/results" <<'PYEOF' || die "no stats"
import re, sys
text = open(sys.argv[1]).read()
def stat(name):
    return float(re.search(r"^\s*" + re.escape(name) + r":\s+([0-9.]+)", text, re.M).group(1))
print("%s\t%.1f\t%.1f\t%.1f\t%s" % (sys.argv[2], int(sys.argv[3]) / 1000, stat("total time"), stat("frozen time"),
                                    sys.argv[4]))
PYEOF
}

run warmup dir
: >"$WORK/results"
for ((r = 1; r <= RUNS; r++)); do
  if ((r % 2)); then order=(dir stream); else order=(stream dir); fi
  for m in "${order[@]}"; do run "$m/$r" "$m"; done
  for m in "${order[@]}"; do run "$m-lz4/$r" "$m" --compress lz4; done
done

python3 - "$WORK/results" <<'PYEOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
groups = {}
print("%-14s %10s %10s %10s %10s" % ("run", "wall ms", "total ms", "frozen ms", "image MB"))
for label, wall, total, frozen, size in rows:
    groups.setdefault(label.split("/")[0], []).append((float(wall), float(total), float(frozen), int(size)))
    print("%-14s %10s %10s %10s %10.1f" % (label, wall, total, frozen, int(size) / 1048576))
print("\nmedians")
for name, g in groups.items():
    m = [statistics.median(x[i] for x in g) for i in range(4)]
    print("%-14s %10.1f %10.1f %10.1f %10.1f" % (name, m[0], m[1], m[2], m[3] / 1048576))
PYEOF
