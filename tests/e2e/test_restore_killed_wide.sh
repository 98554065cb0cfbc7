#!/bin/bash
# criu-fast killed while a wide tree is being made leaves no process behind.
#
# The processes of a restored tree fork their children untraced; each child
# dies with its parent (PR_SET_PDEATHSIG) until criu-fast seizes it
# (README, "When criu-fast itself is killed"). With 80 children of one root
# (tests/progs/scale.c, procs), a kill within the restore lands, most of the
# time, while some children are not seized yet. SIGKILL and SIGTERM alternate
# after random delays; after each round either the restore had finished (the
# tree passes its self-check and is killed for the next round) or every pid
# of the tree is free again (no process, not even a zombie, within 20 s).
# The detaches at the end are all or nothing (ptrace/kill_guard.h): a
# kill half-way through them, rare at random, is also made once on purpose.
# CF_KILL_ROUNDS sets the number of rounds (default 6).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

ROUNDS=${CF_KILL_ROUNDS:-6}
N=81
W=$E2E_TMP/w
start_prog scale "$W" procs "$N"
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = "$N" ] || fail "expected $N processes in the tree, found ${#all[@]}"
IMG=$E2E_TMP/img
run_cf dump dump -t "$root" -D "$IMG"
assert_cf_ok "dump of the tree"
# True when every process of the tree runs untraced, half a second on (a
# restore killed after it let the tree go).
tree_runs() {
  local p
  sleep 0.5
  for p in "${all[@]}"; do
    [ -d "/proc/$p" ] && is_running_untraced "$p" && [ "$(proc_state "$p")" != Z ] || return 1
  done
}
all_free() {
  local p
  for p in "${all[@]}"; do wait_pid_free "$p" 20; done
}
all_free

t0=$(date +%s%N)
restore_d first "$IMG" "$root"
t1=$(date +%s%N)
span_ms=$(((t1 - t0) / 1000000 * 3 / 4))
[ "$span_ms" -ge 20 ] || span_ms=20
log "a whole restore takes about $span_ms ms: kills within it"
check_pass "$W"
for p in "${all[@]}"; do kill -KILL "$p" 2>/dev/null; done
all_free

# The last step made certain: criu-fast killed with half the tree detached
# (CF_FAULT=restore-die-mid-detach). The detached half runs untraced; the
# guard of ptrace/kill_guard.h must kill it with the rest.
rc=0
CF_FAULT=restore-die-mid-detach "$CRIU_FAST" restore -D "$IMG" -d -v0 >"$E2E_TMP/round.out" 2>"$E2E_TMP/round.err" || rc=$?
[ "$rc" = 137 ] || fail "killed half-way through the detaches: exit $rc, expected 137 (SIGKILL)"
all_free
log "killed half-way through the detaches: no process left"

n_killed=0 n_done=0
for ((i = 0; i < ROUNDS; i++)); do
  sig=KILL
  ((i % 2)) && sig=TERM
  delay_ms=$((RANDOM % span_ms))
  "$CRIU_FAST" restore -D "$IMG" -d -v0 >"$E2E_TMP/round.out" 2>"$E2E_TMP/round.err" &
  kill_cf_after $! "$sig" "$delay_ms"
  what="round $i (SIG$sig after $delay_ms ms)"
  log "$what: exit $CF_RC"
  if [ "$CF_RC" = 0 ] || tree_runs; then
    n_done=$((n_done + 1))
    for p in "${all[@]}"; do assert_running_untraced "$p" "$what: restored"; done
    check_pass "$W"
    for p in "${all[@]}"; do kill -KILL "$p" 2>/dev/null; done
  else
    n_killed=$((n_killed + 1))
    assert_cf_killed_cleanly "$what" "$sig" "$E2E_TMP/round.err"
  fi
  all_free
done
log "$ROUNDS rounds: $n_killed restores killed (nothing left behind), $n_done finished first"
