# shellcheck shell=bash
# Helpers sourced by every end-to-end test (tests/e2e/test_*.sh).
#
# A test runs:   source "${E2E_LIB:-$(dirname "$0")/lib.sh}"; e2e_init
# then starts test programs (tests/progs) with start_prog, runs criu-fast with
# run_cf, and checks with the assert_* helpers, fail and pycheck.
#
# Environment (set by CTest, see tests/CMakeLists.txt; defaults for runs by hand):
#   CRIU_FAST   the criu-fast binary          (default <repo>/build/criu-fast)
#   PROGS       the folder of test programs   (default <repo>/build/progs)
#   E2E_TMPDIR  where the test's temp dir goes (default /tmp)
#   CF_TIMEOUT  seconds one criu-fast command may run (default 60)
#   E2E_KEEP=1  keep the temp dir (for debugging)
#   PROG_WRAP, CF_WRAP  a command (words) that start_prog and run_cf put
#               before the program and criu-fast: "setarch -R" (test's own)
#
# Exit codes: 0 pass, 1 fail, 77 skip. Every wait has a timeout; the EXIT trap
# kills every program the test started and removes the temp dir.
#
# Programs are started detached (setsid -f, stdio on /dev/null): they are not
# children of the test, so a killed target is reaped by PID 1, which here can
# take 1-2 s; a zombie counts as gone (is_gone).

set -u -o pipefail

E2E_NAME=$(basename "$0" .sh)
_E2E_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CRIU_FAST=${CRIU_FAST:-$_E2E_REPO/build/criu-fast}
PROGS=${PROGS:-$_E2E_REPO/build/progs}
CF_TIMEOUT=${CF_TIMEOUT:-60}
E2E_TMP=
PROG_PID=
CF_RC=
CF_OUT=
CF_ERR=
CF_LOG=
E2E_PIDS=()

# ---- reporting ---------------------------------------------------------------

log() { echo "[$E2E_NAME] $*"; }

# fail MESSAGE: prints the message (and the output of the last criu-fast run)
# and ends the test with exit code 1.
fail() {
  echo "FAIL [$E2E_NAME]: $*"
  if [ -n "$CF_ERR" ] && [ -s "$CF_ERR" ]; then
    echo "--- stderr of the last criu-fast run ($CF_ERR):"
    tail -n 20 "$CF_ERR"
  fi
  if [ -n "${CF_LOG:-}" ] && [ -s "$CF_LOG" ]; then
    echo "--- log of the last criu-fast run ($CF_LOG):"
    tail -n 30 "$CF_LOG"
  fi
  exit 1
}

# skip REASON: the test cannot run here (exit code 77, CTest's SKIP_RETURN_CODE).
skip() {
  echo "SKIP [$E2E_NAME]: $*"
  exit 77
}

# ---- setup and cleanup -------------------------------------------------------

e2e_init() {
  [ "$(id -u)" = 0 ] || skip "needs root (ptrace of other processes, /proc of any pid)"
  [ -x "$CRIU_FAST" ] || fail "criu-fast not found at $CRIU_FAST (set CRIU_FAST)"
  [ -d "$PROGS" ] || fail "test programs not found in $PROGS (set PROGS)"
  # Absolute paths: the cleanup recognizes our programs by /proc/PID/exe.
  PROGS=$(cd "$PROGS" && pwd -P) || fail "cd $PROGS"
  CRIU_FAST=$(cd "$(dirname "$CRIU_FAST")" && pwd -P)/$(basename "$CRIU_FAST")
  command -v python3 >/dev/null || skip "python3 is needed to read JSON"
  command -v setsid >/dev/null || skip "setsid is needed to start detached programs"
  E2E_TMP=$(mktemp -d "${E2E_TMPDIR:-/tmp}/cf-e2e-$E2E_NAME.XXXXXX") || fail "mktemp"
  trap _e2e_cleanup EXIT
  trap 'exit 1' INT TERM HUP
  log "temp dir $E2E_TMP, criu-fast $CRIU_FAST"
}

# The pids of test programs this test started: their argv[1] (the work dir)
# lies in our temp dir and their executable in $PROGS. Found from /proc, so
# a program that never became ready is found too.
_e2e_our_pids() {
  local d pid exe w
  [ -n "$E2E_TMP" ] || return 0
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    case $exe in "$PROGS"/*) ;; *) continue ;; esac
    w=$(tr '\0' '\n' <"$d/cmdline" 2>/dev/null | sed -n 2p)
    case $w in "$E2E_TMP"/*) echo "$pid" ;; esac
  done
}

# _e2e_looks_ours PID: its executable is in $PROGS or its argv[1] in our temp dir.
_e2e_looks_ours() {
  local exe w
  [ -n "$E2E_TMP" ] && [ -d "/proc/$1" ] || return 1
  exe=$(readlink "/proc/$1/exe" 2>/dev/null)
  case $exe in "$PROGS"/*) return 0 ;; esac
  w=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | sed -n 2p)
  case $w in "$E2E_TMP"/*) return 0 ;; esac
  return 1
}

_e2e_cleanup() {
  local rc=$? pid
  trap - EXIT
  for pid in $(_e2e_our_pids); do
    kill -KILL "$pid" 2>/dev/null
  done
  # Restored processes: the exe or the argv[1] is enough to know them, in
  # case a broken restore lost the other one.
  for pid in "${E2E_PIDS[@]}"; do
    _e2e_looks_ours "$pid" && kill -KILL "$pid" 2>/dev/null
  done
  if [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ]; then
    if [ "${E2E_KEEP:-0}" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ "${E2E_KEEP_ON_FAIL:-0}" = 1 ]; }; then
      echo "[$E2E_NAME] kept $E2E_TMP"
    else
      rm -rf "$E2E_TMP"
    fi
  fi
  exit "$rc"
}

# ---- test programs -------------------------------------------------------------

# wait_ready W [TIMEOUT_S]: waits for W/ready (fails early on W/error).
wait_ready() {
  local w=$1 timeout=${2:-30} i
  for ((i = 0; i < timeout * 20; i++)); do
    [ -s "$w/ready" ] && return 0
    [ -s "$w/error" ] && fail "program in $w failed to set up: $(cat "$w/error")"
    sleep 0.05
  done
  fail "program in $w not ready after ${timeout}s"
}

# start_prog NAME W [ARGS...]: starts $PROGS/NAME W ARGS detached and waits
# until it is ready; its pid is left in PROG_PID. PROG_CWD=DIR start_prog ...
# starts it in DIR (default: the test's cwd).
start_prog() {
  local name=$1 w=$2
  shift 2
  local exe=$PROGS/$name
  [ -x "$exe" ] || fail "test program $exe not built"
  mkdir -p "$w" || fail "mkdir $w"
  rm -f "$w/ready" "$w/result" "$w/error"
  # shellcheck disable=SC2086 # PROG_WRAP is words
  (cd "${PROG_CWD:-.}" && setsid -f ${PROG_WRAP:-} "$exe" "$w" "$@" </dev/null >/dev/null 2>&1) ||
    fail "cannot start $exe"
  wait_ready "$w" "${READY_TIMEOUT:-60}"
  PROG_PID=$(tr -dc '0-9' <"$w/ready")
  if [ -z "$PROG_PID" ] || [ ! -d "/proc/$PROG_PID" ]; then
    fail "$name: bad pid '$PROG_PID' in $w/ready"
  fi
}

# proc_state PID: the one-letter state (R S D T t Z X), empty if no such pid.
proc_state() {
  sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null
}

# tracer_pid PID: TracerPid from /proc/PID/status (empty if no such pid).
tracer_pid() {
  sed -n 's/^TracerPid:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null
}

# is_gone PID: no such process, or only a zombie (dead, not yet reaped).
is_gone() {
  local s
  [ -d "/proc/$1" ] || return 0
  s=$(proc_state "$1")
  [ -z "$s" ] || [ "$s" = Z ] || [ "$s" = X ]
}

# wait_gone PID [TIMEOUT_S]: fails unless PID is gone within the timeout.
wait_gone() {
  local pid=$1 timeout=${2:-10} i
  for ((i = 0; i < timeout * 20; i++)); do
    is_gone "$pid" && return 0
    sleep 0.05
  done
  fail "process $pid still there after ${timeout}s (state $(proc_state "$pid"), TracerPid $(tracer_pid "$pid"))"
}

# is_running_untraced PID: alive, not stopped (T) nor in a tracing stop (t),
# and TracerPid 0.
is_running_untraced() {
  local s t
  s=$(proc_state "$1")
  t=$(tracer_pid "$1")
  case $s in R | S | D) ;; *) return 1 ;; esac
  [ "$t" = 0 ]
}

# assert_running_untraced PID WHAT: like is_running_untraced, polled for up to
# 2 s (a detach is not seen at once in every field), then fails.
assert_running_untraced() {
  local pid=$1 what=$2 i
  for ((i = 0; i < 40; i++)); do
    is_running_untraced "$pid" && return 0
    sleep 0.05
  done
  fail "$what: process $pid is not running untraced (state '$(proc_state "$pid")', TracerPid '$(tracer_pid "$pid")')"
}

# assert_all_stopped PID WHAT: PID and every thread of it in state T, untraced.
assert_all_stopped() {
  local pid=$1 what=$2 i t s ok
  for ((i = 0; i < 40; i++)); do
    ok=1
    for t in /proc/"$pid"/task/*; do
      s=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "$t/status" 2>/dev/null)
      [ "$s" = T ] || ok=0
    done
    [ "$(tracer_pid "$pid")" = 0 ] || ok=0
    [ "$ok" = 1 ] && return 0
    sleep 0.05
  done
  fail "$what: process $pid is not stopped untraced (state '$(proc_state "$pid")', TracerPid '$(tracer_pid "$pid")')"
}

# cpu_ticks PID: utime+stime in clock ticks.
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # After "comm) ": state is field 1, utime field 12, stime field 13.
  echo "$stat" | awk '{ print $12 + $13 }'
}

# assert_cpu_advancing PID WHAT: a busy program (counter) keeps using CPU.
assert_cpu_advancing() {
  local pid=$1 what=$2 a b i
  a=$(cpu_ticks "$pid") || fail "$what: process $pid is gone"
  for ((i = 0; i < 40; i++)); do
    sleep 0.05
    b=$(cpu_ticks "$pid") || fail "$what: process $pid is gone"
    [ "$b" -gt "$a" ] && return 0
  done
  fail "$what: process $pid used no CPU in 2 s (state $(proc_state "$pid")): it is not running"
}

# check_pass W [TIMEOUT_S]: sends SIGUSR1 to the program of W and requires
# W/result to say PASS.
check_pass() {
  local w=$1 timeout=${2:-30} pid i res
  pid=$(tr -dc '0-9' <"$w/ready")
  rm -f "$w/result"
  kill -USR1 "$pid" 2>/dev/null || fail "cannot signal process $pid of $w (gone?)"
  for ((i = 0; i < timeout * 20; i++)); do
    if [ -s "$w/result" ]; then
      res=$(head -n 1 "$w/result")
      [ "$res" = PASS ] || fail "self-check of process $pid ($w): $res"
      return 0
    fi
    sleep 0.05
  done
  fail "self-check of process $pid ($w): no result after ${timeout}s (state $(proc_state "$pid"), TracerPid $(tracer_pid "$pid"))"
}

# kill_prog PID: kills a test program and waits until it is gone.
kill_prog() {
  kill -KILL "$1" 2>/dev/null
  wait_gone "$1" 10
}

# snapshot PID FILE: what must not change when a dump fails or runs with -R:
# the memory map and the descriptors (number and target).
snapshot() {
  local pid=$1 out=$2 fd
  {
    cat "/proc/$pid/maps" || return 1
    echo "-- fds"
    for fd in "/proc/$pid/fd"/*; do
      echo "${fd##*/} $(readlink "$fd")"
    done | sort -n
  } >"$out" 2>/dev/null
}

# assert_same_snapshot PID FILE WHAT: the process still has the snapshot's maps and fds.
assert_same_snapshot() {
  local pid=$1 before=$2 what=$3
  snapshot "$pid" "$before.after" || fail "$what: cannot read /proc/$pid"
  if ! cmp -s "$before" "$before.after"; then
    echo "--- diff of /proc/$pid/maps and fds, before and after:"
    diff "$before" "$before.after" | head -n 20
    fail "$what: process $pid changed (maps or descriptors)"
  fi
}

# ---- running criu-fast ----------------------------------------------------------

# run_cf TAG ARGS...: runs criu-fast ARGS under a timeout; stdout and stderr go
# to $E2E_TMP/TAG.out and .err. Sets CF_RC, CF_OUT, CF_ERR. Never fails itself.
# Environment for criu-fast goes before the call: CF_FAULT=seize run_cf ...
run_cf() {
  local tag=$1
  shift
  CF_OUT=$E2E_TMP/$tag.out
  CF_ERR=$E2E_TMP/$tag.err
  CF_LOG=
  # shellcheck disable=SC2086 # CF_WRAP is words
  timeout -k 5 "$CF_TIMEOUT" ${CF_WRAP:-} "$CRIU_FAST" "$@" >"$CF_OUT" 2>"$CF_ERR"
  CF_RC=$?
  return 0
}

# assert_cf_ok WHAT: the last run_cf exited 0.
assert_cf_ok() {
  [ "$CF_RC" = 124 ] && fail "$1: criu-fast timed out after ${CF_TIMEOUT}s"
  [ "$CF_RC" = 0 ] || fail "$1: criu-fast exited $CF_RC"
}

# assert_cf_error WHAT [strict]: the last run_cf failed cleanly: exit code 1..123
# (not a crash: >= 128 is a signal, 124 the timeout) and exactly one line
# starting with "Error: " on stderr. With "strict", stderr holds nothing else.
assert_cf_error() {
  local what=$1 strict=${2:-} n
  [ "$CF_RC" = 124 ] && fail "$what: criu-fast timed out after ${CF_TIMEOUT}s"
  [ "$CF_RC" -ge 128 ] && fail "$what: criu-fast crashed (exit code $CF_RC, signal $((CF_RC - 128)))"
  [ "$CF_RC" -ne 0 ] || fail "$what: criu-fast exited 0, an error was expected"
  [ "$CF_RC" -lt 124 ] || fail "$what: criu-fast exit code $CF_RC"
  n=$(grep -c '^Error: .' "$CF_ERR")
  [ "$n" = 1 ] || fail "$what: $n lines starting with 'Error: ' on stderr, expected 1"
  if [ "$strict" = strict ]; then
    n=$(grep -c . "$CF_ERR")
    [ "$n" = 1 ] || fail "$what: $n non-empty lines on stderr, expected only the Error line"
  fi
}

# cf_error_line: the Error line of the last run_cf.
cf_error_line() { grep -m 1 '^Error: ' "$CF_ERR"; }

# cf_show DIR_OR_FILE OUT_JSON: `criu-fast show`, which must succeed and print
# one valid JSON object.
cf_show() {
  local what=$1 out=$2
  run_cf "show.$(basename "$out")" show "$what"
  assert_cf_ok "show $what"
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert isinstance(o, dict)' "$CF_OUT" 2>/dev/null ||
    fail "show $what: the output is not one JSON object (see $CF_OUT)"
  cp "$CF_OUT" "$out"
}

# stat_value FILE NAME: the number after "NAME:" in --display-stats output.
stat_value() {
  python3 - "$1" "$2" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"^\s*" + re.escape(sys.argv[2]) + r":\s+([0-9]+(?:\.[0-9]+)?)", text, re.M)
if not m:
    sys.exit("no '%s:' line in %s" % (sys.argv[2], sys.argv[1]))
print(m.group(1))
EOF
}

# assert_no_inventory DIR WHAT
assert_no_inventory() {
  [ -e "$1/inventory.img" ] && fail "$2: $1/inventory.img exists after a failed dump"
  return 0
}

# ---- JSON checks in Python -------------------------------------------------------

# Helpers available to pycheck scripts.
_E2E_PY_PRELUDE='
import json, os, re, sys
def fail(msg):
    print("  check failed: " + str(msg))
    sys.exit(1)
def load(path):
    with open(path) as f:
        return json.load(f)
def u(v):
    """A proto3 JSON 64-bit integer (a string) or a plain number, as int."""
    return int(v) if v is not None else 0
def proc(show, pid):
    p = show.get("processes", {}).get(str(pid))
    if p is None:
        fail("process %s not in show output (has %s)" % (pid, list(show.get("processes", {}))))
    return p
FD_COMMON = {"fd", "path", "flags", "pos", "cloexec", "dev", "inode", "mode", "rdev", "size", "mnt_id", "owner", "locks", "socket_opts",
             "is_dup", "dup_of", "file_id", "tree_file_id", "lease"}
def fd_kind(f):
    """The kind of a descriptor of show: the key of its kind message, the one
    key that is not a common field ("fifo" for the pipe end of a FIFO)."""
    kinds = [k for k in f if k not in FD_COMMON]
    if len(kinds) != 1:
        fail("fd %s has %d kind messages: %r" % (f.get("fd"), len(kinds), sorted(f)))
    k = kinds[0]
    return "fifo" if k == "pipe" and f[k].get("fifo") else k
def file_objects(core, kind):
    """The shared file objects of one kind ("pipe", "unix_pair") saved in a core."""
    return [o[kind] for o in core.get("file_objects", []) if kind in o]
def page_ranges(pagemap, kind):
    """[(start, end)] of the pagemap ranges of a kind, in bytes."""
    return [(u(r["vaddr"]), u(r["vaddr"]) + 4096 * u(r["nr_pages"]))
            for r in pagemap.get("ranges", []) if r.get("kind", "DATA") == kind]
def overlap_pages(ranges, start, end):
    n = 0
    for a, b in ranges:
        lo, hi = max(a, start), min(b, end)
        if hi > lo:
            n += (hi - lo) // 4096
    return n
'

# pycheck WHAT ARGS... <<'EOF' ...python... EOF: runs the script with
# sys.argv[1:] = ARGS and the helpers above; a non-zero exit fails the test.
pycheck() {
  local what=$1
  shift
  { printf '%s\n' "$_E2E_PY_PRELUDE"; cat; } | python3 - "$@" || fail "$what"
}

# ---- restore ------------------------------------------------------------------

# pid_absent PID: no /proc/PID at all, not even a zombie.
pid_absent() { [ ! -e "/proc/$1" ]; }

# wait_pid_free PID [TIMEOUT_S]: waits until PID is absent (a zombie reaped);
# fails after the timeout.
wait_pid_free() {
  local pid=$1 timeout=${2:-10} i
  for ((i = 0; i < timeout * 20; i++)); do
    pid_absent "$pid" && return 0
    sleep 0.05
  done
  fail "pid $pid still taken after ${timeout}s (state $(proc_state "$pid"))"
}

# assert_pid_absent PID WHAT [TIMEOUT_S]: PID must be absent within the
# timeout (default 2 s): after a failed restore criu-fast reaps what it
# created, so not even a zombie may stay for long.
assert_pid_absent() {
  local pid=$1 what=$2 timeout=${3:-2} i
  for ((i = 0; i < timeout * 20; i++)); do
    pid_absent "$pid" && return 0
    sleep 0.05
  done
  fail "$what: process $pid exists ${timeout}s later (state '$(proc_state "$pid")', exe '$(readlink "/proc/$pid/exe" 2>/dev/null)')"
}

# child_pid W [NAME]: the pid a test program's child wrote in W/NAME
# (default ready.child); fails unless that process exists.
child_pid() {
  local pid
  pid=$(tr -dc '0-9' <"$1/${2:-ready.child}" 2>/dev/null)
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || fail "no child process in $1/${2:-ready.child} ('$pid')"
  CHILD_PID=$pid
}

# dump_r DIR PID...: `criu-fast dump -R` of the first PID into DIR (log in
# $E2E_TMP/dump-r.log, left in CF_LOG for fail), then every PID must run on
# untraced, and $E2E_TMP/show.json holds `criu-fast show DIR`.
dump_r() {
  local dir=$1 p
  shift
  run_cf dump-r dump -t "$1" -D "$dir" -R -v4 -o "$E2E_TMP/dump-r.log"
  CF_LOG=$E2E_TMP/dump-r.log
  assert_cf_ok "dump -R"
  for p in "$@"; do assert_running_untraced "$p" "process $p after dump -R"; done
  cf_show "$dir" "$E2E_TMP/show.json"
}

# tree_pids PID: PID and all its descendants, parents before children.
tree_pids() {
  local p
  echo "$1"
  for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do tree_pids "$p"; done
}

# dump_kill TAG PID DIR [ARGS...]: `criu-fast dump -t PID -D DIR ARGS` (by
# default it kills the target); requires exit 0 and an inventory, then waits
# until the target is gone (a zombie counts) unless -R was given.
dump_kill() {
  local tag=$1 pid=$2 dir=$3 a keep=0
  shift 3
  for a in "$@"; do [ "$a" = -R ] && keep=1; done
  run_cf "$tag" dump -t "$pid" -D "$dir" -v4 -o "$E2E_TMP/$tag.log" "$@"
  CF_LOG=$E2E_TMP/$tag.log
  assert_cf_ok "$tag: dump -t $pid"
  [ -s "$dir/inventory.img" ] || fail "$tag: no inventory.img after the dump"
  [ "$keep" = 1 ] || wait_gone "$pid" 10
  CF_LOG=
}

# restore_d TAG DIR PID [ARGS...]: `criu-fast restore -D DIR -d --pidfile F
# -v4 -o TAG.log ARGS` under the timeout. Requires exit 0, the pid file to
# name PID, and process PID to run untraced with the program's executable.
# The log stays in $E2E_TMP/TAG.log (shown by fail).
restore_d() {
  local tag=$1 dir=$2 pid=$3
  shift 3
  local pidfile=$E2E_TMP/$tag.pid
  rm -f "$pidfile"
  E2E_PIDS+=("$pid")
  run_cf "$tag" restore -D "$dir" -d --pidfile "$pidfile" -v4 -o "$E2E_TMP/$tag.log" "$@"
  CF_LOG=$E2E_TMP/$tag.log
  assert_cf_ok "$tag: restore -D $dir -d"
  [ -s "$pidfile" ] || fail "$tag: no pid file $pidfile after the restore"
  [ "$(tr -dc '0-9' <"$pidfile")" = "$pid" ] || fail "$tag: pid file says '$(cat "$pidfile")', want $pid"
  [ -d "/proc/$pid" ] || fail "$tag: restore exited 0 but there is no process $pid"
  assert_running_untraced "$pid" "$tag: after restore -d"
  case $(readlink "/proc/$pid/exe") in
    "$PROGS"/*) ;;
    *) fail "$tag: /proc/$pid/exe is '$(readlink "/proc/$pid/exe")', not a test program" ;;
  esac
  CF_LOG=
}

# maps_key PID OUT: /proc/PID/maps reduced to "start-end perms offset path".
maps_key() {
  awk '{ p = ""; if (NF >= 6) { p = $0; for (i = 0; i < 5; i++) sub(/^[^ ]+ +/, "", p) } print $1, $2, $3, p }' \
    "/proc/$1/maps" >"$2" 2>/dev/null && [ -s "$2" ]
}

# maps_merge IN OUT: a maps_key file with adjacent VMAs that only differ in
# where the kernel split them merged (same perms and path, the next one starts
# where the previous ends, file offsets contiguous). A restored VMA does not
# merge with memory the process maps next to it later (brk growing the heap),
# so such splits are not state to compare.
maps_merge() {
  python3 - "$1" "$2" <<'EOF'
import sys
out = []
for line in open(sys.argv[1]):
    rng, perm, off, path = (line.rstrip("\n").split(" ", 3) + [""])[:4]
    a, b = (int(x, 16) for x in rng.split("-"))
    off = int(off, 16)
    if out:
        pa, pb, pperm, poff, ppath = out[-1]
        if pb == a and pperm == perm and ppath == path and (not path.startswith("/") or off == poff + (pb - pa)):
            out[-1][1] = b
            continue
    out.append([a, b, perm, off, path])
with open(sys.argv[2], "w") as f:
    for a, b, perm, off, path in out:
        f.write("%x-%x %s %08x %s\n" % (a, b, perm, off, path))
EOF
}

# fd_list PID OUT: one line per descriptor: "fd target pos=N flags=OCTAL".
fd_list() {
  local pid=$1 out=$2 fd n
  {
    for fd in "/proc/$pid/fd"/*; do
      n=${fd##*/}
      printf '%s %s %s %s\n' "$n" "$(readlink "$fd")" \
        "$(sed -n 's/^pos:[[:space:]]*/pos=/p' "/proc/$pid/fdinfo/$n")" \
        "$(sed -n 's/^flags:[[:space:]]*/flags=/p' "/proc/$pid/fdinfo/$n")"
    done | sort -n
  } >"$out" 2>/dev/null
}

# assert_same_file A B WHAT: the two captures are equal, or fail with a diff.
assert_same_file() {
  if ! cmp -s "$1" "$2"; then
    echo "--- diff of $1 (before) and $2 (after):"
    diff "$1" "$2" | head -n 30
    fail "$3"
  fi
}

# dir_listing DIR: every path below DIR (relative), sorted; result files of
# the self-check (result, result.tmp) left out.
dir_listing() {
  (cd "$1" && find . -mindepth 1 ! -name result ! -name result.tmp | LC_ALL=C sort)
}

# ---- criu-fast killed mid-way (test_dump_killed, test_restore_killed) -----------

# kill_cf_after PID SIG DELAY_MS: sends SIG to criu-fast PID (started in the
# background) after DELAY_MS, waits (30 s at most) for it to end and sets
# CF_RC to its exit status.
kill_cf_after() {
  local cf=$1 sig=$2 delay_ms=$3 t
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -"$sig" "$cf" 2>/dev/null
  for ((t = 0; t < 600; t++)); do
    kill -0 "$cf" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$cf" 2>/dev/null && fail "criu-fast still runs 30 s after SIG$sig"
  wait "$cf" 2>/dev/null
  CF_RC=$?
}

# assert_cf_killed_cleanly WHAT SIG ERR_FILE: criu-fast, hit by SIG before it
# finished, died of it or (SIGTERM) rolled back: exit 1 with an
# "interrupted by SIGTERM" error in ERR_FILE.
assert_cf_killed_cleanly() {
  local what=$1 sig=$2 err=$3
  case $sig:$CF_RC in
    KILL:137 | TERM:143) ;;
    TERM:1)
      grep -q '^Error: .*interrupted by SIGTERM' "$err" ||
        fail "$what: exit 1 without an 'interrupted by SIGTERM' error: $(head -c 300 "$err")"
      ;;
    *) fail "$what: criu-fast exited $CF_RC: $(head -c 300 "$err")" ;;
  esac
}
