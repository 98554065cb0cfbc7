#!/bin/bash
# Shared memory between a parent and its child (tests/progs/shmem.c):
# MAP_SHARED|MAP_ANONYMOUS memory and a memfd mapped by both, with pages that
# only the child touched; a memfd held as a sealed descriptor at an offset; a
# private mapping of a memfd with one private copy; shared anonymous memory
# of the child alone.
#
# 1. dump -R: both run on untraced; the image has each object once (in the
#    parent's core, with every data page, the child's included), both
#    processes' vmas name the same objects; the self-check passes.
# 2. dump (kill) + restore -d: contents are back and the memory is shared
#    again (the child's writes after the restore are seen by the parent, and
#    the other way round); the memfd has its name, offset and seals.
# 3. once more, from the restored tree.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog shmem "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root" "$kid"
pycheck "shared memory in the image" "$E2E_TMP/show.json" "$root" "$kid" <<'EOF2'
show = load(sys.argv[1])
root, kid = int(sys.argv[2]), int(sys.argv[3])
pc, kc = proc(show, root)["core"], proc(show, kid)["core"]
objs = {u(s["id"]): s for s in pc.get("shmems", [])}
kobjs = {u(s["id"]): s for s in kc.get("shmems", [])}
if set(objs) & set(kobjs):
    fail("an object is saved twice")
def by(kind, size):
    for s in objs.values():
        if s.get("kind", "ANON") == kind and u(s["size"]) == size:
            return s
    fail("no %s object of %d bytes in the parent: %r" % (kind, size, [(s.get("kind"), s["size"]) for s in objs.values()]))
a = by("ANON", 128 << 20)
m = by("MEMFD", 8 << 20)
p = by("MEMFD", 1 << 20)
if m.get("name") != "cf-shared" or p.get("name") != "cf-private":
    fail("memfd names %r %r" % (m.get("name"), p.get("name")))
if u(m.get("seals", 0)) != 0x4 | 0x2:
    fail("memfd seals %r" % m.get("seals"))
if u(a["pages"].get("data_pages", 0)) != 1024 + 512:
    fail("A has %r data pages, want 1536 (the child's 512 included)" % a["pages"].get("data_pages"))
if u(m["pages"].get("data_pages", 0)) != 256 + 512:
    fail("M has %r data pages, want 768" % m["pages"].get("data_pages"))
if len(kobjs) != 1 or u(list(kobjs.values())[0]["size"]) != 1 << 20:
    fail("the child should carry its own 1 MiB object: %r" % kobjs)
def ids(core):
    return {u(v["shmem_id"]) for v in core.get("vmas", []) if v.get("shmem_id")}
if not {u(a["id"]), u(m["id"]), u(p["id"])} <= ids(pc):
    fail("the parent's vmas name %r" % ids(pc))
if not {u(a["id"]), u(m["id"])} <= ids(kc):
    fail("the child's vmas name %r, want A and M (%s, %s) too" % (ids(kc), a["id"], m["id"]))
memfds = [f for f in pc.get("fds", []) if fd_kind(f) == "memfd"]
if len(memfds) != 2 or {u(f["memfd"]["shmem_id"]) for f in memfds} != {u(m["id"]), u(p["id"])}:
    fail("the parent's memfd descriptors %r" % memfds)
for f in memfds:
    if u(f["memfd"]["shmem_id"]) == u(m["id"]) and u(f.get("pos", 0)) != 12345:
        fail("memfd offset %r" % f.get("pos"))
kmem = [f for f in kc.get("fds", []) if fd_kind(f) == "memfd"]
pm_fd = [f for f in memfds if u(f["memfd"]["shmem_id"]) == u(m["id"])][0]
if len(kmem) != 1 or not u(kmem[0].get("file_id", 0)) or u(kmem[0].get("file_id", 0)) != u(pm_fd.get("file_id", 0)):
    fail("the memfd description parent and child share: %r / %r" % (pm_fd, kmem))
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
wait_gone "$kid" 10
restore_d restore "$E2E_TMP/img" "$root"
E2E_PIDS+=("$kid")
assert_running_untraced "$kid" "child after restore"
grep -q '/dev/zero (deleted)' "/proc/$root/maps" || fail "the parent's shared anonymous mapping is not shmem"
grep -q '/memfd:cf-shared (deleted)' "/proc/$kid/maps" || fail "the child does not map the memfd"
check_pass "$W"

# --- 3. once more ------------------------------------------------------------------------
dump_kill dump2 "$root" "$E2E_TMP/img2"
wait_gone "$kid" 10
restore_d restore2 "$E2E_TMP/img2" "$root"
check_pass "$W"
check_pass "$W"
log "PASS"
