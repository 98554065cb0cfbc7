#!/bin/bash
# criu-fast killed at random instants of a pre-dump must never harm the
# target: a pre-dump seizes the tree, makes a userfaultfd in each process by
# a remote system call, arms write tracking and releases the tree, then
# reads its pages while it runs. A tree of 3 processes with 4 threads each
# (tests/progs/busytree.c) is pre-dumped again and again, each pre-dump hit
# by SIGKILL or SIGTERM after a random delay within the time a whole
# pre-dump takes; every other one is an increment of the last complete one.
# After every round each process runs untraced, holds no descriptor it did
# not have, and passes its self-check; a killed pre-dump never leaves an
# inventory.img. Finally a dump made against the last complete pre-dump
# restores and the tree checks itself.
# CF_KILL_ROUNDS sets the number of rounds (default 6).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

ROUNDS=${CF_KILL_ROUNDS:-6}
W=$E2E_TMP/w
start_prog busytree "$W" 3 16
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 3 ] || fail "expected 3 processes in the tree, found ${#all[@]}: ${all[*]}"
check_pass "$W"
for p in "${all[@]}"; do fd_list "$p" "$E2E_TMP/fds.$p"; done

t0=$(date +%s%N)
run_cf first pre-dump -t "$root" -D "$E2E_TMP/good"
assert_cf_ok "pre-dump of the tree"
t1=$(date +%s%N)
span_ms=$(((t1 - t0) / 1000000))
[ "$span_ms" -ge 20 ] || span_ms=20
last=$E2E_TMP/good
log "a whole pre-dump takes $span_ms ms: kills within it"

n_killed=0 n_done=0
for ((i = 0; i < ROUNDS; i++)); do
  sig=KILL
  ((i % 2)) && sig=TERM
  parent=()
  (((i / 2) % 2)) && parent=(--prev-images-dir "$last")
  delay_ms=$((RANDOM % span_ms))
  dir=$E2E_TMP/img.$i
  "$CRIU_FAST" pre-dump -t "$root" -D "$dir" --track-mem "${parent[@]}" -v0 >"$E2E_TMP/round.out" 2>"$E2E_TMP/round.err" &
  kill_cf_after $! "$sig" "$delay_ms"
  rc=$CF_RC
  what="round $i (SIG$sig after $delay_ms ms${parent:+, increment})"
  if [ -e "$dir/inventory.img" ]; then
    case $rc in
      0 | 137) ;;
      *) fail "$what: an inventory.img was left by a pre-dump that exited $rc" ;;
    esac
    n_done=$((n_done + 1))
    last=$dir
  else
    n_killed=$((n_killed + 1))
    assert_cf_killed_cleanly "$what" "$sig" "$E2E_TMP/round.err"
  fi
  log "$what: exit $rc"
  for p in "${all[@]}"; do
    assert_running_untraced "$p" "$what"
    fd_list "$p" "$E2E_TMP/fds.now"
    assert_same_file "$E2E_TMP/fds.$p" "$E2E_TMP/fds.now" "$what: process $p has other descriptors"
  done
  check_pass "$W"
done

dump_kill final "$root" "$E2E_TMP/final" --prev-images-dir "$last"
for p in "${all[@]}"; do wait_pid_free "$p" 20; done
restore_d restore "$E2E_TMP/final" "$root"
check_pass "$W"
log "$ROUNDS rounds: $n_killed pre-dumps killed, $n_done finished first; every tree ran on and the last chain restored"
