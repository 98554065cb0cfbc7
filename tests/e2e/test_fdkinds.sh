#!/bin/bash
# Timerfds, a signalfd, an inotify instance and an epoll instance watching
# eventfds (counter and semaphore mode), a pipe (edge-triggered) and a
# timerfd, held by a parent and its child (tests/progs/fdkinds.c).
#
# 1. dump -R: both run on untraced; the image has each kind with its state
#    (the timerfd that fired unread has its expiration, the inotify wds are
#    2 and 3, the epoll targets are saved once); nothing is checked by the
#    program yet, so the unread expiration stays unread.
# 2. dump (kill) + restore -d: the self-check passes: the unread expiration
#    is readable at once, periodic timers keep firing, armed ones have their
#    time left, epoll reports the right data in both processes, the signalfd
#    and inotify watches work with the same wds.
# 3. once more, from the restored tree.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog fdkinds "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID

dump_r "$E2E_TMP/img-r" "$root" "$kid"
pycheck "descriptor kinds in the image" "$E2E_TMP/show.json" "$root" "$kid" <<'EOF2'
show = load(sys.argv[1])
root, kid = int(sys.argv[2]), int(sys.argv[3])
pf = proc(show, root)["core"].get("fds", [])
kf = proc(show, kid)["core"].get("fds", [])
def kind(fds, t):
    return [f for f in fds if fd_kind(f) == t]
timers = kind(pf, "timerfd")
if len(timers) != 5:
    fail("want 5 timerfds in the parent, got %d" % len(timers))
fired = [t for t in timers if u(t["timerfd"].get("interval_ns", 0)) == 100 * 10**9]
if len(fired) != 1 or u(fired[0]["timerfd"].get("ticks", 0)) != 1:
    fail("the timerfd that fired unread: %r" % fired)
if not any(u(t["timerfd"].get("settime_flags", 0)) & 1 for t in timers):
    fail("no TFD_TIMER_ABSTIME timerfd: %r" % timers)
sig = kind(pf, "signalfd")
if len(sig) != 1 or u(sig[0]["signalfd"].get("mask", 0)) != 1 << (12 - 1):
    fail("signalfd: %r" % sig)
ino = kind(pf, "inotify")
if len(ino) != 1 or [u(w["wd"]) for w in ino[0]["inotify"].get("watches", [])] != [2, 3]:
    fail("inotify: %r" % ino)
eps = kind(pf, "epoll") + kind(kf, "epoll")
if len(eps) != 2 or len({u(e["file_id"]) for e in eps}) != 1:
    fail("want one epoll description held by both: %r" % eps)
targets = [t for e in eps for t in e["epoll"].get("targets", [])]
if sorted(u(t.get("data", 0)) for t in targets) != [0x1234, 0x1235, 0x5678, 0x9abc]:
    fail("epoll targets (saved once): %r" % targets)
for t in kind(pf, "timerfd"):
    if not any(u(k.get("file_id", 0)) == u(t["file_id"]) for k in kind(kf, "timerfd")):
        fail("timerfd %r is not shared with the child" % t["fd"])
EOF2
CF_LOG=

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
