#!/bin/bash
# An epoll instance in flight in a unix socket's queue, which no process
# holds (tests/progs/unix_flight_epoll.c; zdtm scm05): it watches both
# sockets of the pair whose queue holds it, and is queued twice.
#
# 1. dump -R: the image saves it once, with the socket pair, its two
#    targets by the pair's inodes; the self-check passes on the running
#    tree.
# 2. dump (kill) + restore -d: both messages carry one instance again, its
#    watch list has the same fd numbers and data, and its readiness follows
#    the queue.
# 3. the instance also watches a pipe: the dump is refused, naming what
#    is not supported, and the process runs on.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog unix_flight_epoll "$W"
root=$PROG_PID

dump_r "$E2E_TMP/img-r" "$root"
pycheck "the in-flight epoll instance in the image" "$E2E_TMP/show.json" "$root" <<'EOF2'
show = load(sys.argv[1])
root = int(sys.argv[2])
pairs = file_objects(proc(show, root)["core"], "unix_pair")
if len(pairs) != 1:
    fail("want one socket pair, got %r" % pairs)
pr = pairs[0]
eps = [f for f in pr.get("flight_fds", []) if fd_kind(f) == "epoll"]
if len(eps) != 1:
    fail("want one in-flight epoll instance, got %r" % pr.get("flight_fds"))
inodes = {u(pr["a"]["inode"]), u(pr["b"]["inode"])}
targets = eps[0]["epoll"].get("targets", [])
if len(targets) != 2 or {u(t.get("flight_sock", 0)) for t in targets} != inodes:
    fail("targets %r, want the pair's sockets %r" % (targets, inodes))
rights = [r for e in (pr["a"], pr["b"]) for r in e.get("rights", [])]
if len(rights) != 2 or {int(r["files"][0]) for r in rights} != {int(eps[0]["file_id"])}:
    fail("want two messages carrying the instance, got %r" % rights)
EOF2
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"

W2=$E2E_TMP/w2
start_prog unix_flight_epoll "$W2" pipe
p2=$PROG_PID
run_cf refuse dump -t "$p2" -D "$E2E_TMP/img-no"
assert_cf_error "dump of an in-flight epoll watching a pipe"
cf_error_line | grep -q "not a unix socket of the socket in whose queue it is: not supported" ||
  fail "refusal: $(cf_error_line)"
assert_running_untraced "$p2" "after the refused dump"
log "PASS"
