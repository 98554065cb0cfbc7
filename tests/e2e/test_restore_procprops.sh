#!/bin/bash
# Per-process and per-thread properties come back (tests/progs/procprops.c):
# resource limits (read from /proc/PID/limits), oom_score_adj, THP disabled,
# child subreaper, membarrier registrations, audit loginuid (and oom_score_adj
# and loginuid in two children: one set back to the values the program
# started with, one keeping its parent's); per thread the scheduling policy,
# RT priority and nice value, the robust futex list and the parent-death
# signal. `show` lists them.
#
# dump (kill), restore -d, then the program checks everything itself; twice,
# the second time through a dump of the restored process.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog procprops "$W"
pid=$PROG_PID
check_pass "$W"
for round in 1 2; do
  D=$E2E_TMP/img$round
  dump_kill dump$round "$pid" "$D"
  cf_show "$D" "$E2E_TMP/show$round.json"
  for key in oom_score_adj thp_disabled child_subreaper sched_policy nice robust_list pdeathsig; do
    grep -q "\"$key\"" "$E2E_TMP/show$round.json" || fail "round $round: show does not list $key"
  done
  restore_d restore$round "$D" "$pid"
  check_pass "$W"
done
log "PASS"
