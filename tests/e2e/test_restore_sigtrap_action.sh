#!/bin/bash
# A handler for SIGTRAP survives a restore (tests/progs/sigtrap_action.c).
# The restorer's final int3 stop, taken with every signal blocked, makes the
# kernel reset the SIGTRAP action to the default; restore sets it again.
# Without that the restored program's raise(SIGTRAP) kills it.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog sigtrap_action "$W"
pid=$PROG_PID
dump_kill dump "$pid" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$pid"
check_pass "$W"
dump_kill dump2 "$pid" "$E2E_TMP/img2"
restore_d restore2 "$E2E_TMP/img2" "$pid"
check_pass "$W"
log "PASS"
