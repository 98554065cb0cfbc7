#!/bin/bash
# Memfds with more than pages to restore (tests/progs/memfd_more.c): one
# that is exec'ed (execveat), one sealed against writes, one with a mode.
#
# 1. dump -R: the self-check passes.
# 2. dump (kill) + restore -d: execveat() of the memfd works (no ETXTBSY),
#    the seal and the data are back, the mode is 0642; the self-check passes.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog memfd_more "$W"
root=$PROG_PID

dump_r "$E2E_TMP/img-r" "$root"
CF_LOG=
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"
log "PASS"
