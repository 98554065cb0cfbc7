#!/bin/bash
# Epoll targets added through fd numbers that were closed or reused since
# (tests/progs/epoll_moved.c).
#
# 1. dump -R: the targets at 700 and at the first 702 carry the fd that
#    holds their file now; the self-check passes.
# 2. dump (kill) + restore -d: the instance watches the same files under the
#    same numbers, 700 stays closed and 702 holds its file; the self-check
#    passes.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog epoll_moved "$W"
root=$PROG_PID

dump_r "$E2E_TMP/img-r" "$root"
pycheck "epoll targets in the image" "$E2E_TMP/show.json" "$root" <<'EOF2'
show = load(sys.argv[1])
root = int(sys.argv[2])
eps = [f for f in proc(show, root)["core"].get("fds", []) if fd_kind(f) == "epoll"]
if len(eps) != 1:
    fail("want one epoll fd, got %d" % len(eps))
targets = sorted((int(t.get("tfd", 0)), "source_fd" in t) for t in eps[0]["epoll"].get("targets", []))
if targets != [(700, True), (702, False), (702, True)]:
    fail("targets %r" % targets)
EOF2
CF_LOG=
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"
log "PASS"
