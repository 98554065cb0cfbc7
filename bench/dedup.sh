#!/bin/bash
# What deduplication by content (sched/dedup.h) costs and saves in a dump:
# `dump -R` of the same frozen workload with --no-dedup and with --dedup,
# alternated (ABBA...) so drifts hit both, into tmpfs. Two workloads:
#   memload SIZE_MB random   every page distinct: the pure cost (hash, table)
#   dedup_tree               a parent and a child holding 8 distinct pages
#                            many times over (tests/progs/dedup_tree.c)
# Prints per run the frozen time, total time, pages written, pages
# deduplicated, image size, criu-fast's peak RSS and the drain stage's
# thread time (reading, zero test, hashing, table lookups); then medians.
#
# Usage: bench/dedup.sh [SIZE_MB=1024] [RUNS=3] [OUT_DIR=/dev/shm/cf-dedup]
# Environment: CRIU_FAST (default ./build/criu-fast), PROGS (./build/progs).
set -u -o pipefail

SIZE_MB=${1:-1024}
RUNS=${2:-3}
OUT_DIR=${3:-/dev/shm/cf-dedup}
CRIU_FAST=${CRIU_FAST:-./build/criu-fast}
PROGS=${PROGS:-./build/progs}

die() {
  echo "dedup bench: $*" >&2
  exit 1
}
[ -x "$CRIU_FAST" ] || die "no criu-fast at $CRIU_FAST"
[ -x "$PROGS/memload" ] && [ -x "$PROGS/dedup_tree" ] || die "no memload/dedup_tree in $PROGS"
WORK=$(mktemp -d /tmp/cf-dedup-bench.XXXXXX) || die mktemp
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$WORK" "$OUT_DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

echo "== criu-fast dedup benchmark: kernel $(uname -r), $(nproc) cpus, commit $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null)"

start() {  # start W PROG ARGS...: starts a test program, sets PID
  local w=$1 i
  shift
  mkdir -p "$w"
  setsid -f "$PROGS/$1" "$w" "${@:2}" </dev/null >/dev/null 2>&1 || die "cannot start $1"
  for ((i = 0; i < 2400; i++)); do
    [ -s "$w/ready" ] && break
    [ -s "$w/error" ] && die "$1: $(cat "$w/error")"
    sleep 0.05
  done
  [ -s "$w/ready" ] || die "$1 not ready"
  PID=$(tr -dc '0-9' <"$w/ready")
  PIDS+=("$PID")
  [ -s "$w/ready.child" ] && PIDS+=("$(tr -dc '0-9' <"$w/ready.child")")
  sleep 0.3
}

one() {  # one WORKLOAD PID FLAG
  local img=$OUT_DIR/img
  rm -rf "$img"
  mkdir -p "$OUT_DIR"
  "$CRIU_FAST" dump -t "$2" -D "$img" -R --display-stats "$3" >"$WORK/out" 2>"$WORK/err" || {
    cat "$WORK/err" >&2
    die "dump $3 failed"
  }
  python3 - "$WORK/out" "$1" "$3" "$(du -sb "$img" | cut -f1)" >>"$WORK/results.tsv" <<'EOF' || die "cannot parse stats"
import re, sys
text = open(sys.argv[1]).read()
def stat(name):
    m = re.search(r"^\s*" + re.escape(name) + r":\s+([0-9]+(?:\.[0-9]+)?)", text, re.M)
    return float(m.group(1)) if m else 0.0
print("%s\t%s\t%.1f\t%.1f\t%d\t%d\t%.1f\t%.1f\t%.1f" % (sys.argv[2], sys.argv[3], stat("frozen time"), stat("total time"),
      stat("pages written"), stat("pages deduplicated"), int(sys.argv[4]) / 1048576.0, stat("peak RSS"),
      stat("drain time")))
EOF
  tail -n 1 "$WORK/results.tsv"
  rm -rf "$img"
}

printf 'workload\tflag\tfrozen_ms\ttotal_ms\tpages_written\tpages_dedup\timage_MiB\tpeak_RSS_MiB\tdrain_thread_ms\n'
start "$WORK/m" memload "$SIZE_MB" random
m=$PID
one memload "$m" --no-dedup >/dev/null  # warm-up
for ((r = 0; r < RUNS; r++)); do
  if ((r % 2 == 0)); then order="--no-dedup --dedup"; else order="--dedup --no-dedup"; fi
  for f in $order; do one "memload-random-${SIZE_MB}M" "$m" "$f"; done
done
kill -KILL "$m"
start "$WORK/d" dedup_tree $((SIZE_MB * 256 / 4 / 8 * 8))
d=$PID
one dedup_tree "$d" --no-dedup >/dev/null
for ((r = 0; r < RUNS; r++)); do
  if ((r % 2 == 0)); then order="--no-dedup --dedup"; else order="--dedup --no-dedup"; fi
  for f in $order; do one "dedup_tree-$((SIZE_MB * 256 / 4 / 8 * 8))p" "$d" "$f"; done
done
echo "== medians"
python3 - "$WORK/results.tsv" <<'EOF'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] in ("memload", "dedup_tree"):
        continue
    rows[(f[0], f[1])].append([float(x) for x in f[2:]])
for (w, flag), rs in sorted(rows.items()):
    med = [statistics.median(c) for c in zip(*rs)]
    print("%-24s %-11s frozen %7.1f ms  total %7.1f ms  drain (thread) %7.1f ms  written %7d  dedup %7d  image %7.1f MiB  RSS %5.1f MiB"
          % (w, flag, med[0], med[1], med[6], med[2], med[3], med[4], med[5]))
EOF
