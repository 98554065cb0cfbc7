#!/bin/bash
# The heap grows on after a restore as it did before (tests/progs/heapgrow.c):
# brk() merges new pages into the VMA that ends at the break only when that
# VMA's page offset matches its address, so restore premaps the heap at its
# own address rather than moving it there from a slot (restore/memory.h).
#
# dump (kill), restore -d, twice through a dump of the restored process:
# each self-check grows the heap by brk and finds one [heap] VMA, ending at
# the break, with the data of before intact.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog heapgrow "$W"
pid=$PROG_PID
check_pass "$W"
for round in 1 2; do
  D=$E2E_TMP/img$round
  dump_kill dump$round "$pid" "$D"
  restore_d restore$round "$D" "$pid"
  grep -c '\[heap\]' "/proc/$pid/maps" | grep -qx 1 || fail "round $round: not one [heap] VMA after restore"
  check_pass "$W"
done
log "PASS"
