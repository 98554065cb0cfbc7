#!/bin/bash
# Private anonymous VMAs that touch come back as the same VMAs
# (tests/progs/touching.c): restore premaps such memory at its own address
# where criu-fast does not use it, and keeps in a slot the second of two
# touching VMAs with the same protection, which would merge there.
#
# dump (kill), restore -d, twice through a dump of the restored process:
# each self-check finds the data and the exact VMA boundaries of before.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog touching "$W"
pid=$PROG_PID
check_pass "$W"
for round in 1 2; do
  D=$E2E_TMP/img$round
  dump_kill dump$round "$pid" "$D"
  restore_d restore$round "$D" "$pid"
  check_pass "$W"
done
log "PASS"
