#!/bin/bash
# Regular files and directories whose open file description a parent and its
# child share (tests/progs/sharedfile.c): one offset for both before and after
# restore; descriptions held by one process only stay separate.
#
# 1. dump -R: the shared description has one file_id in both cores (the
#    child's dup too); the unshared ones have none; the self-check passes.
# 2. dump (kill) + restore -d: a write by one process moves the offset the
#    other sees; the self-check passes.
# 3. once more.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog sharedfile "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID

dump_r "$E2E_TMP/img-r" "$root" "$kid"
pycheck "shared file descriptions in the image" "$E2E_TMP/show.json" "$root" "$kid" "$W" <<'EOF2'
show = load(sys.argv[1])
root, kid, w = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def fds(pid, path):
    return [f for f in proc(show, pid)["core"].get("fds", []) if f.get("path") == path]
ps, ks = fds(root, w + "/shared.dat"), fds(kid, w + "/shared.dat")
if len(ps) != 1 or len(ks) != 2:
    fail("shared.dat: %d fds in the parent, %d in the child" % (len(ps), len(ks)))
ids = {u(f.get("file_id", 0)) for f in ps + ks}
if len(ids) != 1 or 0 in ids:
    fail("shared.dat: file ids %r, want one" % ids)
if any(u(f.get("pos", 0)) != 100 for f in ps + ks):
    fail("shared.dat offsets %r" % [f.get("pos") for f in ps + ks])
own = fds(root, w + "/own.dat") + fds(kid, w + "/own.dat")
if len(own) != 2 or any(u(f.get("file_id", 0)) for f in own):
    fail("own.dat: %r" % own)
dirs = fds(root, w) + fds(kid, w)
if len(dirs) != 2 or len({u(f.get("file_id", 0)) for f in dirs}) != 1 or fd_kind(dirs[0]) != "dir":
    fail("the shared directory: %r" % dirs)
EOF2
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
wait_gone "$kid" 10
restore_d restore "$E2E_TMP/img" "$root"
E2E_PIDS+=("$kid")
check_pass "$W"

dump_kill dump2 "$root" "$E2E_TMP/img2"
wait_gone "$kid" 10
restore_d restore2 "$E2E_TMP/img2" "$root"
check_pass "$W"
log "PASS"
