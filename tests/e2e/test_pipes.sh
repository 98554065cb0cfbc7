#!/bin/bash
# Pipes and a FIFO with unread data, across a parent and its children
# (tests/progs/pipes.c): a pipe from parent to child with 10000 bytes queued,
# pipes inside the child (one of 1 MiB with 300000 bytes), a read end shared
# by parent and child (one open file description), a FIFO, and a pipe between
# two children that the parent made but no longer holds (restore creates it
# in the parent all the same: the children's lowest common ancestor).
#
# 1. dump -R: both processes run on untraced; the image has the pipes with
#    their bytes, the two ends of the parent->child pipe, one file id for the
#    shared read end; the self-check then finds every byte still queued (the
#    dump read them without consuming them).
# 2. dump (kill) + restore -d: the pipes come back with their bytes, sizes
#    and flags, still connecting parent and child; the self-check passes.
# 3. once more (the state refilled after the last check, and restored pipes).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog pipes "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID
child_pid "$W" ready.child2
kid2=$CHILD_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root" "$kid" "$kid2"
pycheck "pipes in the image" "$E2E_TMP/show.json" "$root" "$kid" "$kid2" "$W/fifo" <<'EOF'
import base64
show = load(sys.argv[1])
root, kid, kid2, fifo = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
cores = {p: proc(show, p)["core"] for p in (root, kid, kid2)}
pipes = {}
for core in cores.values():
    for p in file_objects(core, "pipe"):
        key = (u(p["dev"]), u(p["inode"]))
        if key in pipes:
            fail("pipe %r saved twice" % (key,))
        pipes[key] = (u(p["size"]), base64.b64decode(p.get("data", "")))
def fds(pid, t):
    return [f for f in cores[pid].get("fds", []) if fd_kind(f) == t]
O_ACCMODE = 3
for pid in (root, kid, kid2):
    for f in fds(pid, "pipe") + fds(pid, "fifo"):
        if u(f["file_id"]) == 0:
            fail("process %d fd %s: no file id" % (pid, f["fd"]))
        if (u(f["dev"]), u(f["inode"])) not in pipes:
            fail("process %d fd %s: its pipe is not in the image" % (pid, f["fd"]))
# p1: the child's read end and the parent's write end of one pipe, 10000 bytes.
kid_r = {u(f["inode"]) for f in fds(kid, "pipe") if u(f["flags"]) & O_ACCMODE == 0}
root_w = {u(f["inode"]) for f in fds(root, "pipe") if u(f["flags"]) & O_ACCMODE == 1}
p1 = [ino for ino in kid_r & root_w if any(k[1] == ino and len(v[1]) == 10000 for k, v in pipes.items())]
if len(p1) != 1:
    fail("no pipe with 10000 bytes from the parent's write end to the child's read end (%r)" % (pipes,))
# p3: one read description held by both processes.
shared = {u(f["file_id"]) for f in fds(root, "pipe")} & {u(f["file_id"]) for f in fds(kid, "pipe")}
if len(shared) != 1:
    fail("want exactly one pipe description shared by parent and child, found %r" % shared)
sizes = sorted((s, len(d)) for s, d in pipes.values())
if (1 << 20, 300000) not in sizes:
    fail("no 1 MiB pipe with 300000 bytes: %r" % sizes)
if (65536, 100) not in sizes or (65536, 3000) not in sizes or (65536, 200) not in sizes:
    fail("pipe sizes and queued bytes %r" % sizes)
# p5: the first child's write end, the second child's read end, 500 bytes.
k1w = {u(f["inode"]) for f in fds(kid, "pipe") if u(f["flags"]) & O_ACCMODE == 1}
k2r = {u(f["inode"]) for f in fds(kid2, "pipe") if u(f["flags"]) & O_ACCMODE == 0}
if len(k2r) != 1 or k2r != k1w & k2r or len(pipes[next(k for k in pipes if k[1] in k2r)][1]) != 500:
    fail("no pipe with 500 bytes from the first child to the second")
if any(u(f["inode"]) in k2r for f in fds(root, "pipe")):
    fail("the parent holds the children's pipe")
ff = fds(root, "fifo")
if len(ff) != 2 or any(f["path"] != fifo for f in ff):
    fail("want two FIFO fds of %s in the parent, found %r" % (fifo, ff))
if len({u(f["file_id"]) for f in ff}) != 2:
    fail("the FIFO's two opens share one file id")
EOF
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
wait_gone "$kid" 10
wait_gone "$kid2" 10
restore_d restore "$E2E_TMP/img" "$root"
E2E_PIDS+=("$kid" "$kid2")
for p in "$kid" "$kid2"; do
  assert_running_untraced "$p" "child $p after restore"
  [ "$(cut -d' ' -f4 "/proc/$p/stat")" = "$root" ] || fail "the restored child $p's parent is not $root"
done
check_pass "$W"

# --- 3. once more ------------------------------------------------------------------------
dump_kill dump2 "$root" "$E2E_TMP/img2"
wait_gone "$kid" 10
wait_gone "$kid2" 10
restore_d restore2 "$E2E_TMP/img2" "$root"
check_pass "$W"
check_pass "$W"
log "PASS"
