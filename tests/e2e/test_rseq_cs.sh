#!/bin/bash
# A thread inside an rseq critical section at the dump (kinds/thread_props.cc,
# tests/progs/rseq_cs.c): it is saved at the section's abort handler, as the
# kernel would have sent it there, so that after the restore it runs the
# abort path and signals abort its section again (restored inside it, it
# would spin on with the section forgotten). Twice, the second time through a
# dump of the restored process; the dump log names the move.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

[ "$(uname -m)" = x86_64 ] || skip "the test's critical section is x86-64 code"
W=$E2E_TMP/w
start_prog rseq_cs "$W"
pid=$PROG_PID
check_pass "$W"
for round in 1 2; do
  D=$E2E_TMP/img$round
  dump_kill dump$round "$pid" "$D"
  grep -q "in an rseq critical section" "$E2E_TMP/dump$round.log" ||
    fail "round $round: the dump did not find the thread inside its critical section"
  restore_d restore$round "$D" "$pid"
  check_pass "$W"
done
log "PASS"
