#!/bin/bash
# Pidfds (tests/progs/pidfds.c): pidfds of a child, a grandchild (non-
# blocking) and the process itself; two descriptions of one dead process,
# one of another dead process, and the child's own pidfd of the first.
#
# 1. dump -R: the image has three live pidfds naming their processes and
#    three dead ones (one dead pid object per dead process, in the parent);
#    the self-check passes.
# 2. dump (kill) + restore -d: the live pidfds name their processes again,
#    the dead ones report a process gone and share inodes as before, across
#    processes too; the self-check passes.
# 3. once more.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog pidfds "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root" "$kid"
pycheck "pidfds in the image" "$E2E_TMP/show.json" "$root" "$kid" <<'EOF2'
show = load(sys.argv[1])
root, kid = int(sys.argv[2]), int(sys.argv[3])
def of(pid, kind):
    return [f for f in proc(show, pid)["core"].get("fds", []) if fd_kind(f) == kind]
live = sorted(int(f["pidfd"].get("pid", 0)) for f in of(root, "pidfd"))
if len(live) != 3 or root not in live or kid not in live:
    fail("parent's live pidfds %r" % live)
if len(of(root, "dead_pidfd")) != 3 or len(of(kid, "dead_pidfd")) != 1:
    fail("want 3 dead pidfds in the parent, 1 in the child")
objs = [o for o in proc(show, root)["core"].get("file_objects", []) if "dead_pid" in o]
if len(objs) != 2:
    fail("want 2 dead pid objects in the parent, got %r" % objs)
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
log "PASS"
