#!/bin/bash
# A restore started the moment the dump returns. The dump kills its tree and
# returns without waiting for the kernel to tear the processes down (as
# CRIU's does), which for 60,000 mappings takes ~90 ms: the restore finds
# the process's pid still held by a process that is exiting, and waits for
# it as for a zombie instead of refusing it as "in use by a running
# process" (restore/clone.cc, CloneWithPid).
#
# tests/progs/scale.c "maps" 60,000: dump (kill), then restore -d at once,
# three times; each restored process passes its self-check.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog scale "$W" maps 60000
pid=$PROG_PID
for round in 1 2 3; do
  D=$E2E_TMP/img-$round
  run_cf "dump-$round" dump -t "$pid" -D "$D" -v4 -o "$E2E_TMP/dump-$round.log"
  assert_cf_ok "round $round: dump -t $pid"
  restore_d "restore-$round" "$D" "$pid"
  check_pass "$W" 60
  rm -rf "$D"
done
log "PASS"
