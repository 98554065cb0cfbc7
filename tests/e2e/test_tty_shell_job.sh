#!/bin/bash
# A shell job (tests/progs/tty_shell.c) on a terminal whose master is
# outside the tree: script(1) runs it, as a foreground job in a group of its
# own, with changed termios and window size.
#
# 1. dump without --shell-job is refused, naming the terminal; the job runs
#    on unchanged.
# 2. dump --shell-job, kill; restore --shell-job -d from another terminal
#    (a second script(1)): the job comes back on that terminal (criu-fast's
#    stdin), as its controlling terminal, in criu-fast's session, in a group
#    of its own in the foreground, with its termios and window size.
# (The new terminal may get the old one's number: the old one is gone with
# the first script(1); what counts is that it is the restoring one's.)
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init
command -v script >/dev/null || skip "no script(1) (util-linux)"
[ -c /dev/ptmx ] || skip "no /dev/ptmx"

W=$E2E_TMP/w
mkdir -p "$W"
(setsid -f script -qfec "$PROGS/tty_shell $W; true" /dev/null </dev/null >/dev/null 2>&1) || fail "cannot start script"
wait_ready "$W"
pid=$(tr -dc '0-9' <"$W/ready")
E2E_PIDS+=("$pid")
check_pass "$W"

# --- 1. without --shell-job ------------------------------------------------------
run_cf no-shell-job dump -t "$pid" -D "$E2E_TMP/img-no"
[ "$CF_RC" = 1 ] || fail "dump without --shell-job exited $CF_RC, want 1"
assert_cf_error "no --shell-job"
grep -q -- "--shell-job" <<<"$(cf_error_line)" || fail "the error does not mention --shell-job: $(cf_error_line)"
assert_running_untraced "$pid" "after the refused dump"
check_pass "$W"

# --- 2. dump --shell-job, restore on another terminal ------------------------------
dump_kill dump "$pid" "$E2E_TMP/img" --shell-job
wait_pid_free "$pid" 10
pidfile=$E2E_TMP/restore.pid
(setsid -f script -qfec "$CRIU_FAST restore -D $E2E_TMP/img -d --shell-job --pidfile $pidfile -v4 -o $E2E_TMP/restore.log; exec sleep 60.$$" /dev/null \
  </dev/null >/dev/null 2>&1) || fail "cannot start the restoring script"
for ((i = 0; i < 600; i++)); do
  [ -s "$pidfile" ] && break
  sleep 0.05
done
CF_LOG=$E2E_TMP/restore.log
[ -s "$pidfile" ] || fail "no pid file after the restore"
[ "$(tr -dc '0-9' <"$pidfile")" = "$pid" ] || fail "pid file says $(cat "$pidfile"), want $pid"
holder=$(pgrep -f "^sleep 60.$$" | head -n 1)
[ -n "$holder" ] && E2E_PIDS+=("$holder")
assert_running_untraced "$pid" "after restore"
check_pass "$W"
after=$(cat "$W/tty")
[ -n "$holder" ] && [ "$(readlink "/proc/$holder/fd/0")" = "$after" ] ||
  fail "the job's terminal $after is not the restoring terminal ($(readlink "/proc/$holder/fd/0" 2>/dev/null))"
CF_LOG=
log "PASS"
