#!/bin/bash
# Epoll (tests/progs/epolls.c): an epoll instance shared by a parent and its
# child, watching eventfds in counter and semaphore mode, both ends of a pipe
# (EPOLLET on the read end, EPOLLONESHOT armed and spent on write ends), a
# timerfd, and an eventfd that only the child holds; a second instance in the
# parent; one of the child's own.
#
# 1. dump -R: every target is in the image with its events and data; the
#    shared instance's targets are on the child's fd (only the child holds
#    every one of them), ep2's on the parent's; both run on; the self-check
#    passes.
# 2. dump (kill) + restore -d: epoll_wait reports the right data and events
#    in both processes, and the instance is shared again.
# 3. once more.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog epolls "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID

dump_r "$E2E_TMP/img-r" "$root" "$kid"
pycheck "epoll targets in the image" "$E2E_TMP/show.json" "$root" "$kid" <<'EOF2'
show = load(sys.argv[1])
root, kid = int(sys.argv[2]), int(sys.argv[3])
def fds(pid):
    return {f["fd"]: f for f in proc(show, pid)["core"]["fds"]}
P, C = fds(root), fds(kid)
for pid, d, want in ((root, P, [8, 11]), (kid, C, [8, 11, 13])):
    got = sorted(k for k, f in d.items() if fd_kind(f) == "epoll")
    if got != want:
        fail("process %d: epoll fds %r, want %r" % (pid, got, want))
if P[8]["file_id"] != C[8]["file_id"] or P[11]["file_id"] != C[11]["file_id"]:
    fail("ep and ep2 should be shared by parent and child")
def targets(f):
    return sorted((t["tfd"], t["events"], u(t["data"])) for t in f["epoll"].get("targets", []))
ET, ONESHOT = 1 << 31, 1 << 30
want_ep = sorted([(3, 0x19, 0x1234567890abcdef), (4, 0x19, 0x5e5e), (5, ET | 0x19, 0xe7), (7, 0x19, 0x71),
                  (6, ONESHOT | 0x1c, 0x0e), (10, ONESHOT, 0xd15), (12, 0x19, 0xc0ffee)])
if targets(P[8]) != [] or targets(C[8]) != want_ep:
    fail("ep's targets: parent %r, child %r, want none and %r" % (targets(P[8]), targets(C[8]), want_ep))
if targets(P[11]) != [(3, 0x19, 0xe2)] or targets(C[11]) != []:
    fail("ep2's targets: parent %r, child %r" % (targets(P[11]), targets(C[11])))
if targets(C[13]) != [(12, ET | 0x19, 0xcafe)]:
    fail("cep's targets %r" % targets(C[13]))
if not P[11]["cloexec"] or P[8].get("cloexec"):
    fail("close-on-exec bits")
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
check_pass "$W"
log "PASS"
