#!/bin/bash
# Files without data whose names were removed, and O_PATH descriptors
# (tests/progs/files_nodes.c): a deleted FIFO with queued bytes, a deleted
# device node, a removed directory inside a removed directory, a removed
# working directory with an fd on it, an O_PATH file, a symlink and a
# deleted symlink held with O_PATH | O_NOFOLLOW.
#
#   - the dump passes and the restored program's self-check passes (types,
#     modes, the FIFO's bytes, the device number, cwd and its fd one
#     directory, the symlinks' targets, O_PATH kept),
#   - nothing is left in W by the restore (every name made again is
#     removed).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/work
start_prog files_nodes "$W"
pid=$PROG_PID
check_pass "$W"
dir_listing "$W" >"$E2E_TMP/ls-before"

D=$E2E_TMP/img
dump_kill dump "$pid" "$D"
restore_d restore "$D" "$pid"
check_pass "$W"
dir_listing "$W" >"$E2E_TMP/ls-after"
assert_same_file "$E2E_TMP/ls-before" "$E2E_TMP/ls-after" "files in $W changed by the restore"
log "PASS"
