#!/bin/bash
# Deleted-but-open files (tests/progs/ghosts.c): a sparse one with its mode,
# owner and times; a 2 GiB one with one page of data, dumped with
# --ghost-limit 1M (the limit counts the data stored, not the size); one whose
# name a new file took; one whose directory was removed; an O_TMPFILE one.
#
#   - the dump passes and its ghost images hold only the data (no holes),
#   - after the restore the program's self-check passes (data, holes, size,
#     mode, owner, times, offsets; the new file at the old name untouched),
#   - nothing is left in W by the restore (the recreated files are unlinked
#     again, under whatever name they were made), and W/gone stays gone.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/work
start_prog ghosts "$W"
pid=$PROG_PID
check_pass "$W"
dir_listing "$W" >"$E2E_TMP/ls-before"

D=$E2E_TMP/img
dump_kill dump "$pid" "$D" --ghost-limit 1M
stored=$(cat "$D"/ghost-*.img | wc -c)
[ "$stored" -lt $((1 << 20)) ] || fail "the ghost images take $stored bytes: holes were stored"
restore_d restore "$D" "$pid"
check_pass "$W"
dir_listing "$W" >"$E2E_TMP/ls-after"
assert_same_file "$E2E_TMP/ls-before" "$E2E_TMP/ls-after" "files in $W changed by the restore"
log "PASS"
