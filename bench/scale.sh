#!/bin/bash
# Scale cases of issue 13 (tests/progs/scale.c): many threads, processes,
# descriptors, mappings, and a big sparse mapping. Each case runs at the two
# sizes given, is dumped (images on tmpfs), killed, restored with -d and
# checked (SIGUSR1: every item still there); prints dump and restore times,
# the frozen time, and the time per item at each size (linear scaling gives
# the same per-item time at both sizes; quadratic work doubles it when the
# size doubles). With --criu PATH, the same cases are also dumped and
# restored by upstream CRIU for comparison.
#
# Usage: bench/scale.sh [--criu PATH] [CASE...]
#   CASE is MODE:SMALL:LARGE[:ARG], default:
#   threads:2500:10000 procs:125:500 fds:2500:10000 maps:15000:60000 sparse:4:16:1024
#   (sparse: GiB of mapping at each size, with ARG MiB touched)
# Environment: CRIU_FAST (./build/criu-fast), PROGS (./build/progs), OUT_DIR (/dev/shm/cf-scale),
#   REPEAT (1): each size is run REPEAT times, the tools taking turns inside
#   each round, in reverse order every other round (drift on a shared VM
#   hits both alike); with REPEAT > 1 a closing table gives each tool's
#   medians and the ratios criu-fast/CRIU.
#   ONE_JOB (0): 1 adds a third tool, criu-fast with --jobs 1 for dump and
#   restore ("cf-1job"), and its ratios to CRIU: the work per item of the
#   two tools on one core each.
set -u -o pipefail

CRIU=
if [ "${1:-}" = --criu ]; then
  CRIU=$2
  shift 2
fi
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(threads:2500:10000 procs:125:500 fds:2500:10000 maps:15000:60000 sparse:4:16:1024)
CRIU_FAST=${CRIU_FAST:-./build/criu-fast}
PROGS=${PROGS:-./build/progs}
OUT_DIR=${OUT_DIR:-/dev/shm/cf-scale}
REPEAT=${REPEAT:-1}
ONE_JOB=${ONE_JOB:-0}
TOOLS=(criu-fast)
[ "$ONE_JOB" = 1 ] && TOOLS+=(cf-1job)
[ -n "$CRIU" ] && TOOLS+=(criu)
die() { echo "scale: $*" >&2; exit 1; }
[ -x "$CRIU_FAST" ] || die "no criu-fast at $CRIU_FAST"
[ -x "$PROGS/scale" ] || die "no scale program in $PROGS"
[ "$(id -u)" = 0 ] || die "run as root"
WORK=$(mktemp -d /tmp/cf-scale.XXXXXX) || die mktemp
cleanup() {
  pkill -KILL -f "$PROGS/scale $WORK" 2>/dev/null
  rm -rf "$WORK" "$OUT_DIR"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null
echo 1 >/dev/null
echo "== criu-fast scale benchmark"
echo "kernel: $(uname -r); cpus: $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "commit: $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# run TOOL MODE N [ARG]: prints "dump_ms restore_ms frozen_ms check"
run() {
  local tool=$1 mode=$2 n=$3 arg=${4:-} w pid pids t0 t1 t2 t3 frozen=- res i
  local jobs=()
  [ "$tool" = cf-1job ] && jobs=(--jobs 1)
  w=$WORK/$tool-$mode-$n
  rm -rf "$w"  # an earlier round's ready file
  mkdir -p "$w" "$OUT_DIR"
  rm -rf "$OUT_DIR/img"
  mkdir -p "$OUT_DIR/img"
  (setsid -f "$PROGS/scale" "$w" "$mode" "$n" $arg </dev/null >/dev/null 2>&1)
  for ((i = 0; i < 3000; i++)); do [ -s "$w/ready" ] && break; sleep 0.1; done
  pid=$(tr -dc 0-9 <"$w/ready")
  [ -n "$pid" ] || { echo "- - - not-ready"; return; }
  # Every process of the tree: the restore starts once all their pids are
  # free again (the dump kills the tree, and this machine's init reaps the
  # orphaned children a second or more later).
  pids=$(pgrep -f "$PROGS/scale $w")
  t0=$(now_ms)
  if [ "$tool" != criu ]; then
    "$CRIU_FAST" dump -t "$pid" -D "$OUT_DIR/img" "${jobs[@]}" --display-stats >"$w/dump.out" 2>&1 || { echo "- - - dump-failed"; pkill -KILL -f "$PROGS/scale $w"; return; }
    frozen=$(sed -n 's/^ *frozen time: *\([0-9.]*\).*/\1/p' "$w/dump.out" | cut -d. -f1)
  else
    "$CRIU" dump -t "$pid" -D "$OUT_DIR/img" --shell-job >"$w/dump.out" 2>&1 || { echo "- - - dump-failed"; pkill -KILL -f "$PROGS/scale $w"; return; }
  fi
  t1=$(now_ms)
  for ((i = 0; i < 1200; i++)); do
    local alive=0 p
    for p in $pids; do [ -e "/proc/$p" ] && { alive=1; break; }; done
    [ "$alive" = 0 ] && break
    sleep 0.05
  done
  # A process killed while traced may hold its pid some ms more (1-36 ms
  # measured after either tool's dump of 10,000 descriptors): criu-fast
  # would wait for it inside its timed restore, CRIU fail.
  # shellcheck disable=SC2086
  "$PROGS/scale" --pids-free $pids || echo "scale: pids of $pid still taken" >&2
  t2=$(now_ms)
  if [ "$tool" != criu ]; then
    "$CRIU_FAST" restore -D "$OUT_DIR/img" -d "${jobs[@]}" >"$w/restore.out" 2>&1 || { echo "$((t1 - t0)) - $frozen restore-failed"; return; }
  else
    "$CRIU" restore -D "$OUT_DIR/img" -d --shell-job >"$w/restore.out" 2>&1 || { echo "$((t1 - t0)) - $frozen restore-failed"; return; }
  fi
  t3=$(now_ms)
  rm -f "$w/result"
  kill -USR1 "$pid"
  for ((i = 0; i < 1200; i++)); do [ -s "$w/result" ] && break; sleep 0.1; done
  res=$(head -c 60 "$w/result" 2>/dev/null | head -n 1)
  pkill -KILL -f "$PROGS/scale $w" 2>/dev/null
  for ((i = 0; i < 200; i++)); do [ -e "/proc/$pid" ] || break; sleep 0.05; done
  echo "$((t1 - t0)) $((t3 - t2)) $frozen ${res:-no-result}"
}

printf '%-8s %-8s %7s %10s %10s %10s %12s %12s  %s\n' tool case size dump_ms restore_ms frozen_ms dump_us/item rest_us/item check
declare -A DUMPS RESTORES  # "tool mode n" -> the times of every round
for c in "${CASES[@]}"; do
  IFS=: read -r mode small large arg <<<"$c"
  for ((rep = 1; rep <= REPEAT; rep++)); do
    for n in $small $large; do
      # The order of the tools changes from round to round: a run right
      # after another of the same case can be faster or slower (memory just
      # freed, caches), and that should not always favour the same tool.
      order=("${TOOLS[@]}")
      if ((rep % 2 == 0)); then
        order=()
        for ((i = ${#TOOLS[@]} - 1; i >= 0; i--)); do order+=("${TOOLS[$i]}"); done
      fi
      for tool in "${order[@]}"; do
        read -r d r f res <<<"$(run "$tool" "$mode" "$n" "$arg")"
        items=$n
        [ "$mode" = sparse ] && items=$((n * 262144))  # pages of the mapping
        per_d=-; per_r=-
        [ "$d" != - ] && per_d=$(awk -v a="$d" -v b="$items" 'BEGIN { printf "%.2f", a * 1000 / b }')
        [ "$r" != - ] && per_r=$(awk -v a="$r" -v b="$items" 'BEGIN { printf "%.2f", a * 1000 / b }')
        printf '%-8s %-8s %7s %10s %10s %10s %12s %12s  %s\n' "$tool" "$mode" "$n" "$d" "$r" "$f" "$per_d" "$per_r" "$res"
        [ "$d" != - ] && DUMPS["$tool $mode $n"]+=" $d"
        [ "$r" != - ] && RESTORES["$tool $mode $n"]+=" $r"
      done
    done
  done
done

# median of the numbers given ("-" for none)
median() {
  [ $# -gt 0 ] || { echo -; return; }
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2); printf "%d", (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'
}
ratio() { [ "$1" != - ] && [ "$2" != - ] && [ "$2" != 0 ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo -; }
if [ "$REPEAT" -gt 1 ]; then
  echo
  echo "medians of $REPEAT rounds (ms)${CRIU:+, ratios criu-fast/CRIU}:"
  one_head=()
  [ "$ONE_JOB" = 1 ] && one_head=(1job_dump 1job_rest r1_dump r1_rest)
  printf '%-8s %7s %10s %10s %10s %10s %8s %8s' case size cf_dump cf_restore criu_dump criu_rest r_dump r_rest
  [ "$ONE_JOB" = 1 ] && printf ' %10s %10s %8s %8s' "${one_head[@]}"
  echo
  for c in "${CASES[@]}"; do
    IFS=: read -r mode small large arg <<<"$c"
    for n in $small $large; do
      # shellcheck disable=SC2086
      fd=$(median ${DUMPS["criu-fast $mode $n"]:-}); fr=$(median ${RESTORES["criu-fast $mode $n"]:-})
      # shellcheck disable=SC2086
      cd_=$(median ${DUMPS["criu $mode $n"]:-}); cr=$(median ${RESTORES["criu $mode $n"]:-})
      printf '%-8s %7s %10s %10s %10s %10s %8s %8s' "$mode" "$n" "$fd" "$fr" "$cd_" "$cr" "$(ratio "$fd" "$cd_")" "$(ratio "$fr" "$cr")"
      if [ "$ONE_JOB" = 1 ]; then
        # shellcheck disable=SC2086
        od=$(median ${DUMPS["cf-1job $mode $n"]:-}); or=$(median ${RESTORES["cf-1job $mode $n"]:-})
        printf ' %10s %10s %8s %8s' "$od" "$or" "$(ratio "$od" "$cd_")" "$(ratio "$or" "$cr")"
      fi
      echo
    done
  done
fi
