#!/bin/bash
# Packet sockets (tests/progs/packet_socks.c): raw, datagram and SOCK_PACKET
# sockets, bound to lo or not, with SOL_PACKET options, rx and tx rings, a
# fanout group of two sockets, and promiscuous and allmulti memberships.
#
# 1. dump -R: the image has the four sockets, the rings, the fanout group
#    and the memberships.
# 2. dump (kill) + restore -d: all of it is back (the memberships keep lo
#    promiscuous and in allmulti mode again).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog packet_socks "$W"
root=$PROG_PID

dump_r "$E2E_TMP/img-r" "$root"
pycheck "packet sockets in the image" "$E2E_TMP/show.json" "$root" <<'EOF2'
show = load(sys.argv[1])
fds = [f["packet"] for f in proc(show, int(sys.argv[2]))["core"].get("fds", []) if fd_kind(f) == "packet"]
if len(fds) != 4:
    fail("want 4 packet sockets, found %d" % len(fds))
if sum(1 for p in fds if "rx_ring" in p) != 1 or sum(1 for p in fds if "tx_ring" in p) != 1:
    fail("want one rx ring and one tx ring")
if sum(1 for p in fds if u(p.get("fanout"))) != 2:
    fail("want two sockets in a fanout group")
if sum(len(p.get("mclist", [])) for p in fds) != 2:
    fail("want two memberships")
EOF2
CF_LOG=
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"
check_pass "$W"
log "PASS"
