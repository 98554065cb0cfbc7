#!/bin/bash
# End-to-end dump and restore benchmark: dumps a memload workload
# (tests/progs/memload.c), restores it, and reports frozen time, total dump
# time, GB/s of process memory, image size and restore time, per run and as
# medians. Restore time excludes the wait for the dumped PID to be released
# (this machine's init reaps orphans late, see kernel.md).
#
# Usage: bench/dump_e2e.sh [SIZE_MB=1024] [RUNS=3] [OUT_DIR=/dev/shm/cf-bench] [PATTERN=mix]
#   PATTERN is memload's: mix (1/3 random, 1/3 zero, 1/3 text), random, text, zero.
# Environment:
#   CRIU_FAST  the binary      (default ./build/criu-fast)
#   PROGS      test programs   (default ./build/progs)
#   DUMP_ARGS  extra dump options for every run (e.g. "--compress lz4")
#   CODECS     compare codecs instead of --jobs 1/2: e.g. "none lz4 zstd", each
#              round runs every codec once, in a rotated order
#
# Method (see kernel.md, "Things that bite"): one warm-up run is not counted;
# each run starts a fresh memload, dumps it (default mode: the target is killed)
# into OUT_DIR (tmpfs by default, so the disk is not what is measured), reads
# the times from --display-stats and also takes the wall clock of the command.
# GB/s is SIZE_MB MiB of process memory over the dump's total time. The images
# are removed after each run. A second part compares --jobs 1 and --jobs 2,
# alternated within the same run (ABAB, then BABA) so drifts hit both.
set -u -o pipefail

SIZE_MB=${1:-1024}
RUNS=${2:-3}
OUT_DIR=${3:-/dev/shm/cf-bench}
PATTERN=${4:-mix}
CRIU_FAST=${CRIU_FAST:-./build/criu-fast}
PROGS=${PROGS:-./build/progs}
read -r -a EXTRA <<<"${DUMP_ARGS:-}"

die() {
  echo "dump_e2e: $*" >&2
  exit 1
}
[ -x "$CRIU_FAST" ] || die "no criu-fast at $CRIU_FAST (set CRIU_FAST)"
[ -x "$PROGS/memload" ] || die "no memload in $PROGS (set PROGS)"
[ "$(id -u)" = 0 ] || die "run as root (the dump ptraces the workload)"
case $SIZE_MB$RUNS in *[!0-9]*) die "SIZE_MB and RUNS must be numbers" ;; esac
CRIU_FAST=$(cd "$(dirname "$CRIU_FAST")" && pwd -P)/$(basename "$CRIU_FAST")
PROGS=$(cd "$PROGS" && pwd -P)

WORK=$(mktemp -d /tmp/cf-bench.XXXXXX) || die "mktemp"
mkdir -p "$OUT_DIR" || die "mkdir $OUT_DIR"
RESULTS=$WORK/results.tsv
LOAD_PID=

cleanup() {
  if [ -n "$LOAD_PID" ] && [ -d "/proc/$LOAD_PID" ]; then
    case $(readlink "/proc/$LOAD_PID/exe" 2>/dev/null) in
      "$PROGS/memload") kill -KILL "$LOAD_PID" 2>/dev/null ;;
    esac
  fi
  rm -rf "$WORK" "$OUT_DIR/img"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

now_ns() { date +%s%N; }

# ---- the machine ------------------------------------------------------------------
machine() {
  local cache commit
  cache=$(dirname "$CRIU_FAST")/CMakeCache.txt
  commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)
  echo "== criu-fast end-to-end dump benchmark"
  echo "kernel:   $(uname -r)"
  echo "cpus:     $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "memory:   $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "commit:   $commit"
  if [ -f "$cache" ]; then
    echo "build:    $(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache") $(sed -n 's/^CMAKE_CXX_FLAGS:[A-Z]*=//p' "$cache")" \
      "sanitize=$(sed -n 's/^CF_SANITIZE:[A-Z]*=//p' "$cache")"
  fi
  echo "binary:   $CRIU_FAST"
  echo "output:   $OUT_DIR ($(df -P "$OUT_DIR" | awk 'NR == 2 { print $1 }'))"
  echo "workload: memload $SIZE_MB MB, pattern $PATTERN; $RUNS runs; dump options: ${EXTRA[*]:-(none)}"
  echo
}

# ---- one run ------------------------------------------------------------------------
# one_run LABEL [DUMP OPTIONS...]: appends "label frozen_ms total_ms wall_ms image_bytes pages_written
# restore_ms" to RESULTS.
one_run() {
  local label=$1
  shift
  local w=$WORK/w img=$OUT_DIR/img t0 t1 i rc
  rm -rf "$w" "$img"
  mkdir -p "$w"
  setsid -f "$PROGS/memload" "$w" "$SIZE_MB" "$PATTERN" </dev/null >/dev/null 2>&1 || die "cannot start memload"
  for ((i = 0; i < 1200; i++)); do
    [ -s "$w/ready" ] && break
    [ -s "$w/error" ] && die "memload: $(cat "$w/error")"
    sleep 0.05
  done
  [ -s "$w/ready" ] || die "memload not ready after 60 s"
  LOAD_PID=$(tr -dc '0-9' <"$w/ready")
  sleep 0.2 # let the workload settle into its idle loop

  t0=$(now_ns)
  timeout -k 5 600 "$CRIU_FAST" dump -t "$LOAD_PID" -D "$img" --display-stats "${EXTRA[@]}" "$@" \
    >"$WORK/stats.out" 2>"$WORK/stats.err"
  rc=$?
  t1=$(now_ns)
  if [ "$rc" != 0 ]; then
    cat "$WORK/stats.err" >&2
    die "dump failed (exit $rc) in run $label"
  fi
  timeout -k 5 600 "$CRIU_FAST" restore -D "$img" -d --display-stats >"$WORK/rstats.out" 2>"$WORK/rstats.err"
  rc=$?
  if [ "$rc" != 0 ]; then
    cat "$WORK/rstats.err" >&2
    die "restore failed (exit $rc) in run $label"
  fi
  python3 - "$WORK/stats.out" "$label" "$(((t1 - t0) / 1000))" "$(du -sb "$img" | cut -f1)" "$WORK/rstats.out" >>"$RESULTS" <<'EOF' || die "cannot parse --display-stats"
import re, sys
text = open(sys.argv[1]).read() + open(sys.argv[5]).read()
def stat(name):
    m = re.search(r"^\s*" + re.escape(name) + r":\s+([0-9]+(?:\.[0-9]+)?)", text, re.M)
    if not m:
        sys.exit("no '%s:' in --display-stats output" % name)
    return float(m.group(1))
print("%s\t%.3f\t%.3f\t%.3f\t%s\t%d\t%.3f" % (sys.argv[2], stat("frozen time"), stat("total time"),
      int(sys.argv[3]) / 1000.0, sys.argv[4], stat("pages written"),
      stat("restore time") - stat("pid wait time")))
EOF
  kill -KILL "$LOAD_PID" 2>/dev/null
  # The target was killed by the dump; wait until it is dead (a zombie is
  # fine: its memory is freed) before the next run allocates.
  for ((i = 0; i < 200; i++)); do
    case $(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$LOAD_PID/status" 2>/dev/null) in
      "" | Z | X) break ;;
    esac
    sleep 0.05
  done
  LOAD_PID=
  rm -rf "$img"
}

machine
: >"$RESULTS"
echo "warm-up run (not counted)..."
one_run warmup
: >"$RESULTS"

if [ -n "${CODECS:-}" ]; then
  # Codecs side by side: each round runs every codec once, the order rotated
  # from round to round so drifts hit all of them.
  read -r -a codec_list <<<"$CODECS"
  n=${#codec_list[@]}
  for ((r = 1; r <= RUNS; r++)); do
    for ((k = 0; k < n; k++)); do
      c=${codec_list[$(((k + r) % n))]}
      one_run "${c//:/-}/$r" --compress "$c"
    done
  done
else
  for ((r = 1; r <= RUNS; r++)); do one_run "default/$r"; done
  for ((r = 1; r <= RUNS; r++)); do
    if ((r % 2)); then
      one_run "jobs1/$r" --jobs 1
      one_run "jobs2/$r" --jobs 2
    else
      one_run "jobs2/$r" --jobs 2
      one_run "jobs1/$r" --jobs 1
    fi
  done
fi

python3 - "$RESULTS" "$SIZE_MB" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
mib = int(sys.argv[2]) * 1048576
def gbs(total_ms):
    return mib / (total_ms / 1000.0) / 1e9 if total_ms > 0 else 0.0
hdr = "%-12s %11s %11s %11s %8s %11s %11s %9s" % ("run", "frozen ms", "total ms", "wall ms", "GB/s", "image MB",
                                                "restore ms", "rst GB/s")
groups = {}
print(hdr + " %10s" % "pages")
for label, frozen, total, wall, size, pages, rst in rows:
    frozen, total, wall, size, rst = float(frozen), float(total), float(wall), int(size), float(rst)
    groups.setdefault(label.split("/")[0], []).append((frozen, total, wall, size, rst))
    print("%-12s %11.1f %11.1f %11.1f %8.2f %11.1f %11.1f %9.2f %10s" % (label, frozen, total, wall, gbs(total),
          size / 1048576, rst, gbs(rst), pages))
print()
print("medians")
print(hdr)
med = {}
for name, g in groups.items():
    m = [statistics.median(x[i] for x in g) for i in range(5)]
    med[name] = m
    print("%-12s %11.1f %11.1f %11.1f %8.2f %11.1f %11.1f %9.2f" % (name, m[0], m[1], m[2], gbs(m[1]),
          m[3] / 1048576, m[4], gbs(m[4])))
if "jobs1" not in med:
    print()
    print("dump + restore (medians of each): " + ", ".join("%s %.1f ms" % (k, v[1] + v[4]) for k, v in med.items()))
if "jobs1" in med and "jobs2" in med:
    a, b = med["jobs1"], med["jobs2"]
    print()
    print("--jobs 2 vs --jobs 1: frozen time x%.2f, total time x%.2f (below 1: --jobs 2 is faster)" % (
        b[0] / a[0] if a[0] else 0, b[1] / a[1] if a[1] else 0))
EOF
