#!/bin/bash
# Netlink sockets (tests/progs/netlink_socks.c): an explicit port id with a
# group, a socket connected to it (autobound), one bound to groups only plus
# a group past sockaddr_nl's 32 (NETLINK_ADD_MEMBERSHIP), and a
# NETLINK_ROUTE socket with SOL_NETLINK flags.
#
# 1. dump -R: the image has the four sockets, their port ids and groups.
# 2. dump (kill) + restore -d: the port ids, groups, peer and flags are
#    back; messages flow between the sockets and the kernel answers r.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog netlink_socks "$W"
root=$PROG_PID

dump_r "$E2E_TMP/img-r" "$root"
pycheck "netlink sockets in the image" "$E2E_TMP/show.json" "$root" <<'EOF2'
show = load(sys.argv[1])
fds = [f for f in proc(show, int(sys.argv[2]))["core"].get("fds", []) if fd_kind(f) == "netlink"]
if len(fds) != 4:
    fail("want 4 netlink sockets, found %d" % len(fds))
if not any(f["netlink"].get("connected") for f in fds):
    fail("no connected netlink socket")
if not any(len(f["netlink"].get("groups", [])) == 2 for f in fds):
    fail("no socket with a group past 32")
EOF2
CF_LOG=
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"
check_pass "$W"
log "PASS"
