#!/bin/bash
# UDP and UDP-Lite sockets (tests/progs/udp_socks.c): IPv4, IPv6 and a
# v6 wildcard socket fed by a v4 sender (v4-mapped), bound, autobound,
# unbound, connected, shut down, bound to a foreign address under a
# since-cleared IP_FREEBIND, with datagrams queued from several senders,
# UDP-Lite's checksum coverage, and generic options (SO_BROADCAST,
# SO_REUSEADDR, SO_PRIORITY, IP_TOS, IP_TTL, SO_RCVBUF, a BPF filter,
# SO_RCVTIMEO), and raw ICMP and ICMPv6 sockets with their type filters.
#
# 1. dump -R: the image has the sockets with their addresses and queues;
#    the self-check then finds every datagram still queued (the dump
#    peeked) and queues them again.
# 2. dump (kill) + restore -d: every datagram is there again, in order,
#    each from its original sender's port; new traffic flows; the options
#    are back.
# 3. once more.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog udp_socks "$W"
root=$PROG_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root"
pycheck "UDP sockets in the image" "$E2E_TMP/show.json" "$root" <<'EOF2'
import base64
show = load(sys.argv[1])
fds = [f for f in proc(show, int(sys.argv[2]))["core"].get("fds", []) if fd_kind(f) == "udp"]
if len(fds) != 14:
    fail("want 14 inet datagram sockets, found %d" % len(fds))
raw = [f for f in fds if int(f["udp"].get("type", 0)) == 3 and f["udp"].get("icmp_filter")]
if len(raw) != 2:
    fail("want 2 raw ICMP sockets with their filters, found %d" % len(raw))
queues = sorted(sorted(base64.b64decode(d.get("data", "")).decode() for d in f["udp"].get("queue", []))
                for f in fds if f["udp"].get("queue"))
want = [["a-four"], ["b-one", "b-two", "c-three"], ["c-six"], ["e-five"], ["l-seven"]]
if queues != want:
    fail("queues %r, want %r" % (queues, want))
lite = [f for f in fds if int(f["udp"].get("protocol", 0)) == 136]
if len(lite) != 2:
    fail("want 2 UDP-Lite sockets, found %d" % len(lite))
shut = [f for f in fds if int(f["udp"].get("shutdown", 0)) == 2]
if len(shut) != 1:
    fail("want one socket shut down for writing, found %d" % len(shut))
filt = [f for f in fds if len(f.get("socket_opts", {}).get("filter", [])) == 4]
if len(filt) != 1:
    fail("want one socket with a 4-instruction filter, found %d" % len(filt))
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"

# --- 3. once more ------------------------------------------------------------------------
dump_kill dump2 "$root" "$E2E_TMP/img2"
restore_d restore2 "$E2E_TMP/img2" "$root"
check_pass "$W"
check_pass "$W"
log "PASS"
