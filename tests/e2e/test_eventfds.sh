#!/bin/bash
# Eventfds in counter and semaphore mode (tests/progs/eventfds.c): a counter
# shared by a parent and its child (one open file description), a semaphore
# in the child, a counter above 32 bits and an empty one in the parent.
#
# 1. dump -R: both run on untraced; the image has each eventfd's counter and
#    mode, and one file id for the shared one; the self-check passes (the
#    dump changed no counter).
# 2. dump (kill) + restore -d: counters, modes and flags are back, and the
#    shared eventfd is one again; the self-check passes.
# 3. once more.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog eventfds "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root" "$kid"
pycheck "eventfds in the image" "$E2E_TMP/show.json" "$root" "$kid" <<'EOF2'
show = load(sys.argv[1])
root, kid = int(sys.argv[2]), int(sys.argv[3])
def efds(pid):
    return [f for f in proc(show, pid)["core"].get("fds", []) if fd_kind(f) == "eventfd"]
def summary(pid):
    return sorted((u(f["eventfd"].get("count")), bool(f["eventfd"].get("semaphore"))) for f in efds(pid))
if summary(root) != [(0, False), (42, False), (0x100000005, False)]:
    fail("parent's eventfds %r" % summary(root))
if summary(kid) != [(3, True), (42, False)]:
    fail("child's eventfds %r" % summary(kid))
shared = {u(f["file_id"]) for f in efds(root)} & {u(f["file_id"]) for f in efds(kid)}
if len(shared) != 1 or len({u(f["file_id"]) for f in efds(root) + efds(kid)}) != 4:
    fail("want 4 eventfd descriptions, one shared by parent and child")
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
wait_gone "$kid" 10
restore_d restore "$E2E_TMP/img" "$root"
E2E_PIDS+=("$kid")
assert_running_untraced "$kid" "child after restore"
check_pass "$W"

# --- 3. once more ------------------------------------------------------------------------
dump_kill dump2 "$root" "$E2E_TMP/img2"
wait_gone "$kid" 10
restore_d restore2 "$E2E_TMP/img2" "$root"
check_pass "$W"
check_pass "$W"
log "PASS"
