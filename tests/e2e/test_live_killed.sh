#!/bin/bash
# criu-fast killed (SIGKILL) in the middle of a live save (dump -R --live):
# the target's threads that were writing protected pages, blocked on a
# fault criu-fast would have handled, must run on: the last descriptor of
# each userfaultfd was criu-fast's, and closing it makes the kernel wake
# every waiter and drop the registration. The program (tests/progs/
# live_writer.c, 256 MiB) must run untraced, its writers advancing and its
# memory never torn; no inventory may be left behind.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog live_writer "$W" 256 2
pid=$PROG_PID
check_pass "$W"

killed=0
for ((round = 0; round < 5 && killed == 0; round++)); do
  dir=$E2E_TMP/img.$round
  logf=$E2E_TMP/live.$round.log
  "$CRIU_FAST" dump -t "$pid" -D "$dir" -R --live --jobs 1 -v4 -o "$logf" >/dev/null 2>"$E2E_TMP/err.$round" &
  cf=$!
  for ((i = 0; i < 3000; i++)); do
    grep -q 'runs on after' "$logf" 2>/dev/null && break
    kill -0 "$cf" 2>/dev/null || break
    sleep 0.005
  done
  kill -KILL "$cf" 2>/dev/null
  wait "$cf"
  rc=$?
  if [ "$rc" = 137 ] && [ ! -e "$dir/inventory.img" ]; then
    grep -q 'runs on after' "$logf" && killed=1
  fi
  log "round $round: criu-fast exit $rc (killed during the save: $killed)"
  assert_running_untraced "$pid" "round $round"
  check_pass "$W"
done
[ "$killed" = 1 ] || fail "criu-fast was never killed during a live save (it always finished first)"
log "criu-fast killed during a live save; the program ran on"
