#!/bin/bash
# A file opened by a name since removed, with another hard link left
# (tests/progs/files_link_remap.c):
#
#   - without --link-remap the dump refuses it with one error naming the
#     option, and leaves the program running;
#   - with --link-remap the dump passes; after the restore the program's fd
#     is the very file W/other names (same inode), at its offset;
#   - a dump with --link-remap that fails (fault injected after the
#     descriptors were read), or runs with -R, removes the link it made;
#   - nothing is left in W (the link the dump made is removed by restore).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/work
start_prog files_link_remap "$W"
pid=$PROG_PID
check_pass "$W"
dir_listing "$W" >"$E2E_TMP/ls-before"

D=$E2E_TMP/img
run_cf refused dump -t "$pid" -D "$E2E_TMP/refused"
assert_cf_error "dump without --link-remap"
cf_error_line | grep -q -- '--link-remap' || fail "the refusal does not name --link-remap: $(cf_error_line)"
assert_running_untraced "$pid" "after the refused dump"
check_pass "$W"

CF_FAULT=inventory run_cf failed dump -t "$pid" -D "$E2E_TMP/failed" --link-remap
assert_cf_error "dump with --link-remap and a fault"
assert_running_untraced "$pid" "after the failed dump"
dir_listing "$W" >"$E2E_TMP/ls-failed"
assert_same_file "$E2E_TMP/ls-before" "$E2E_TMP/ls-failed" "files in $W changed by a failed dump"
run_cf leave dump -t "$pid" -D "$E2E_TMP/leave" --link-remap -R
dir_listing "$W" >"$E2E_TMP/ls-leave"
assert_same_file "$E2E_TMP/ls-before" "$E2E_TMP/ls-leave" "files in $W changed by a -R dump"
check_pass "$W"

dump_kill dump "$pid" "$D" --link-remap
restore_d restore "$D" "$pid"
check_pass "$W"
dir_listing "$W" >"$E2E_TMP/ls-after"
assert_same_file "$E2E_TMP/ls-before" "$E2E_TMP/ls-after" "files in $W changed by the restore"
log "PASS"
