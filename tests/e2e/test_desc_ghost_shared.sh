#!/bin/bash
# A deleted file two processes hold through descriptions of their own
# (restore/ghosts.h; tests/progs/desc_ghost_shared.c, zdtm's write_read10):
# after the restore both hold one file again (what one writes, the other
# reads), still without a name, and nothing is left at its old path.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog desc_ghost_shared "$W"
root=$PROG_PID
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
[ -e "$W/f" ] && fail "the deleted file has its name again after the restore"
ls -a "$W" | grep -q "criu-fast\|ghost" && fail "restore left files in $W: $(ls -a "$W")"
check_pass "$W"
log "PASS"
