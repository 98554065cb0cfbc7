#!/bin/bash
# One large process's dump with one pages file against several (the page
# pipeline's writers, sched::WritersFor), side by side: memload (mixed
# workload, tests/progs/memload.c) of SIZE_MB, dumped (killed) into tmpfs
# and onto the disk, with --compress none and lz4, as
#   jobs1        --jobs 1 (one writer)
#   jobs2-w1     --jobs 2, one writer (CF_PAGE_WRITERS=1)
#   jobs2        --jobs 2, the default writers (2 here)
# Variants are alternated within each round (the order rotates every round)
# so that drifts of this shared machine hit all alike; medians of RUNS rounds
# of the dump's "total time" (--display-stats). Images are removed after
# each run.
#
# Usage: bench/writers.sh [SIZE_MB=1024] [RUNS=5] [TMPFS_DIR=/dev/shm/cf-bench] [DISK_DIR=/var/tmp/cf-bench]
# Environment: CRIU_FAST (default ./build/criu-fast), PROGS (default ./build/progs),
#   CODECS (default "none lz4"), TARGETS (default "tmpfs disk").
set -u -o pipefail

SIZE_MB=${1:-1024}
RUNS=${2:-5}
TMPFS_DIR=${3:-/dev/shm/cf-bench}
DISK_DIR=${4:-/var/tmp/cf-bench}
CRIU_FAST=${CRIU_FAST:-./build/criu-fast}
PROGS=${PROGS:-./build/progs}
read -r -a CODECS <<<"${CODECS:-none lz4}"
read -r -a TARGETS <<<"${TARGETS:-tmpfs disk}"

die() {
  echo "writers: $*" >&2
  exit 1
}
[ -x "$CRIU_FAST" ] || die "no criu-fast at $CRIU_FAST (set CRIU_FAST)"
[ -x "$PROGS/memload" ] || die "no memload in $PROGS (set PROGS)"
[ "$(id -u)" = 0 ] || die "run as root"
WORK=$(mktemp -d /tmp/cf-writers.XXXXXX) || die "mktemp"
RESULTS=$WORK/results.tsv
LOAD_PID=
cleanup() {
  [ -n "$LOAD_PID" ] && kill -KILL "$LOAD_PID" 2>/dev/null
  rm -rf "$WORK" "$TMPFS_DIR/img" "$DISK_DIR/img"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# one_run LABEL DIR WRITERS DUMP-ARGS...: appends "label total_ms image_bytes pages_files".
one_run() {
  local label=$1 dir=$2 writers=$3 w=$WORK/w img i
  shift 3
  img=$dir/img
  rm -rf "$w" "$img"
  mkdir -p "$w" "$dir"
  setsid -f "$PROGS/memload" "$w" "$SIZE_MB" mix </dev/null >/dev/null 2>&1 || die "cannot start memload"
  for ((i = 0; i < 1200; i++)); do
    [ -s "$w/ready" ] && break
    sleep 0.05
  done
  [ -s "$w/ready" ] || die "memload not ready"
  LOAD_PID=$(tr -dc '0-9' <"$w/ready")
  sleep 0.2
  if [ -n "$writers" ]; then
    CF_PAGE_WRITERS=$writers "$CRIU_FAST" dump -t "$LOAD_PID" -D "$img" --display-stats "$@" >"$WORK/out" 2>&1
  else
    "$CRIU_FAST" dump -t "$LOAD_PID" -D "$img" --display-stats "$@" >"$WORK/out" 2>&1
  fi || {
    cat "$WORK/out" >&2
    die "dump failed in $label"
  }
  printf '%s\t%s\t%s\t%s\n' "$label" "$(sed -n 's/^ *total time: *\([0-9.]*\).*/\1/p' "$WORK/out")" \
    "$(du -sb "$img" | cut -f1)" "$(ls "$img" | grep -c '^pages-')" >>"$RESULTS"
  kill -KILL "$LOAD_PID" 2>/dev/null
  for ((i = 0; i < 200; i++)); do
    case $(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$LOAD_PID/status" 2>/dev/null) in
      "" | Z | X) break ;;
    esac
    sleep 0.05
  done
  LOAD_PID=
  rm -rf "$img"
}

VARIANTS=()
for t in "${TARGETS[@]}"; do
  for c in "${CODECS[@]}"; do
    VARIANTS+=("$t $c jobs1 -" "$t $c jobs2-w1 1" "$t $c jobs2 -")
  done
done

echo "== one process, one pages file vs several: memload $SIZE_MB MB mix, $RUNS rounds"
echo "kernel $(uname -r), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null)"
one_run warmup "$TMPFS_DIR" "" --jobs 2
: >"$RESULTS"
n=${#VARIANTS[@]}
for ((r = 0; r < RUNS; r++)); do
  for ((k = 0; k < n; k++)); do
    read -r t c label writers <<<"${VARIANTS[$(((k + r) % n))]}"
    dir=$TMPFS_DIR
    [ "$t" = disk ] && dir=$DISK_DIR
    jobs=2
    [ "$label" = jobs1 ] && jobs=1
    [ "$writers" = - ] && writers=
    one_run "$t/$c/$label" "$dir" "$writers" --jobs "$jobs" --compress "$c"
  done
done

python3 - "$RESULTS" "$SIZE_MB" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
mib = int(sys.argv[2]) * 1048576
g = {}
for label, total, size, files in rows:
    g.setdefault(label, []).append((float(total), int(size), int(files)))
print("%-26s %9s %9s %9s %9s %6s %5s" % ("variant", "median ms", "min ms", "max ms", "GB/s", "img MB", "files"))
for label in g:
    v = g[label]
    med = statistics.median(x[0] for x in v)
    print("%-26s %9.1f %9.1f %9.1f %9.2f %6.0f %5d" % (label, med, min(x[0] for x in v), max(x[0] for x in v),
          mib / (med / 1000) / 1e9, statistics.median(x[1] for x in v) / 1048576, v[0][2]))
EOF
