#!/bin/bash
# File locks come back after a restore (kinds/file_lock.h), dumped with
# --file-locks as in CRIU (tests/progs/locks.c: flock exclusive, flock
# shared through a description shared with a child, POSIX read and write
# record locks, OFD read and write locks).
#
#   1. dump without --file-locks is refused (one error that names the lock
#      and the option), and the tree runs on, untraced, its locks held;
#   2. dump --file-locks (kill): the image lists each lock on its fd;
#   3. restore -d: a checker process finds every lock held again, by the
#      right owner, on the same byte ranges (the self-check).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog locks "$W"
pid=$PROG_PID
check_pass "$W"

D=$E2E_TMP/img
run_cf refused dump -t "$pid" -D "$D"
assert_cf_error "dump without --file-locks" strict
cf_error_line | grep -q -- "--file-locks" || fail "the error does not name --file-locks: $(cf_error_line)"
assert_running_untraced "$pid" "after the refused dump"
check_pass "$W"
rm -rf "$D"

dump_kill dump "$pid" "$D" --file-locks
cf_show "$D" "$E2E_TMP/show.json"
pycheck "locks in the image" "$E2E_TMP/show.json" "$pid" <<'PY'
show, pid = load(sys.argv[1]), int(sys.argv[2])
locks = sorted((l.get("type", "FLOCK"), bool(l.get("write")), int(l.get("start", 0)), int(l.get("end", 0)))
               for f in proc(show, pid)["core"].get("fds", []) for l in f.get("locks", []))
want = sorted([("FLOCK", True, 0, -1), ("POSIX", False, 0, 9), ("POSIX", True, 100, 199),
               ("OFD", True, 10, 19), ("OFD", False, 50, -1), ("FLOCK", False, 0, -1)])
if locks != want:
    fail("locks in the image: %s, want %s" % (locks, want))
PY
restore_d restore "$D" "$pid"
check_pass "$W"
log "PASS"
