#!/bin/bash
# hugetlb memory (tests/progs/mem_hugetlb.c): private and shared
# MAP_HUGETLB memory and a hugetlb memfd (mapped shared, and private twice),
# a parent and a child that share the shared mapping. Needs 8 free huge
# pages of 2 MiB (/proc/sys/vm/nr_hugepages); skipped otherwise.
#
# 1. dump -R: both run on; the image gives every hugetlb vma its page size,
#    the private anonymous one is MAP_HUGETLB memory of its own, and both
#    objects (shared memory, memfd) are hugetlb; the self-check passes.
# 2. dump (kill) + restore -d: the contents are back in hugetlb mappings on
#    the same device, the memfd's private mappings still differ as before
#    (one reads the memfd, one has its copy), the parent and the child share
#    memory again; the self-check passes.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

size=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
[ "$size" = 2048 ] || skip "the default huge page size is '$size' kB, the test wants 2048"
[ "${free:-0}" -ge 8 ] || skip "needs 8 free huge pages, ${free:-0} are free (/proc/sys/vm/nr_hugepages)"

W=$E2E_TMP/w
start_prog mem_hugetlb "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root" "$kid"
pycheck "hugetlb memory in the image" "$E2E_TMP/show.json" "$root" "$kid" <<'EOF2'
show = load(sys.argv[1])
pc = proc(show, int(sys.argv[2]))["core"]
kc = proc(show, int(sys.argv[3]))["core"]
huge = [v for v in pc.get("vmas", []) if u(v.get("huge_page_size", 0))]
if len(huge) != 5 or any(u(v["huge_page_size"]) != 2 << 20 for v in huge):
    fail("the parent has %d hugetlb vmas (want 5): %r" % (len(huge), [(v["start"], v.get("huge_page_size")) for v in huge]))
anon = [v for v in huge if v.get("kind", "ANON_PRIVATE") == "ANON_PRIVATE"]
if len(anon) != 1 or not u(anon[0].get("flags", 0)) & 0x40000 or anon[0].get("shmem_id"):
    fail("the private MAP_HUGETLB vma: %r" % anon)
objs = {u(h["shmem_id"]): u(h["page_size"]) for h in pc.get("huge_shmems", [])}
if sorted(objs.values()) != [2 << 20, 2 << 20]:
    fail("hugetlb objects %r, want two of 2 MiB" % objs)
if not all(u(v["shmem_id"]) in objs for v in huge if v.get("shmem_id")):
    fail("a hugetlb vma maps an object that is not hugetlb")
kh = [v for v in kc.get("vmas", []) if u(v.get("huge_page_size", 0))]
if len(kh) != 2 or not all(u(v.get("shmem_id", 0)) in objs for v in kh):
    fail("the child's hugetlb vmas %r" % kh)
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
wait_gone "$kid" 10
restore_d restore "$E2E_TMP/img" "$root"
E2E_PIDS+=("$kid")
assert_running_untraced "$kid" "child after restore"
grep -q '/anon_hugepage (deleted)' "/proc/$root/maps" || fail "no MAP_HUGETLB memory in the restored parent"
grep -q '/memfd:cf-huge (deleted)' "/proc/$root/maps" || fail "the restored parent does not map the memfd"
check_pass "$W"
check_pass "$W"
log "PASS"
