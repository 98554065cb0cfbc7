#!/bin/bash
# A process waiting in vfork() takes no ptrace stop until its child execs or
# exits (tests/progs/vfork_pending.c; CRIU's zdtm vfork00 expects the dump to
# fail). The dump must give up after its seize timeout (--timeout, 10 s by
# default, 2 s here) with one "Error:" line naming the thread, not wait for
# ever; the tree then runs on untraced, the vfork still pending, and passes
# its self-check.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog vfork_pending "$W"
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 3 ] || fail "expected 3 processes (root, vfork parent, vfork child), found ${#all[@]}"
E2E_PIDS+=("${all[@]}")

CF_TIMEOUT=40 run_cf dump dump -t "$root" -D "$E2E_TMP/img" --timeout 2 -v4 -o "$E2E_TMP/dump.log"
CF_LOG=$E2E_TMP/dump.log
[ "$CF_RC" = 1 ] || fail "dump of a pending vfork exited $CF_RC, want 1 (124: it waited for ever)"
assert_cf_error "dump of a pending vfork"
grep -q "did not stop within 2000 ms" "$CF_ERR" || fail "error does not say which thread did not stop: $(cat "$CF_ERR")"
CF_LOG=
for p in "${all[@]}"; do assert_running_untraced "$p" "after the failed dump"; done
[ ! -e "$E2E_TMP/img/inventory.img" ] || fail "a failed dump left an inventory"
check_pass "$W"
log "PASS: $(cf_error_line)"
