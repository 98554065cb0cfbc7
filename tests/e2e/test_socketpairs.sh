#!/bin/bash
# Unix socket pairs with data queued both ways, across a parent and its child
# (tests/progs/socketpairs.c): stream, datagram and seqpacket pairs, a pair
# shut down for writing on one side, an end shared by both processes (one
# open file description), a pair inside the child (with SO_PEEK_OFF and
# SO_SNDBUF set), and a socket whose peer was closed.
#
# 1. dump -R: both processes run on untraced; the image has the pairs with
#    their queues (message boundaries kept), the shutdown bits, the closed
#    peer, one file id for the shared end; the self-check then finds every
#    message still queued (the dump peeked, it did not consume).
# 2. dump (kill) + restore -d: the pairs come back and still connect parent
#    and child; the self-check passes.
# 3. once more.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog socketpairs "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root" "$kid"
pycheck "socket pairs in the image" "$E2E_TMP/show.json" "$root" "$kid" <<'EOF2'
import base64
show = load(sys.argv[1])
root, kid = int(sys.argv[2]), int(sys.argv[3])
cores = {p: proc(show, p)["core"] for p in (root, kid)}
pairs = [pr for c in cores.values() for pr in file_objects(c, "unix_pair")]
socks = {p: [f for f in c.get("fds", []) if fd_kind(f) == "unix_socket"] for p, c in cores.items()}
# parent: st dg sq half sh lone; child: st dg sq half sh(2) in(2)
if len(socks[root]) != 6 or len(socks[kid]) != 8:
    fail("unix socket fds: parent %d (want 6), child %d (want 8)" % (len(socks[root]), len(socks[kid])))
if len(pairs) != 7:
    fail("want 7 socket pairs in the image, found %d" % len(pairs))
ends = {}
for pr in pairs:
    for e in ("a", "b"):
        end = pr.get(e, {})
        if u(end.get("inode")):
            ends[u(end["inode"])] = (pr, end)
for p, fs in socks.items():
    for f in fs:
        if u(f["inode"]) not in ends:
            fail("process %d fd %s: its socket is in no pair" % (p, f["fd"]))
def msgs(end):
    return [base64.b64decode(m) for m in end.get("queue", [])]
types = sorted(int(pr["type"]) for pr in pairs)
if types != [1, 1, 1, 1, 2, 5, 5]:
    fail("pair types %r" % types)
# The datagram pair: 5 messages one way (one empty), 3 the other.
for pr in pairs:
    if int(pr["type"]) == 2:
        got = {tuple(len(m) for m in msgs(pr["a"])), tuple(len(m) for m in msgs(pr["b"]))}
        if got != {(1000, 3, 0), (5, 0, 700, 3000, 64)}:
            fail("datagram queues %r" % got)
# The lone socket: its peer closed, 77 bytes queued, shut down both ways.
lone = [pr for pr in pairs if not u(pr.get("b", {}).get("inode")) or not u(pr.get("a", {}).get("inode"))]
if len(lone) != 1:
    fail("want one pair with a closed end, found %d" % len(lone))
live = lone[0]["a"] if u(lone[0]["a"].get("inode")) else lone[0]["b"]
if [len(m) for m in msgs(live)] != [77] or u(live.get("shutdown")) != 3:
    fail("the lone socket: queue %r, shutdown %r" % ([len(m) for m in msgs(live)], live.get("shutdown")))
# Half-closed: one end shut down for sending, its peer for receiving.
halves = [pr for pr in pairs if {u(pr["a"].get("shutdown")), u(pr.get("b", {}).get("shutdown"))} == {1, 2}]
if len(halves) != 1:
    fail("want one half-closed pair, found %d" % len(halves))
shared = {u(f["file_id"]) for f in socks[root]} & {u(f["file_id"]) for f in socks[kid]}
if len(shared) != 1:
    fail("want one socket description shared by parent and child, found %r" % shared)
peek = [e for pr in pairs for e in (pr["a"], pr.get("b", {})) if int(e.get("opts", {}).get("peek_off", -1)) == 0]
if len(peek) != 1:
    fail("want one end with SO_PEEK_OFF 0, found %d" % len(peek))
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
wait_gone "$kid" 10
restore_d restore "$E2E_TMP/img" "$root"
E2E_PIDS+=("$kid")
assert_running_untraced "$kid" "child after restore"
[ "$(cut -d' ' -f4 "/proc/$kid/stat")" = "$root" ] || fail "the restored child's parent is not $root"
check_pass "$W"

# --- 3. once more ------------------------------------------------------------------------
dump_kill dump2 "$root" "$E2E_TMP/img2"
wait_gone "$kid" 10
restore_d restore2 "$E2E_TMP/img2" "$root"
check_pass "$W"
check_pass "$W"
log "PASS"
