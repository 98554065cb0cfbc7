#!/bin/bash
# Leases (kinds/lease.h; tests/progs/desc_lease.c): read and write leases,
# and leases in the middle of a break (to none, to read), one of them held
# by a child while the parent owns its description.
#
# 1. dump without --file-locks is refused, naming the option;
# 2. dump --file-locks: the image has each lease, with its break;
# 3. restore: the program finds every lease at its type (F_GETLEASE), the
#    breaks still pending, and no break signal reached it.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog desc_lease "$W"
pid=$PROG_PID
check_pass "$W"

D=$E2E_TMP/img
run_cf refused dump -t "$pid" -D "$D"
assert_cf_error "dump without --file-locks" strict
cf_error_line | grep -q -- "--file-locks" || fail "the error does not name --file-locks: $(cf_error_line)"
assert_running_untraced "$pid" "after the refused dump"
rm -rf "$D"

dump_kill dump "$pid" "$D" --file-locks
cf_show "$D" "$E2E_TMP/show.json"
pycheck "leases in the image" "$E2E_TMP/show.json" "$pid" <<'PY'
show, pid = load(sys.argv[1]), int(sys.argv[2])
got = {int(f["fd"]): (f["lease"].get("type", "READ"), bool(f["lease"].get("breaking")))
       for f in proc(show, pid)["core"].get("fds", []) if "lease" in f}
want = {40: ("READ", False), 41: ("WRITE", False), 42: ("WRITE", False), 43: ("UNLOCK", True), 44: ("READ", True)}
if got != want:
    fail("leases %s, want %s" % (got, want))
child = [int(k) for k in show["processes"] if int(k) != pid]
cfds = {int(f["fd"]): f for f in proc(show, child[0])["core"].get("fds", [])} if len(child) == 1 else {}
cb = cfds.get(45, {})
if cb.get("lease", {}).get("type") != "UNLOCK" or int(cb.get("owner", {}).get("pid", 0)) != pid:
    fail("the child's fd 45: %s, want a lease broken to none owned by %d" % (cb, pid))
PY
restore_d restore "$D" "$pid"
check_pass "$W"
log "PASS"
