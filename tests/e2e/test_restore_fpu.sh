#!/bin/bash
# Restore of the FPU and vector registers (tests/progs/fpu_regs.c): x87 stack
# and control word, MXCSR, xmm0-15, ymm0-15 upper halves, and where the CPU
# has AVX-512 zmm0-31 and k0-7 (W/features says which).
#
# fpu_regs loads known values once and spins comparing XSAVE images without
# reloading them, so at the dump the values exist only in the registers. After
# the dump (kill) and restore -d it must still find them: the spin loop must
# not have seen a change, and the values stored on SIGUSR1 must be the known
# ones. The check runs twice (the second time on freshly loaded registers),
# then the process is dumped and restored a second time and checked again.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/fpu
start_prog fpu_regs "$W"
pid=$PROG_PID
log "registers tested: $(cat "$W/features")"
assert_cpu_advancing "$pid" "before the dump"
check_pass "$W"  # the program's own checks hold without any dump
sleep 0.2        # spinning again on freshly loaded registers

for round in 1 2; do
  D=$E2E_TMP/img-$round
  dump_kill "dump-$round" "$pid" "$D"
  restore_d "restore-$round" "$D" "$pid"
  assert_cpu_advancing "$pid" "round $round: after the restore"
  sleep 0.3  # many spin rounds compare the restored registers
  check_pass "$W"
  sleep 0.2
  check_pass "$W"
  sleep 0.2
  log "round $round: ok"
done
log "PASS"
