#!/bin/bash
# Unix sockets of every shape across a parent and its child
# (tests/progs/unix_sockets.c): a stream listener bound to a path (mode 0640)
# with an accepted connection to the child (data queued both ways) and a
# connection from the child waiting to be accepted; a seqpacket listener on
# an abstract name with a waiting connection; a datagram socket bound to a
# relative path with 3 messages queued by the child's connected socket (one
# empty); a datagram socket whose path was deleted, with a queued message;
# an unbound, unconnected stream socket; a socketpair with both ends of a
# pipe and a regular file in flight (SCM_RIGHTS).
#
# 1. dump -R: the image has the group with each shape; the program then
#    finds everything still there (the dump peeked, accepted nothing).
# 2. dump (kill) + restore: names, file mode, waiting connections (accepted
#    now, in the right listener), queues with their boundaries; the deleted
#    path stays deleted.
# 3. once more (the check queued everything again).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog unix_sockets "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID

dump_r "$E2E_TMP/img-r" "$root" "$kid"
pycheck "unix sockets in the image" "$E2E_TMP/show.json" "$root" "$kid" <<'EOF2'
import base64
show = load(sys.argv[1])
root, kid = int(sys.argv[2]), int(sys.argv[3])
socks = [s for p in (root, kid) for g in file_objects(proc(show, p)["core"], "unix_group") for s in g.get("socks", [])]
if len(socks) != 11:
    fail("want 11 sockets in unix groups, found %d" % len(socks))
names = [(base64.b64decode(s.get("name", "")), s) for s in socks if s.get("name")]
lst = [s for n, s in names if n.endswith(b"/lst.sock") and int(s.get("state", 0)) == 10]
if len(lst) != 1 or len(lst[0].get("pending", [])) != 1 or int(lst[0].get("file_mode", 0)) != 0o640:
    fail("the stream listener: %r" % lst)
sq = [s for n, s in names if n.startswith(b"\0cf-unix-sq-")]
if len(sq) != 1 or len(sq[0].get("pending", [])) != 1:
    fail("the abstract seqpacket listener: %r" % sq)
d = dict(names).get(b"dsrv.sock")
if not d or not d.get("dir", "").endswith("/w") or [len(base64.b64decode(m)) for m in d["end"].get("queue", [])] != [10, 0, 500]:
    fail("the relative datagram socket: %r" % d)
pairs = [pr for p in (root, kid) for pr in file_objects(proc(show, p)["core"], "unix_pair")]
flight = [pr for pr in pairs if pr.get("flight_fds")]
if len(flight) != 1 or len(flight[0]["flight_fds"]) != 3 or len(flight[0].get("flight_objects", [])) != 1:
    fail("the pair with descriptors in flight: %r" % flight)
gone = [s for n, s in names if n.endswith(b"/ddel.sock")]
if len(gone) != 1 or not gone[0].get("deleted"):
    fail("the deleted datagram socket: %r" % gone)
EOF2
CF_LOG=
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
wait_gone "$kid" 10
restore_d restore "$E2E_TMP/img" "$root"
E2E_PIDS+=("$kid")
assert_running_untraced "$kid" "child after restore"
check_pass "$W"

dump_kill dump2 "$root" "$E2E_TMP/img2"
wait_gone "$kid" 10
restore_d restore2 "$E2E_TMP/img2" "$root"
check_pass "$W"
log "PASS"
