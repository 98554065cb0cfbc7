#!/bin/bash
# A round trip per descriptor kind of the registry (kinds/registry.cc): a
# process holding descriptors of that kind (tests/progs/kinds.c) is dumped
# (-R), killed, restored, and dumped again; both images must describe every
# descriptor with the same kind and the same state: the kind's own message,
# the common fields, and the shared object it names (a pipe's queued bytes,
# a socket pair's queues, a memfd's object). Values that legitimately differ
# between two objects (inode and device numbers, open file ids, a timer's
# time left) are left out of the comparison.
#
# Each kind's own test checks what the restored program sees (test_pipes,
# test_socketpairs, test_eventfds, test_timerfds, test_signalfds,
# test_inotify, test_epoll, test_shmem, test_restore_files, ...).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

KINDS=(pipe fifo unix_socket eventfd timerfd signalfd inotify epoll memfd reg dir chr)

for kind in "${KINDS[@]}"; do
  W=$E2E_TMP/w-$kind
  start_prog kinds "$W" "$kind"
  pid=$PROG_PID
  dump_r "$E2E_TMP/a-$kind" "$pid"
  cp "$E2E_TMP/show.json" "$E2E_TMP/a-$kind.json"
  kill_prog "$pid"
  restore_d "restore-$kind" "$E2E_TMP/a-$kind" "$pid"
  check_pass "$W"
  dump_r "$E2E_TMP/b-$kind" "$pid"
  cp "$E2E_TMP/show.json" "$E2E_TMP/b-$kind.json"
  pycheck "$kind: the same state after a round trip" "$E2E_TMP/a-$kind.json" "$E2E_TMP/b-$kind.json" "$pid" "$kind" <<'EOF'
a, b = load(sys.argv[1]), load(sys.argv[2])
pid, kind = int(sys.argv[3]), sys.argv[4]
# Differ between two objects of the same state.
VOLATILE = {"inode", "dev", "file_id", "mnt_id", "value_ns", "expires_ns", "shmem_id", "rdev_", "ghost_file"}
def clean(v):
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items() if k not in VOLATILE}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v
def objects(core):
    """The shared object each fd names, reduced to its state, by fd."""
    pipes = {u(p["inode"]): p for p in file_objects(core, "pipe")}
    ends = {}
    for pr in file_objects(core, "unix_pair"):
        for me, peer in (("a", "b"), ("b", "a")):
            if me in pr:
                ends[u(pr[me].get("inode"))] = {"type": pr.get("type"), "mine": clean(pr[me]),
                                                "peer": clean(pr.get(peer, {}))}
    shm = {u(s["id"]): s for s in core.get("shmems", [])}
    out = {}
    for f in core.get("fds", []):
        k = fd_kind(f)
        if k in ("pipe", "fifo"):
            p = pipes.get(u(f["inode"])) or fail("fd %s: no pipe object" % f["fd"])
            out[f["fd"]] = {"size": p.get("size"), "data": p.get("data", "")}
        elif k == "unix_socket":
            out[f["fd"]] = ends.get(u(f["inode"])) or fail("fd %s: no socket pair" % f["fd"])
        elif k == "memfd":
            s = shm.get(u(f["memfd"]["shmem_id"])) or fail("fd %s: no shmem object" % f["fd"])
            out[f["fd"]] = {"size": s.get("size"), "name": s.get("name"), "seals": s.get("seals"),
                            "bytes": u(s.get("pages", {}).get("data_pages", 0))}
    return out
def fds(show):
    core = proc(show, pid)["core"]
    got = {}
    for f in core.get("fds", []):
        c = clean(f)
        if fd_kind(f) in ("pipe", "unix_socket"):
            c.pop("path", None)   # pipe:[inode], socket:[inode]
        got[f["fd"]] = c
    return got, objects(core)
fa, oa = fds(a)
fb, ob = fds(b)
if sorted(fa) != sorted(fb):
    fail("fds %s before, %s after" % (sorted(fa), sorted(fb)))
mine = [n for n, f in fa.items() if fd_kind(f) == kind or (kind == "fifo" and fd_kind(f) == "fifo")]
if not mine:
    fail("no %s fd in the first image: %r" % (kind, fa))
for n in sorted(fa):
    if fa[n] != fb[n]:
        fail("fd %s: %r before, %r after" % (n, fa[n], fb[n]))
    if oa.get(n) != ob.get(n):
        fail("fd %s: object %r before, %r after" % (n, oa.get(n), ob.get(n)))
print("  %s: %d fds of this kind, %d in all, the same state" % (kind, len(mine), len(fa)))
EOF
  kill_prog "$pid"
done
log "PASS: ${#KINDS[@]} kinds, each the same after dump, restore and dump"
