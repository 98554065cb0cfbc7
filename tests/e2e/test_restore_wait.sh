#!/bin/bash
# Restore without -d: criu-fast waits for the restored process and exits
# with its status (tests/progs/exit_later.c).
#
# exit_later is dumped (killed); `criu-fast restore` (no -d) runs in the
# background. Once its pid file names the pid, the process runs untraced as a
# child of criu-fast, which keeps running; the self-check passes. Then:
#   1. SIGUSR2 makes the program check itself and exit 7: criu-fast exits 7,
#      with nothing on stderr, and the pid is gone at once (reaped by
#      criu-fast, no zombie left for PID 1);
#   2. (a second restore of the same image) SIGTERM kills it: criu-fast
#      exits 128 + 15 = 143, as a shell reports a death by signal.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/exit_later
D=$E2E_TMP/img
start_prog exit_later "$W"
pid=$PROG_PID
dump_kill dump "$pid" "$D"

# restore_bg TAG: starts `criu-fast restore -D $D` without -d in the
# background (BG_PID: the timeout wrapper) and waits until the restored
# process runs.
restore_bg() {
  local tag=$1 i
  PIDFILE=$E2E_TMP/$tag.pid
  CF_OUT=$E2E_TMP/$tag.out
  CF_ERR=$E2E_TMP/$tag.err
  CF_LOG=$E2E_TMP/$tag.log
  rm -f "$PIDFILE"
  E2E_PIDS+=("$pid")
  timeout -k 5 "$CF_TIMEOUT" "$CRIU_FAST" restore -D "$D" --pidfile "$PIDFILE" -v4 -o "$CF_LOG" \
    >"$CF_OUT" 2>"$CF_ERR" &
  BG_PID=$!
  for ((i = 0; i < 600; i++)); do
    [ -s "$PIDFILE" ] && break
    kill -0 "$BG_PID" 2>/dev/null || { wait "$BG_PID"; fail "$tag: criu-fast restore exited $? before the process ran"; }
    sleep 0.05
  done
  [ -s "$PIDFILE" ] || fail "$tag: no pid file after 30 s"
  [ "$(tr -dc '0-9' <"$PIDFILE")" = "$pid" ] || fail "$tag: pid file says '$(cat "$PIDFILE")', want $pid"
  assert_running_untraced "$pid" "$tag: restored process"
  kill -0 "$BG_PID" 2>/dev/null || fail "$tag: criu-fast exited while the restored process runs"
  local ppid
  ppid=$(awk '{ sub(/^.*\) /, ""); print $2 }' "/proc/$pid/stat")
  [ "$(cat "/proc/$ppid/comm" 2>/dev/null)" = criu-fast ] ||
    fail "$tag: the parent of $pid is $ppid ($(cat "/proc/$ppid/comm" 2>/dev/null)), not criu-fast"
}

# wait_bg TAG TIMEOUT_S: waits for the background criu-fast; sets CF_RC.
wait_bg() {
  local tag=$1 timeout=$2 i
  for ((i = 0; i < timeout * 20; i++)); do
    kill -0 "$BG_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$BG_PID" 2>/dev/null && fail "$tag: criu-fast still running ${timeout}s after the process was told to end"
  wait "$BG_PID"
  CF_RC=$?
}

# 1. exit code 7
restore_bg restore-exit
check_pass "$W"
kill -USR2 "$pid" || fail "cannot send SIGUSR2 to $pid"
wait_bg restore-exit 10
[ "$CF_RC" = 7 ] || fail "criu-fast restore (no -d) exited $CF_RC, want 7 (the program's exit code)$([ -s "$W/result" ] && echo ", program says: $(cat "$W/result")")"
grep -q '^Error' "$CF_ERR" && fail "criu-fast printed an error: $(cat "$CF_ERR")"
assert_pid_absent "$pid" "after the program exited" 1
log "ok: exit code 7 passed on"

# 2. death by SIGTERM
restore_bg restore-term
check_pass "$W"
kill -TERM "$pid" || fail "cannot send SIGTERM to $pid"
wait_bg restore-term 10
[ "$CF_RC" = 143 ] || fail "criu-fast restore (no -d) exited $CF_RC after SIGTERM killed the process, want 143"
assert_pid_absent "$pid" "after the program was killed" 1
log "ok: death by SIGTERM -> 143"
log "PASS"
