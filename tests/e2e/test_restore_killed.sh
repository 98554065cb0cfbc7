#!/bin/bash
# criu-fast killed at random instants of a restore leaves no process of the
# tree behind.
#
# The tree of tests/progs/busytree.c (3 processes, 4 threads each) is dumped
# once; then restore -d runs again and again and is hit by SIGKILL or SIGTERM
# after a random delay within the time a whole restore takes. After each
# round, either the restore had finished (every process runs and passes its
# self-check; it is then killed for the next round) or no process of the
# tree is left (PTRACE_O_EXITKILL for SIGKILL, the rollback for SIGTERM,
# which also exits 1 with one "interrupted by SIGTERM" error).
# CF_KILL_ROUNDS sets the number of rounds (default 10).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

ROUNDS=${CF_KILL_ROUNDS:-10}
W=$E2E_TMP/w
start_prog busytree "$W" 3 16
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 3 ] || fail "expected 3 processes in the tree, found ${#all[@]}: ${all[*]}"
IMG=$E2E_TMP/img
run_cf dump dump -t "$root" -D "$IMG"
assert_cf_ok "dump of the tree"

# True when every process of the tree runs untraced, still half a second on
# (a restore killed after it let the tree go). A process that criu-fast had
# just created when it died (before tracing it) exits by itself at once: its
# go-ahead pipe ends; it does not count.
tree_runs() {
  local p
  sleep 0.5
  for p in "${all[@]}"; do
    [ -d "/proc/$p" ] && is_running_untraced "$p" && [ "$(proc_state "$p")" != Z ] || return 1
  done
}

# Waits until no process of the tree exists any more (zombies reaped).
all_free() {
  local p
  for p in "${all[@]}"; do wait_pid_free "$p" 20; done
}
all_free

# How long a whole restore takes: the delays are drawn within it.
t0=$(date +%s%N)
restore_d first "$IMG" "$root"
t1=$(date +%s%N)
# (restore_d's own checks make it look longer: draw within 3/4 of it)
span_ms=$(((t1 - t0) / 1000000 * 3 / 4))
[ "$span_ms" -ge 20 ] || span_ms=20
log "a whole restore takes about $span_ms ms: kills within it"
check_pass "$W"
for p in "${all[@]}"; do kill -KILL "$p" 2>/dev/null; done
all_free

# The worst instant, made certain: criu-fast killed right after it cloned
# the root, before its go-ahead (CF_FAULT=restore-die-before-go). The
# root, not traced yet, must see the go-ahead pipe end and exit (it held
# that pipe's write end itself once, and waited for ever).
rc=0
CF_FAULT=restore-die-before-go "$CRIU_FAST" restore -D "$IMG" -d -v0 >"$E2E_TMP/round.out" 2>"$E2E_TMP/round.err" || rc=$?
[ "$rc" = 137 ] || fail "killed before the go-ahead: exit $rc, expected 137 (SIGKILL)"
all_free
log "killed before the go-ahead: the root exited by itself"

n_killed=0 n_done=0
for ((i = 0; i < ROUNDS; i++)); do
  sig=KILL
  ((i % 2)) && sig=TERM
  delay_ms=$((RANDOM % span_ms))
  "$CRIU_FAST" restore -D "$IMG" -d -v0 >"$E2E_TMP/round.out" 2>"$E2E_TMP/round.err" &
  kill_cf_after $! "$sig" "$delay_ms"
  rc=$CF_RC
  what="round $i (SIG$sig after $delay_ms ms)"
  log "$what: exit $rc"
  if [ "$rc" = 0 ] || tree_runs; then
    # The restore had let the tree run before the signal.
    n_done=$((n_done + 1))
    for p in "${all[@]}"; do assert_running_untraced "$p" "$what: restored"; done
    check_pass "$W"
    for p in "${all[@]}"; do kill -KILL "$p" 2>/dev/null; done
  else
    n_killed=$((n_killed + 1))
    assert_cf_killed_cleanly "$what" "$sig" "$E2E_TMP/round.err"
  fi
  # Nothing of the tree may stay (a half-restored process would hold a pid).
  all_free
done
log "$ROUNDS rounds: $n_killed restores killed (nothing left behind), $n_done finished first"
