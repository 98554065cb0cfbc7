#!/bin/bash
# A child of the restored tree that dies between its fork and asking
# criu-fast to trace it (killed from outside: CF_FAULT=restore-child-untraced
# makes each child SIGKILL itself there) is a zombie criu-fast never hears
# of. The restore must notice it (restore/restore.cc, WaitForRestorers),
# fail with one "Error:" line instead of waiting for ever, and leave no
# process of the tree behind; a restore without the fault then works.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

N=4
W=$E2E_TMP/w
start_prog scale "$W" procs "$N"
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = "$N" ] || fail "expected $N processes in the tree, found ${#all[@]}"
IMG=$E2E_TMP/img
run_cf dump dump -t "$root" -D "$IMG"
assert_cf_ok "dump of the tree"
for p in "${all[@]}"; do wait_pid_free "$p" 20; done

E2E_PIDS+=("${all[@]}")
CF_FAULT=restore-child-untraced CF_TIMEOUT=60 run_cf lost restore -D "$IMG" -d -v4 -o "$E2E_TMP/lost.log"
CF_LOG=$E2E_TMP/lost.log
[ "$CF_RC" = 1 ] || fail "restore with a lost child exited $CF_RC, want 1 (124: it waited for ever)"
assert_cf_error "restore with a lost child"
grep -q "died before criu-fast could trace it" "$CF_ERR" || fail "error does not name the lost child: $(cat "$CF_ERR")"
for p in "${all[@]}"; do assert_pid_absent "$p" "after the failed restore" 5; done
CF_LOG=

restore_d good "$IMG" "$root"
check_pass "$W"
log "PASS: $(cf_error_line)"
