#!/bin/bash
# PID namespaces are not saved (kinds/pidns.h, tests/progs/pidns.c): a
# process that unshared CLONE_NEWPID (its children go to a namespace of their
# own) and its child, pid 1 of that namespace, are each refused at dump with
# one error naming the process and PID namespaces; both run on untraced and
# the child is still pid 1 there. `check --feature ns_pid` (the kernel shows
# NSpid) succeeds.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

grep -q '^NSpid:' /proc/self/status || skip "the kernel shows no NSpid"
run_cf feature check --feature ns_pid
assert_cf_ok "check --feature ns_pid"

W=$E2E_TMP/w
start_prog pidns "$W"
pid=$PROG_PID
child=$(tr -dc 0-9 <"$W/child")
[ -n "$child" ] || fail "no child pid in $W/child"
check_pass "$W"

run_cf parent dump -t "$pid" -D "$E2E_TMP/img1"
assert_cf_error "dump of a process that unshared CLONE_NEWPID" strict
cf_error_line | grep -q "process $pid .*PID namespace" || fail "unexpected error: $(cf_error_line)"
assert_running_untraced "$pid" "after the refused dump of the parent"

run_cf child dump -t "$child" -D "$E2E_TMP/img2"
assert_cf_error "dump of pid 1 of a PID namespace" strict
cf_error_line | grep -q "process $child lives in a PID namespace" || fail "unexpected error: $(cf_error_line)"
assert_running_untraced "$child" "after the refused dump of the child"
check_pass "$W"
log "PASS"
