#!/bin/bash
# Deleted files mapped into memory (tests/progs/files_mmap.c): private and
# shared mappings of a deleted file that an fd also holds, and a private
# mapping of a file whose two names were both removed.
#
#   - the dump passes and saves one ghost image per file,
#   - the restored program's self-check passes: the contents through every
#     mapping, and writes through the fd and the shared mapping reach each
#     other (the mappings and the fd share one recreated file),
#   - nothing is left in W by the restore.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/work
start_prog files_mmap "$W"
pid=$PROG_PID
check_pass "$W"
dir_listing "$W" >"$E2E_TMP/ls-before"

D=$E2E_TMP/img
dump_kill dump "$pid" "$D"
n=$(find "$D" -name 'ghost-*.img' | wc -l)
[ "$n" -eq 2 ] || fail "$n ghost images, want 2 (one per deleted file)"
restore_d restore "$D" "$pid"
check_pass "$W"
dir_listing "$W" >"$E2E_TMP/ls-after"
assert_same_file "$E2E_TMP/ls-before" "$E2E_TMP/ls-after" "files in $W changed by the restore"
log "PASS"
