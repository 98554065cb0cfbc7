#!/bin/bash
# TCP sockets of every shape in one process (tests/progs/tcp_sockets.c):
# listening on IPv4, IPv6 (v6only) and dual-stack [::] (v4-mapped), two
# sharing a port with SO_REUSEPORT, unbound, bound only, and a connection
# between two of its own sockets with bytes queued both ways and options
# (TCP_NODELAY, keepalive times, SO_LINGER), and a half-closed connection
# (FIN_WAIT2 on one side, CLOSE_WAIT with unread data on the other).
#
# 1. dump -R --tcp-established: the image holds each with its state; the
#    tree runs on and the self-check passes (nothing was consumed).
# 2. dump (kill) and restore: every socket comes back as it was; the
#    self-check accepts new connections on each listening socket and moves
#    the old connection on both ways, no byte lost or repeated.
# 3. once more, from the restored process.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init
command -v nft >/dev/null || skip "nft (nftables) is needed for the network lock"

PORT=$((20000 + RANDOM % 20000))
W=$E2E_TMP/w
start_prog tcp_sockets "$W" "$PORT"
pid=$PROG_PID

# --- 1. dump -R ---------------------------------------------------------------------
run_cf dump-r dump -t "$pid" -D "$E2E_TMP/img-r" -R --tcp-established -v4 -o "$E2E_TMP/dump-r.log"
CF_LOG=$E2E_TMP/dump-r.log
assert_cf_ok "dump -R"
assert_running_untraced "$pid" "after dump -R"
cf_show "$E2E_TMP/img-r" "$E2E_TMP/show.json"
pycheck "TCP sockets in the image" "$E2E_TMP/show.json" "$pid" <<'EOF2'
import base64
show = load(sys.argv[1])
tcp = [f["tcp"] for f in proc(show, int(sys.argv[2]))["core"]["fds"] if fd_kind(f) == "tcp"]
states = sorted(int(t["state"]) for t in tcp)
# two connected ends, FIN_WAIT2 and CLOSE_WAIT, three closed (one bound, one
# reset holding 3 bytes), five listening
if states != [1, 1, 5, 7, 7, 7, 8, 10, 10, 10, 10, 10]:
    fail("TCP states %r" % states)
closed = [t for t in tcp if int(t["state"]) == 7]
reset = [t for t in closed if t.get("conn", {}).get("recv_queue")]
if len(reset) != 1 or base64.b64decode(reset[0]["conn"]["recv_queue"]) != b"xyz":
    fail("want one reset connection holding 'xyz'")
if sorted(bool(t.get("bound")) for t in closed if t not in reset) != [False, True]:
    fail("want one bound and one unbound unconnected socket")
queues = sorted((len(base64.b64decode(t["conn"].get("recv_queue", ""))),
                 len(base64.b64decode(t["conn"].get("send_queue", "")))) for t in tcp if int(t["state"]) == 1)
# Each end's queues: what it has not read, and what its peer has not acked.
if sum(r for r, s in queues) != 103000:
    fail("queued bytes %r, want 100000 + 3000 unread" % queues)
cw = [t for t in tcp if int(t["state"]) == 8]
if len(base64.b64decode(cw[0]["conn"].get("recv_queue", ""))) != 2000:
    fail("the CLOSE_WAIT end does not hold the 2000 bytes it has not read")
if not any(t.get("v6only") for t in tcp) or not any(int(t["family"]) == 10 and not t.get("v6only") for t in tcp):
    fail("want an IPv6 socket with and one without IPV6_V6ONLY")
if sum(1 for t in tcp if t.get("reuseport")) != 2:
    fail("want two SO_REUSEPORT sockets")
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore -------------------------------------------------------------
dump_kill dump "$pid" "$E2E_TMP/img" --tcp-established
restore_d restore "$E2E_TMP/img" "$pid"
check_pass "$W"

# --- 3. once more ------------------------------------------------------------------------
dump_kill dump2 "$pid" "$E2E_TMP/img2" --tcp-established
restore_d restore2 "$E2E_TMP/img2" "$pid"
check_pass "$W"
log "PASS"
