// hugetlb memory: mappings made with MAP_HUGETLB (private or shared) and
// memfds made with MFD_HUGETLB, whose pages come from the pool of huge pages
// (/proc/sys/vm/nr_hugepages), 2 MiB or 1 GiB each.
//
// Each such VMA is a file of the kernel's internal hugetlbfs mount
// ("/anon_hugepage (deleted)" or "/memfd:NAME (deleted)" in maps, VmFlag
// "ht"), and comes back as the same kind of mapping with the same page size
// and the same device in maps:
//  - private anonymous (MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB): an
//    ANON_PRIVATE vma with MAP_HUGETLB in its flags; its pages are dumped
//    and filled like any private memory, through 4 KiB views of the huge
//    pages (PAGEMAP_SCAN and process_vm_readv/writev handle hugetlb VMAs);
//  - shared anonymous and hugetlb memfds: Shmem objects (kinds/shmem.h)
//    listed in Process.huge_shmems with their page size. Their bytes are read
//    with pread, never through a mapping: reading a hole of a shared hugetlb
//    mapping would take a huge page from the pool for it (and SIGBUS when the
//    pool is empty), while pread returns zeros for holes.
// The kernel moves a hugetlb VMA (mremap) only between addresses aligned to
// its page size: restore plans such slots aligned (restore/memory.cc).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "common/fd.h"
#include "common/mapping.h"
#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"
#include "pagemap/vma.h"

namespace cf::kinds {

// The huge page size of the hugetlbfs file |fd|, or 0 for any other file.
Result<uint64_t> HugePageSize(int fd);

// --- dump

// Describes hugetlb VMA |v| (VmFlag "ht") of |pid| in |m|: its page size and,
// for private anonymous memory, kind ANON_PRIVATE with MAP_HUGETLB.
Status DescribeHugetlbVma(pid_t pid, const pagemap::VmaInfo& v, img::Vma* m);

// Reads |len| bytes of hugetlb object |fd| from |offset| into |buf|, a new
// mapping of criu-fast (holes read as zeros; no huge page is taken).
Status ReadHugeObject(int fd, uint64_t offset, uint64_t len, SharedMapping* buf);

// --- restore

// The mmap()/memfd_create() flag bits that ask for pages of |page_size|
// (MAP_HUGE_2MB and the like; MFD_HUGE_* are the same bits).
int HugeSizeFlags(uint64_t page_size);

// Makes a hugetlb object like |s| (pages of |page_size|), mapped shared and
// writable at |view|, and returns a descriptor of it.
Result<UniqueFd> MakeHugeObject(const img::Shmem& s, uint64_t page_size, SharedMapping* view);

// Maps private hugetlb VMA |v| at |addr| (aligned to its page size).
Status MapHugeAnon(const img::Vma& v, uint64_t addr);

// --- check
// memfd_create(MFD_HUGETLB): the kernel has hugetlbfs (no page is taken).
ProbeResult ProbeHugetlb();

}  // namespace cf::kinds
