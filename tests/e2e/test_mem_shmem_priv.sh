#!/bin/bash
# A private mapping of shared anonymous memory (tests/progs/mem_shmem_priv.c),
# made through /proc/self/map_files: its untouched pages read the shared
# memory, its written page is its own.
#
# 1. dump -R: the private vma names the shared memory's object (it is a
#    private mapping of it, not anonymous memory); the self-check passes.
# 2. dump (kill) + restore -d: the private mapping's untouched pages read the
#    shared memory again (before and after it changes), its written page keeps
#    its own bytes; the self-check passes twice.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog mem_shmem_priv "$W"
root=$PROG_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root"
pycheck "the private mapping of shared memory in the image" "$E2E_TMP/show.json" "$root" <<'EOF2'
show = load(sys.argv[1])
pc = proc(show, int(sys.argv[2]))["core"]
zero = [v for v in pc.get("vmas", []) if v.get("path") == "/dev/zero"]
shared = [v for v in zero if v.get("kind") == "ANON_SHARED"]
private = [v for v in zero if v.get("kind") == "FILE_PRIVATE"]
if len(shared) != 1 or len(private) != 1:
    fail("vmas of /dev/zero: %r" % [(v["start"], v.get("kind")) for v in zero])
if not shared[0].get("shmem_id") or shared[0].get("shmem_id") != private[0].get("shmem_id"):
    fail("the private vma maps object %r, the shared one %r" % (private[0].get("shmem_id"), shared[0].get("shmem_id")))
if u(private[0].get("pgoff", 0)) != 4096:
    fail("the private vma's offset %r" % private[0].get("pgoff"))
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"
check_pass "$W"
log "PASS"
