#!/bin/bash
# A chroot-ed process, namespace files and a dead /proc/PID as working
# directory (tests/progs/files_chroot.c): a child whose root is W/root and
# whose cwd is outside it, holding a file of its root; its parent holding
# /proc/self/ns/net and /proc/self/ns/uts, its cwd /proc/PID of a process
# that died.
#
#   - the dump passes; after the restore the parent's namespace files are
#     its own namespaces again, its cwd a dead /proc directory, and the
#     child's root, cwd and file are the ones it had (it opens /inside by
#     name in its root).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/work
start_prog files_chroot "$W"
pid=$PROG_PID
check_pass "$W"

D=$E2E_TMP/img
dump_kill dump "$pid" "$D"
restore_d restore "$D" "$pid"
check_pass "$W"
log "PASS"
