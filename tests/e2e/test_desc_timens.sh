#!/bin/bash
# A process whose children are to live in a time namespace of their own
# (tests/progs/desc_timens.c) is refused at dump (kinds/timens.h), with one
# error naming the process and time namespaces; it runs on untraced, and
# `check --feature timens` says the kernel has time namespaces.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

[ -e /proc/self/ns/time ] || skip "no time namespaces in this kernel"
run_cf feature check --feature timens
assert_cf_ok "check --feature timens"

W=$E2E_TMP/w
start_prog desc_timens "$W"
pid=$PROG_PID
check_pass "$W"

D=$E2E_TMP/img
run_cf refused dump -t "$pid" -D "$D"
assert_cf_error "dump of a process with a time namespace for its children" strict
cf_error_line | grep -q "process $pid .*time namespace" || fail "the error does not name the process and time namespaces: $(cf_error_line)"
assert_running_untraced "$pid" "after the refused dump"
check_pass "$W"
log "PASS"
