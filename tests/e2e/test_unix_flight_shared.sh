#!/bin/bash
# Pipes in flight in unix socket queues that the tree holds too
# (tests/progs/unix_flight_shared.c; zdtm scm00, scm01, scm09): the read end
# in flight and the write end held, the very descriptor held too, the
# sender's end closed, and the socket in a child while the parent holds the
# pipe's write end.
#
# The image names each of those in-flight files by the tree's file_id (no
# second pipe object of its own); after restore each received descriptor is
# the read end of the pipe the process writes to.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog unix_flight_shared "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID

dump_kill dump "$root" "$E2E_TMP/img"
wait_gone "$kid" 10
cf_show "$E2E_TMP/img" "$E2E_TMP/show.json"
pycheck "in-flight pipes named by the tree's file ids" "$E2E_TMP/show.json" "$root" "$kid" <<'EOF2'
show = load(sys.argv[1])
root, kid = int(sys.argv[2]), int(sys.argv[3])
pairs = [pr for p in (root, kid) for pr in file_objects(proc(show, p)["core"], "unix_pair")]
flight = [f for pr in pairs for f in pr.get("flight_fds", [])]
if len(flight) != 4 or not all(int(f.get("tree_file_id", 0)) for f in flight):
    fail("want 4 in-flight files, each with a tree_file_id: %r" % flight)
if any(pr.get("flight_objects") for pr in pairs):
    fail("a pipe saved again with a socket pair: %r" % pairs)
EOF2
restore_d restore "$E2E_TMP/img" "$root"
E2E_PIDS+=("$kid")
assert_running_untraced "$kid" "child after restore"
check_pass "$W"
log "PASS"
