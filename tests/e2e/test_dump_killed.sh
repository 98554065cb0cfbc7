#!/bin/bash
# criu-fast killed at random instants of a dump must never harm the target.
#
# A tree of 3 processes with 4 threads each (tests/progs/busytree.c: one
# thread keeps a marker in xmm8, one sleeps in nanosleep, one blocks in
# read), the root with 24 more that sleep (its threads' properties are then
# read by the parasite, memdrain/thread_calls.h; the children's by remote
# calls), is dumped again and again; each dump is hit by SIGKILL or SIGTERM
# after a random delay within the time a whole dump takes, with both drains
# (read, vmsplice). After every round each process must run untraced and
# pass its self-check (memory, registers, TLS, workers advancing), hold
# the descriptors it had (the parasite's pipes and its pidfd of criu-fast
# are closed whenever criu-fast dies), and:
#  - SIGTERM: criu-fast exits 1 with one "Error: ... interrupted by SIGTERM"
#    line (or dies of it before it has touched the tree);
#  - the images directory of a killed dump never holds an inventory.img
#    (restore would take it for complete), unless the dump had finished;
#  - a dump without -R that had finished killed the tree: it is restored
#    from that image and the rounds go on with the restored tree.
# CF_KILL_ROUNDS sets the number of rounds (default 20; README quotes 100).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

ROUNDS=${CF_KILL_ROUNDS:-20}
W=$E2E_TMP/w
start_prog busytree "$W" 3 16 24
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 3 ] || fail "expected 3 processes in the tree, found ${#all[@]}: ${all[*]}"
check_pass "$W"

# How long a whole dump takes: the delays are drawn within it.
t0=$(date +%s%N)
run_cf full dump -t "$root" -D "$E2E_TMP/full" -R
assert_cf_ok "dump -R of the tree"
t1=$(date +%s%N)
span_ms=$(((t1 - t0) / 1000000))
[ "$span_ms" -ge 20 ] || span_ms=20
log "a whole dump takes $span_ms ms: kills within it"
rm -rf "$E2E_TMP/full"
check_pass "$W"

# The last step of a dump without -R, killing the tree, made all or nothing
# (ptrace/kill_guard.h): criu-fast killed with 2 of the 3 processes killed
# (CF_FAULT=dump-die-mid-kill) leaves no process of the tree running beside
# the complete image (without the guard, one ran on). Restored from it.
rc=0
CF_FAULT=dump-die-mid-kill "$CRIU_FAST" dump -t "$root" -D "$E2E_TMP/half" -v0 >"$E2E_TMP/half.out" 2>"$E2E_TMP/half.err" || rc=$?
[ "$rc" = 137 ] || fail "killed half-way through the kills: exit $rc, expected 137 (SIGKILL)"
[ -e "$E2E_TMP/half/inventory.img" ] || fail "killed half-way through the kills: no inventory.img"
for p in "${all[@]}"; do wait_gone "$p" 10; done
for p in "${all[@]}"; do wait_pid_free "$p" 20; done
restore_d half "$E2E_TMP/half" "$root"
check_pass "$W"
rm -rf "$E2E_TMP/half"
log "killed half-way through the kills: the whole tree was gone; restored"

# The last step of a dump with --leave-stopped, a SIGSTOP queued to each
# process, made all or nothing by the same guard (sending SIGSTOP): criu-fast
# killed with 2 of the 3 processes sent theirs (CF_FAULT=dump-die-mid-stop)
# leaves the whole tree stopped untraced beside its complete image (without
# the guard, one ran on). SIGCONT lets them all go on.
rc=0
CF_FAULT=dump-die-mid-stop "$CRIU_FAST" dump -t "$root" -D "$E2E_TMP/half-s" --leave-stopped -v0 >"$E2E_TMP/half-s.out" 2>"$E2E_TMP/half-s.err" || rc=$?
[ "$rc" = 137 ] || fail "killed half-way through the stops: exit $rc, expected 137 (SIGKILL)"
[ -e "$E2E_TMP/half-s/inventory.img" ] || fail "killed half-way through the stops: no inventory.img"
for p in "${all[@]}"; do assert_all_stopped "$p" "killed half-way through the stops"; done
for p in "${all[@]}"; do kill -CONT "$p"; done
for p in "${all[@]}"; do assert_running_untraced "$p" "after SIGCONT"; done
check_pass "$W"
rm -rf "$E2E_TMP/half-s"
log "killed half-way through the stops: the whole tree was stopped; runs on after SIGCONT"

for p in "${all[@]}"; do fd_list "$p" "$E2E_TMP/fds.$p"; done
n_killed=0 n_done=0 n_restored=0
for ((i = 0; i < ROUNDS; i++)); do
  sig=KILL
  ((i % 2)) && sig=TERM
  drain=read
  (((i / 2) % 2)) && drain=vmsplice
  # Every fourth round a dump without -R (read drain only: the vmsplice drain
  # kills the tree as soon as its pages are pinned, by design).
  leave=(-R)
  [ "$drain" = read ] && [ $((i % 8)) = 1 ] && leave=()
  delay_ms=$((RANDOM % span_ms))
  dir=$E2E_TMP/img.$i
  "$CRIU_FAST" dump -t "$root" -D "$dir" --drain "$drain" "${leave[@]}" -v0 >"$E2E_TMP/round.out" 2>"$E2E_TMP/round.err" &
  kill_cf_after $! "$sig" "$delay_ms"
  rc=$CF_RC
  what="round $i (SIG$sig after $delay_ms ms, --drain $drain ${leave[*]})"
  if [ -e "$dir/inventory.img" ]; then
    # The dump had committed its image before the signal (a SIGKILL may
    # still land in its last steps): the image must be whole.
    case $rc in
      0) ;;
      137) cf_show "$dir" "$E2E_TMP/show.$i.json" ;;
      *) fail "$what: an inventory.img was left by a dump that exited $rc" ;;
    esac
    n_done=$((n_done + 1))
    if [ ${#leave[@]} = 0 ]; then
      for p in "${all[@]}"; do wait_gone "$p" 10; done
      for p in "${all[@]}"; do wait_pid_free "$p" 20; done
      restore_d "restore.$i" "$dir" "$root"
      for p in "${all[@]}"; do fd_list "$p" "$E2E_TMP/fds.$p"; done
      n_restored=$((n_restored + 1))
    fi
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
  rm -rf "$dir"
done
log "$ROUNDS rounds: $n_killed dumps killed, $n_done finished first ($n_restored restored); every tree ran on"
