#include "restore/memory.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <iterator>
#include <cstring>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "common/fault.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/sorted.h"
#include "kinds/aio.h"
#include "kinds/fork_cow.h"
#include "kinds/ghost_file.h"
#include "kinds/hugetlb.h"
#include "pagemap/uffd_track.h"
#include "pagemap/vma.h"
#include "streams/codec.h"
#include "streams/image_file.h"
#include "streams/pages_files.h"

extern "C" const uint8_t cf_restorer_blob_start[];
extern "C" const uint8_t cf_restorer_blob_end[];

namespace cf::restore {
namespace {

using pagemap::kPageSize;
using pagemap::PageUp;

constexpr uint64_t kStackSize = 256 * 1024;
// Slots are kept one page apart (the region's PROT_NONE reservation stays
// between them), so that adjacent slots never merge into one VMA: each VMA
// of the image comes back as a VMA of its own (see KeepApart). But each gap
// is a VMA too, and a process may have up to vm.max_map_count (65530) VMAs:
// two private anonymous slots in a row are packed with no gap instead (see
// PlanSlots), the second one kept apart by the way it is made (MapPacked).
constexpr uint64_t kSlotGap = kPageSize;
constexpr int kMadvPopulateWrite = 23;  // MADV_POPULATE_WRITE, Linux 5.14
constexpr int kMapDroppable = 0x08;     // MAP_DROPPABLE, Linux 6.11
constexpr int kMadvGuardInstall = 102;  // MADV_GUARD_INSTALL, Linux 6.13
constexpr uint64_t kGuard = 16 * kPageSize;
// Kept free below criu-fast's own stack (see PremapMemory).
constexpr uint64_t kStackRoom = uint64_t{4} << 20;
constexpr uint64_t kLowest = 0x10000000;       // keep clear of low addresses
constexpr uint64_t kHighest = 0x7ffffffff000;  // TASK_SIZE on x86-64 (4-level)


bool Moves(const img::Vma& v) {
  return v.kind() != img::Vma::VDSO && v.kind() != img::Vma::VVAR && v.kind() != img::Vma::VVAR_VCLOCK &&
         v.kind() != img::Vma::VSYSCALL;
}

// The highest hole of |len| bytes (plus guards) free of every busy range.
// Sorts |busy_list| in place (a range appended afterwards is merged in by
// the next call, not sorted again with the rest).
Result<uint64_t> FindHole(std::vector<pagemap::PageRange>* busy_list, uint64_t len) {
  std::vector<pagemap::PageRange>& busy = *busy_list;
  // |busy| is usually two sorted lists one after the other (criu-fast's
  // mappings, then the image's, which may be 60,000): merged, not sorted.
  SortRuns(busy, [](const pagemap::PageRange& a, const pagemap::PageRange& b) { return a.start < b.start; });
  uint64_t ceiling = kHighest;
  // Walk gaps from the top down.
  for (auto it = busy.rbegin(); it != busy.rend(); ++it) {
    if (it->start >= ceiling) {
      ceiling = std::min(ceiling, it->start);
      continue;
    }
    const uint64_t floor = std::max(it->end, kLowest);
    if (ceiling > floor && ceiling - floor >= len + 2 * kGuard) return (ceiling - kGuard - len) & ~(kPageSize - 1);
    ceiling = std::min(ceiling, it->start);
  }
  if (ceiling > kLowest && ceiling - kLowest >= len + 2 * kGuard) return (ceiling - kGuard - len) & ~(kPageSize - 1);
  return Errorf("no hole of %lu bytes free in both address spaces", len);
}

// The VmFlags of a dumped VMA (smaps' two-letter names, separated by single
// spaces) that restore acts on, as bits (VmFlagBits): parsed once per VMA.
// A process of 60,000 VMAs was asked about a dozen flags per VMA, one scan
// of the string each: ~20 ms of its premap.
enum VmFlagBit : uint32_t {
  kVmNoReserve = 1u << 0,    // nr: no swap reservation (MAP_NORESERVE)
  kVmDroppable = 1u << 1,    // dp: MAP_DROPPABLE
  kVmNoHuge = 1u << 2,       // nh: MADV_NOHUGEPAGE
  kVmHuge = 1u << 3,         // hg: MADV_HUGEPAGE
  kVmSeqRead = 1u << 4,      // sr: MADV_SEQUENTIAL
  kVmRandRead = 1u << 5,     // rr: MADV_RANDOM
  kVmDontCopy = 1u << 6,     // dc: MADV_DONTFORK
  kVmDontDump = 1u << 7,     // dd: MADV_DONTDUMP
  kVmMergeable = 1u << 8,    // mg: MADV_MERGEABLE
  kVmWipeOnFork = 1u << 9,   // wf: MADV_WIPEONFORK
  kVmLocked = 1u << 10,      // lo: mlock
};

struct VmFlagName {
  char name[3];
  uint32_t bit;
};
constexpr VmFlagName kVmFlagNames[] = {
    {"nr", kVmNoReserve}, {"dp", kVmDroppable}, {"nh", kVmNoHuge},     {"hg", kVmHuge},
    {"sr", kVmSeqRead},   {"rr", kVmRandRead},  {"dc", kVmDontCopy},   {"dd", kVmDontDump},
    {"mg", kVmMergeable}, {"wf", kVmWipeOnFork}, {"lo", kVmLocked},
};

uint32_t VmFlagBits(const img::Vma& v) {
  const std::string& s = v.vmflags();
  const size_t n = s.size();
  uint32_t bits = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && s[j] != ' ') ++j;
    if (j == i + 2) {
      for (const VmFlagName& f : kVmFlagNames) {
        if (s[i] == f.name[0] && s[i + 1] == f.name[1]) bits |= f.bit;
      }
    }
    i = j + 1;
  }
  return bits;
}

// The smaps name of one of the bits.
std::string NameOfVmFlag(uint32_t bit) {
  for (const VmFlagName& f : kVmFlagNames) {
    if (f.bit == bit) return f.name;
  }
  return "?";
}

// VmFlagBits of every VMA of |core|, by index.
std::vector<uint32_t> VmFlagsOf(const img::Process& core) {
  std::vector<uint32_t> bits(static_cast<size_t>(core.vmas_size()));
  for (int i = 0; i < core.vmas_size(); ++i) bits[static_cast<size_t>(i)] = VmFlagBits(core.vmas(i));
  return bits;
}

// Gives the private anonymous slot at |addr| an anon_vma of its own, by
// faulting in its first page (from the kernel, no store of ours: that memory
// is not ASan's to check); PopulateData drops it again unless the image has
// data for it (the anon_vma stays either way). Two adjacent VMAs of the
// image were apart in the target, and the restorer's mremaps must not merge
// them: the kernel merges anonymous VMAs only when they share an anon_vma
// (or one has none) and their page offsets run on. Slots one page apart
// already differ in page offset, but mremap gives a VMA that has no anon_vma
// the offset of its new address, so two adjacent untouched slots would merge.
Status KeepApart(uint64_t addr) {
  void* page = reinterpret_cast<void*>(addr);
  if (madvise(page, kPageSize, kMadvPopulateWrite) != 0) return ErrnoStatus("fault in a premapped vma");
  return OkStatus();
}

// The heap is premapped at its own address when that is free here (the
// restorer then leaves it where it is), not in a slot: a private anonymous
// VMA that holds data keeps, when mremap moves it, the page offset of its
// slot, and brk() grows the heap by merging the new pages into the VMA that
// ends at the break only when the offsets run on. Moved, the heap would grow
// as a second [heap] VMA. The kernel calls [heap] the VMA that overlaps
// [start_brk, brk]. Returns its index, or -1.
int HeapInPlace(const img::Process& core, const std::vector<pagemap::VmaInfo>& self) {
  const uint64_t start_brk = core.mm().start_brk();
  const uint64_t brk = core.mm().brk();
  if (start_brk == 0 || brk < start_brk) return -1;
  for (int i = 0; i < core.vmas_size(); ++i) {
    const img::Vma& v = core.vmas(i);
    if (v.kind() != img::Vma::ANON_PRIVATE || v.shmem_id() != 0) continue;
    if (!(v.start() <= brk && v.end() >= start_brk)) continue;
    const bool taken = std::any_of(self.begin(), self.end(), [&](const pagemap::VmaInfo& m) {
      return m.start < v.end() + kGuard && v.start() < m.end + kGuard;
    });
    if (taken) {
      LOG_DEBUG("restore: heap %#lx-%#lx is taken here: moved from a slot", v.start(), v.end());
      return -1;
    }
    return i;
  }
  return -1;
}

// Whether [lo, hi) overlaps one of |self| (sorted by address).
bool Overlaps(const std::vector<pagemap::VmaInfo>& self, uint64_t lo, uint64_t hi) {
  auto it = std::upper_bound(self.begin(), self.end(), lo,
                             [](uint64_t a, const pagemap::VmaInfo& m) { return a < m.end; });
  return it != self.end() && it->start < hi;
}

bool PlainAnon(const img::Vma& v, uint32_t flags);

// Whether |v| (VmFlagBits |flags|) may be premapped at its own address when
// that is free here: plain anonymous memory, a stack, file and shared memory
// mappings. Not hugetlb memory (mremap-aligned slots), AIO rings or packet
// socket rings (made by their own objects), droppable memory or mappings
// without swap reservation (which may be huge).
bool MapsInPlace(const img::Vma& v, uint32_t flags) {
  if (PlainAnon(v, flags)) return true;
  if (v.huge_page_size() != 0 || v.has_aio() || (flags & (kVmDroppable | kVmNoReserve))) return false;
  switch (v.kind()) {
    case img::Vma::ANON_PRIVATE:
    case img::Vma::ANON_SHARED:
      return true;
    case img::Vma::FILE_PRIVATE:
    case img::Vma::FILE_SHARED:
      return v.path().rfind("socket:[", 0) != 0;
    default:
      return false;
  }
}

// The VMAs premapped at their own address instead of in a slot (by index
// into core.vmas()): the heap where it is free here (HeapInPlace), and the
// VMAs MapsInPlace allows whose range, with guards around it, criu-fast
// does not use here. The restorer neither moves these nor needs a slot for
// them: per VMA that saves a move, and for a packed slot a second map and a
// fault (what a process of 60,000 small mappings pays). Mapped here side by
// side, two VMAs that touch may merge (anonymous memory, or one file at
// offsets that run on, mapped alike); the restorer's mprotect parts them
// again when their protections differ, so of two touching VMAs with the
// same protection only the first stays in place.
std::vector<bool> InPlace(const img::Process& core, const std::vector<uint32_t>& flags,
                          const std::vector<pagemap::VmaInfo>& self) {
  std::vector<bool> in_place(static_cast<size_t>(core.vmas_size()), false);
  const int heap = HeapInPlace(core, self);
  for (int i = 0; i < core.vmas_size(); ++i) {
    const img::Vma& v = core.vmas(i);
    const bool candidate =
        i == heap || (MapsInPlace(v, flags[static_cast<size_t>(i)]) && v.start() >= kGuard &&
                      !Overlaps(self, v.start() - kGuard, v.end() + kGuard));
    if (!candidate) continue;
    if (i > 0 && in_place[static_cast<size_t>(i - 1)]) {
      const img::Vma& prev = core.vmas(i - 1);
      if (prev.end() == v.start() && prev.prot() == v.prot()) {
        if (i != heap) continue;
        in_place[static_cast<size_t>(i - 1)] = false;  // the heap stays in place
      }
    }
    in_place[static_cast<size_t>(i)] = true;
  }
  return in_place;
}

// Whether |v| (VmFlagBits |flags|) is plain private anonymous memory (not a
// stack, droppable memory, a shared object, hugetlb memory, or a mapping
// without swap reservation, which may be huge). Two such slots in a row are
// packed, the second with no gap after the first (PlanSlots).
bool PlainAnon(const img::Vma& v, uint32_t flags) {
  return v.kind() == img::Vma::ANON_PRIVATE && v.shmem_id() == 0 && !(v.flags() & MAP_GROWSDOWN) &&
         v.huge_page_size() == 0 && !(flags & (kVmDroppable | kVmNoReserve));
}

// A packed slot: mapped at |scratch| (the region's spare tail), given its
// own anon_vma there (KeepApart), then moved next to the slot before it.
// Mapped in place it would merge with that slot at once (an anonymous
// mapping without anon_vma joins a neighbour whose page offsets run on);
// moved, it keeps its own anon_vma, which no neighbour shares. The scratch
// range is reserved again afterwards.
Status MapPacked(const img::Vma& v, uint64_t addr, uint64_t scratch) {
  const uint64_t len = v.end() - v.start();
  void* tmp = reinterpret_cast<void*>(scratch);
  if (mmap(tmp, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
    return ErrnoStatus("premap vma " + std::to_string(v.start()));
  }
  RETURN_IF_ERROR(KeepApart(scratch));
  if (mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(addr)) == MAP_FAILED) {
    return ErrnoStatus("move premapped vma " + std::to_string(v.start()) + " into its slot");
  }
  if (mmap(tmp, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
    return ErrnoStatus("reserve the restore region again");
  }
  return OkStatus();
}

// Maps one VMA's slot at |addr| inside the reserved region.
Status MapSlot(const img::Vma& v, uint32_t flags, uint64_t addr, const ShmemFds& shmem, const SocketFds& sockets,
               const Ghosts* ghosts, bool keep_apart) {
  const uint64_t len = v.end() - v.start();
  void* want = reinterpret_cast<void*>(addr);
  void* got = MAP_FAILED;
  const int grows = (v.flags() & MAP_GROWSDOWN) ? MAP_GROWSDOWN : 0;
  // A VMA mapped without swap reservation (MAP_NORESERVE, VmFlag "nr") keeps
  // it: such VMAs can be terabytes large (AddressSanitizer's shadow and
  // allocator space), far more than the kernel lets a mapping commit. Images
  // without VmFlags do not say: a private mapping the kernel refuses to
  // commit (ENOMEM) can only have been made with MAP_NORESERVE, so it is
  // mapped again that way.
  int noreserve = (flags & kVmNoReserve) ? MAP_NORESERVE : 0;
  // Droppable memory (VmFlag "dp", Linux 6.11) is its own mapping type.
  const int type = (flags & kVmDroppable) ? kMapDroppable : MAP_PRIVATE;
  if (v.shmem_id() != 0) {
    // Shared memory (or a private mapping of a memfd): map the object
    // criu-fast recreated and filled (kinds/shmem.h).
    auto it = shmem.find(v.shmem_id());
    if (it == shmem.end()) return Errorf("vma %#lx: shared memory object %u missing", v.start(), v.shmem_id());
    const bool shared = v.kind() == img::Vma::ANON_SHARED;
    const int prot = shared ? PROT_READ | (static_cast<int>(v.prot()) & PROT_WRITE) : PROT_READ | PROT_WRITE;
    got = mmap(want, len, prot, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, it->second,
               static_cast<off_t>(v.pgoff()));
    if (got == MAP_FAILED) return ErrnoStatus("premap shared memory at " + std::to_string(v.start()));
    return OkStatus();
  }
  switch (v.kind()) {
    case img::Vma::ANON_PRIVATE:
      if (v.huge_page_size() != 0) return kinds::MapHugeAnon(v, addr);  // never merges: no KeepApart
      got = mmap(want, len, PROT_READ | PROT_WRITE, type | MAP_ANONYMOUS | MAP_FIXED | grows | noreserve, -1, 0);
      if (got == MAP_FAILED && errno == ENOMEM && !noreserve) {
        LOG_DEBUG("restore: vma %#lx-%#lx cannot be committed: mapped with MAP_NORESERVE", v.start(), v.end());
        noreserve = MAP_NORESERVE;
        got = mmap(want, len, PROT_READ | PROT_WRITE, type | MAP_ANONYMOUS | MAP_FIXED | grows | noreserve, -1, 0);
      }
      break;
    case img::Vma::ANON_SHARED:
      got = mmap(want, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED | noreserve, -1, 0);
      break;
    case img::Vma::FILE_PRIVATE:
    case img::Vma::FILE_SHARED: {
      const bool shared = v.kind() == img::Vma::FILE_SHARED;
      if (v.has_aio()) return kinds::RestoreAioRing(v, addr);
      if (v.path().rfind("socket:[", 0) == 0) {
        // A packet socket's rings: the restored socket has them again.
        auto it = sockets.find(v.inode());
        if (it == sockets.end()) return Errorf("vma %#lx maps %s, which no descriptor holds", v.start(), v.path().c_str());
        const int prot = shared ? static_cast<int>(v.prot()) : PROT_READ | PROT_WRITE;
        got = mmap(want, len, prot, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, it->second,
                   static_cast<off_t>(v.pgoff()));
        break;
      }
      // A deleted file: the one recreated from its ghost (kinds/ghost_file.h).
      const std::string path = kinds::MappedGhostPath(v, ghosts);
      UniqueFd fd(open(path.c_str(), (shared ? O_RDWR : O_RDONLY) | O_CLOEXEC));
      if (!fd.valid() && shared) fd.reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoStatus("open mapped file " + path);
      struct stat sb;
      if (fstat(fd.get(), &sb) != 0) return ErrnoStatus("stat " + path);
      if (!v.has_ghost() && (sb.st_ino != v.inode() || sb.st_dev != v.dev())) {
        return Errorf("mapped file %s changed since the dump (inode %lu, was %lu)", v.path().c_str(), sb.st_ino,
                      v.inode());
      }
      const int prot = shared ? static_cast<int>(v.prot()) : PROT_READ | PROT_WRITE;
      got = mmap(want, len, prot, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED | noreserve, fd.get(),
                 static_cast<off_t>(v.pgoff()));
      break;
    }
    default:
      return Errorf("vma %#lx: kind %d cannot be premapped", v.start(), static_cast<int>(v.kind()));
  }
  if (got == MAP_FAILED) return ErrnoStatus("premap vma " + std::to_string(v.start()) + " " + v.path());
  if (keep_apart && v.kind() == img::Vma::ANON_PRIVATE) return KeepApart(addr);
  return OkStatus();
}

// The VmFlags that madvise() and mlock() set, given again to the slot: the
// flags move with the VMA when the restorer mremaps it.
struct AdviceFlag {
  uint32_t bit;
  int advice;  // or kLock: mlock
};
constexpr int kLock = -1;
constexpr AdviceFlag kAdviceFlags[] = {
    {kVmSeqRead, MADV_SEQUENTIAL}, {kVmRandRead, MADV_RANDOM},     {kVmDontCopy, MADV_DONTFORK},
    {kVmDontDump, MADV_DONTDUMP},  {kVmMergeable, MADV_MERGEABLE}, {kVmHuge, MADV_HUGEPAGE},
    {kVmNoHuge, MADV_NOHUGEPAGE},  {kVmWipeOnFork, MADV_WIPEONFORK}, {kVmLocked, kLock},
};
constexpr uint32_t kAdviceBits = kVmSeqRead | kVmRandRead | kVmDontCopy | kVmDontDump | kVmMergeable | kVmHuge |
                                 kVmNoHuge | kVmWipeOnFork | kVmLocked;

// |flags|: the VMA's VmFlagBits.
Status AdviseLikeDump(const img::Vma& v, uint32_t flags, uint64_t addr) {
  if (!(flags & kAdviceBits)) return OkStatus();  // most VMAs carry none of these
  void* p = reinterpret_cast<void*>(addr);
  const size_t len = v.end() - v.start();
  for (const AdviceFlag& a : kAdviceFlags) {
    if (!(flags & a.bit)) continue;
    const int r = a.advice == kLock ? mlock(p, len) : madvise(p, len, a.advice);
    if (r != 0) {
      return ErrnoStatus(std::string(a.advice == kLock ? "mlock" : "madvise") + " vma " + std::to_string(v.start()) +
                         " (VmFlag " + NameOfVmFlag(a.bit) + ")");
    }
  }
  return OkStatus();
}

// Plain private anonymous memory at [addr, addr + len), read-write.
Status MapRun(uint64_t addr, uint64_t len) {
  if (mmap(reinterpret_cast<void*>(addr), len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
           0) == MAP_FAILED) {
    return ErrnoStatus("premap vmas in place at " + std::to_string(addr));
  }
  return OkStatus();
}

Status PremapVma(const img::Vma& v, const PremappedVma& p, uint64_t scratch, const ShmemFds& shmem,
                 const SocketFds& sockets, const Ghosts* ghosts) {
  if (p.packed) {
    RETURN_IF_ERROR(MapPacked(v, p.premap, scratch));
  } else {
    // A VMA premapped in place never moves: it needs no anon_vma of its own.
    RETURN_IF_ERROR(MapSlot(v, p.vmflags, p.premap, shmem, sockets, ghosts, /*keep_apart=*/p.premap != p.start));
  }
  return AdviseLikeDump(v, p.vmflags, p.premap);
}

// The VMAs handed down by fork that this process keeps (see Inheritance):
// per index into core.vmas(), the address where the parent premapped it
// (here now too), or 0. A VMA is kept where the pagemap has INHERITED pages
// in it or the parent premapped it in place, the parent's image has it
// alike, the parent premapped it, that premap is mapped here, and, when it is a slot, no VMA of this process
// lies there (the restorer moves VMAs into place after unmapping all it
// does not keep: a slot kept must not be in the way).
std::vector<uint64_t> KeptFromParent(const img::Process& core, const Inheritance& in,
                                     const std::vector<pagemap::VmaInfo>& self) {
  std::vector<uint64_t> kept(static_cast<size_t>(core.vmas_size()), 0);
  if (in.parent == nullptr || in.parent_vmas == nullptr || in.pagemap == nullptr) return kept;
  const img::Process& parent = *in.parent;
  const auto& pv = *in.parent_vmas;
  auto mapped_here = [&](uint64_t lo, uint64_t hi) {
    // |self| is sorted: the mappings from lo on must cover [lo, hi) with no gap.
    auto it = std::upper_bound(self.begin(), self.end(), lo,
                               [](uint64_t a, const pagemap::VmaInfo& m) { return a < m.end; });
    uint64_t at = lo;
    for (; it != self.end() && it->start <= at && at < hi; ++it) at = it->end;
    return at >= hi;
  };
  auto in_the_way = [&](uint64_t lo, uint64_t hi) {  // core's VMAs are sorted
    auto it = std::upper_bound(core.vmas().begin(), core.vmas().end(), lo,
                               [](uint64_t a, const img::Vma& w) { return a < w.end(); });
    return it != core.vmas().end() && it->start() < hi;
  };
  // Whether VMA |k| can be kept: its address where the parent premapped it, or 0.
  auto keep = [&](int k) -> uint64_t {
    const img::Vma& v = core.vmas(k);
    auto pi = std::lower_bound(parent.vmas().begin(), parent.vmas().end(), v.start(),
                               [](const img::Vma& p, uint64_t a) { return p.start() < a; });
    if (pi == parent.vmas().end() || !kinds::SameAfterFork(v, *pi)) {
      LOG_DEBUG("restore: vma %#lx differs from the parent's: its inherited pages are filled", v.start());
      return 0;
    }
    auto pp = std::lower_bound(pv.begin(), pv.end(), v.start(),
                               [](const PremappedVma& p, uint64_t a) { return p.start < a; });  // by address
    if (pp == pv.end() || pp->start != v.start() || pp->len != v.end() - v.start()) {
      LOG_DEBUG("restore: vma %#lx: the parent did not premap it alike: filled, not handed down", v.start());
      return 0;
    }
    if (!mapped_here(pp->premap, pp->premap + pp->len)) {
      LOG_DEBUG("restore: vma %#lx: the parent's premap at %#lx is not here: filled, not handed down", v.start(),
                pp->premap);
      return 0;
    }
    if (pp->premap != pp->start && in_the_way(pp->premap, pp->premap + pp->len)) {
      LOG_DEBUG("restore: vma %#lx: the parent's slot at %#lx is in the way of a vma: filled, not handed down",
                v.start(), pp->premap);
      return 0;
    }
    return pp->premap;
  };
  // Every VMA an INHERITED range reaches: one range may run over VMAs that
  // touch (the dump merges adjacent pages).
  int k = 0;  // core's VMAs, walked along the sorted ranges
  for (const img::PageRange& r : in.pagemap->ranges()) {
    if (r.kind() != img::PageRange::INHERITED) continue;
    const uint64_t end = r.vaddr() + r.nr_pages() * kPageSize;
    while (k < core.vmas_size() && core.vmas(k).end() <= r.vaddr()) ++k;
    for (int j = k; j < core.vmas_size() && core.vmas(j).start() < end; ++j) {
      if (kept[static_cast<size_t>(j)] == 0) kept[static_cast<size_t>(j)] = keep(j);
    }
  }
  // A VMA the parent premapped in place is here already, at its address: kept
  // as well, even with no INHERITED page (its pages are all dropped and
  // filled), so that it is neither mapped again in a slot nor moved.
  for (int j = 0; j < core.vmas_size(); ++j) {
    const img::Vma& v = core.vmas(j);
    if (kept[static_cast<size_t>(j)] != 0 || !kinds::ForkInherits(v)) continue;
    auto pp = std::lower_bound(pv.begin(), pv.end(), v.start(),
                               [](const PremappedVma& p, uint64_t a) { return p.start < a; });
    if (pp == pv.end() || pp->start != v.start() || pp->premap != pp->start) continue;
    kept[static_cast<size_t>(j)] = keep(j);
  }
  return kept;
}

// Whether the pagemap has pages (sorted: found by bisection) or guard
// regions (few: each looked at) in [start, end).
bool PagesIn(const img::PageMap& pm, uint64_t start, uint64_t end) {
  auto it = std::upper_bound(pm.ranges().begin(), pm.ranges().end(), start, [](uint64_t a, const img::PageRange& r) {
    return a < r.vaddr() + r.nr_pages() * kPageSize;
  });
  return it != pm.ranges().end() && it->vaddr() < end;
}
bool GuardsIn(const img::PageMap& pm, uint64_t start, uint64_t end) {
  return std::any_of(pm.guards().begin(), pm.guards().end(), [&](const img::PageRange& g) {
    return g.vaddr() < end && start < g.vaddr() + g.nr_pages() * kPageSize;
  });
}

// A VMA handed down by fork: only its INHERITED pages stay (the rest of
// what the parent had there is dropped: zero again, or filled from the
// image), and no guard region of the parent's (|parent|: the parent's
// pagemap, where known).
Status KeepFromParent(const img::Vma& v, const PremappedVma& p, const img::PageMap& pm, const img::PageMap* parent) {
  // Where the parent's image has neither pages nor guard regions in the VMA,
  // the parent put nothing there and fork handed down nothing to drop (a
  // library's text, mapped in place by the parent).
  const uint64_t end = p.start + p.len;
  if (parent != nullptr && !PagesIn(*parent, p.start, end) && !GuardsIn(*parent, p.start, end)) {
    return AdviseLikeDump(v, p.vmflags, p.premap);
  }
  constexpr int kMadvGuardRemove = 103;  // MADV_GUARD_REMOVE, Linux 6.13
  void* base = reinterpret_cast<void*>(p.premap);
  if ((parent == nullptr || GuardsIn(*parent, p.start, end)) &&
      madvise(base, p.len, kMadvGuardRemove) != 0 && errno != EINVAL) {
    return ErrnoStatus("remove guard regions from inherited vma " + std::to_string(v.start()));
  }
  uint64_t at = p.start;
  auto drop = [&](uint64_t to) -> Status {
    if (to > at && madvise(reinterpret_cast<void*>(p.premap + (at - p.start)), to - at, MADV_DONTNEED) != 0) {
      return ErrnoStatus("drop pages of inherited vma " + std::to_string(v.start()));
    }
    return OkStatus();
  };
  // From the first range that ends past the VMA's start (ranges are sorted):
  // a process with many VMAs handed down walks its pagemap once per VMA otherwise.
  auto first = std::upper_bound(pm.ranges().begin(), pm.ranges().end(), at,
                                [](uint64_t a, const img::PageRange& r) { return a < r.vaddr() + r.nr_pages() * kPageSize; });
  for (auto it = first; it != pm.ranges().end(); ++it) {
    const img::PageRange& r = *it;
    const uint64_t rs = r.vaddr(), re = rs + r.nr_pages() * kPageSize;
    if (rs >= end) break;
    if (r.kind() != img::PageRange::INHERITED) continue;
    RETURN_IF_ERROR(drop(std::min(rs, end)));
    at = std::min(re, end);
  }
  RETURN_IF_ERROR(drop(end));
  return AdviseLikeDump(v, p.vmflags, p.premap);
}

}  // namespace

std::optional<uint32_t> PremapProt(const img::Vma& v) {
  // Private anonymous memory is mapped read-write, in a slot (MapSlot,
  // MapPacked) or in place, to be filled; hugetlb memory has its own kind.
  if (v.kind() == img::Vma::ANON_PRIVATE && v.shmem_id() == 0 && v.huge_page_size() == 0) {
    return PROT_READ | PROT_WRITE;
  }
  return std::nullopt;
}

uint64_t RestorerSyscallSite(uint64_t region) {
  const uint8_t* b = cf_restorer_blob_start;
  const size_t n = static_cast<size_t>(cf_restorer_blob_end - cf_restorer_blob_start);
  for (size_t i = 0; i + 1 < n; ++i) {
    if (b[i] == 0x0f && b[i + 1] == 0x05) return region + i;
  }
  return 0;
}

std::vector<PremappedVma> PlanSlots(const img::Process& core, const std::vector<uint32_t>& flags, uint64_t first_slot,
                                    const std::vector<bool>& in_place, const std::vector<uint64_t>& kept) {
  std::vector<PremappedVma> slots;
  slots.reserve(static_cast<size_t>(core.vmas_size()));
  uint64_t slot = first_slot;
  bool prev_plain = false;  // the VMA of the slot just before |slot| is PlainAnon
  for (int i = 0; i < core.vmas_size(); ++i) {
    const img::Vma& v = core.vmas(i);
    if (!Moves(v)) continue;
    PremappedVma p;
    p.vma_index = i;
    p.vmflags = flags[static_cast<size_t>(i)];
    p.start = v.start();
    p.len = v.end() - v.start();
    p.prot = v.prot();
    p.anonymous = v.kind() == img::Vma::ANON_PRIVATE || v.kind() == img::Vma::ANON_SHARED;
    if (static_cast<size_t>(i) < kept.size() && kept[static_cast<size_t>(i)] != 0) {
      p.premap = kept[static_cast<size_t>(i)];
      p.inherited = true;
      prev_plain = false;
    } else if (static_cast<size_t>(i) < in_place.size() && in_place[static_cast<size_t>(i)]) {
      p.premap = p.start;
      prev_plain = false;
    } else {
      const bool plain = PlainAnon(v, p.vmflags);
      if (prev_plain && plain) {
        slot -= kSlotGap;  // no gap after the previous slot
        p.packed = true;
      }
      // mremap moves a hugetlb VMA only between addresses aligned to its
      // page size (PremapMemory leaves room for it).
      if (const uint64_t huge = v.huge_page_size()) slot = (slot + huge - 1) & ~(huge - 1);
      p.premap = slot;
      slot += p.len + kSlotGap;
      prev_plain = plain;
    }
    slots.push_back(p);
  }
  return slots;
}

namespace {

// Our stack grows down on demand, and the kernel lets it grow only while
// no accessible mapping lies within stack_guard_gap (1 MiB by default)
// below it: neither the region nor a VMA in place goes that close. Returns
// the pages the mappings span, as statm counts them.
uint64_t KeepRoomBelowStack(std::vector<pagemap::VmaInfo>* maps) {
  uint64_t pages = 0;
  for (pagemap::VmaInfo& m : *maps) {
    if (m.path != "[vsyscall]") pages += m.pages();  // a gate area: not in the mm's size
    if (m.path == "[stack]") m.start = m.start > kStackRoom ? m.start - kStackRoom : 0;
  }
  return pages;
}

// The mappings of this process: |known|'s when it still covers as many
// pages as the process maps (statm's size: mappings are only ever added or
// removed whole by the code that runs between the parent's read and here,
// e.g. the allocator's new extents, a stack grown), else read anew into
// |fresh|.
Result<const std::vector<pagemap::VmaInfo>*> OwnMaps(const KnownMaps* known, std::vector<pagemap::VmaInfo>* fresh) {
  if (known != nullptr) {
    char buf[128];
    UniqueFd fd(open("/proc/self/statm", O_RDONLY | O_CLOEXEC));
    const ssize_t n = fd.valid() ? read(fd.get(), buf, sizeof(buf) - 1) : -1;
    if (n > 0) {
      buf[n] = '\0';
      if (strtoull(buf, nullptr, 10) == known->pages) return &known->maps;
    }
    LOG_DEBUG("restore: the mappings changed since the fork: read again");
  }
  ASSIGN_OR_RETURN(*fresh, pagemap::ReadVmas(getpid()));
  KeepRoomBelowStack(fresh);
  return fresh;
}

}  // namespace

Result<KnownMaps> MapsForChildren() {
  KnownMaps known;
  ASSIGN_OR_RETURN(known.maps, pagemap::ReadVmas(getpid()));
  for (pagemap::VmaInfo& m : known.maps) {
    if (!m.path.starts_with('[')) m.path.clear();  // nothing else is looked at
  }
  known.pages = KeepRoomBelowStack(&known.maps);
  return known;
}

Result<MemoryLayout> PremapMemory(const img::Process& core, uint64_t args_len, const ShmemFds& shmem,
                                  const SocketFds& sockets, const Ghosts* ghosts, const Inheritance* inherit,
                                  const KnownMaps* known) {
  FAULT_POINT("restore-premap");
  MemoryLayout L;
  // Our mappings, the stack's with room below it (KeepRoomBelowStack).
  std::vector<pagemap::VmaInfo> fresh;
  ASSIGN_OR_RETURN(const std::vector<pagemap::VmaInfo>* own, OwnMaps(known, &fresh));
  const std::vector<pagemap::VmaInfo>& room = *own;
  const std::vector<pagemap::VmaInfo>& self = room;
  // Sized once: in a process forked from criu-fast every first use of a
  // fresh allocation costs copy-on-write faults.
  std::vector<pagemap::PageRange> busy;
  busy.reserve(room.size() + static_cast<size_t>(core.vmas_size()));
  for (const auto& v : room) {
    if (v.path == "[vsyscall]") continue;
    busy.push_back({v.start, v.end});
    if (v.path == "[vvar]" || v.path == "[vvar_vclock]" || v.path == "[vdso]") {
      if (L.vdso_cur == 0 || v.start < L.vdso_cur) L.vdso_cur = v.start;
      L.vdso_len = std::max(L.vdso_len, v.end - L.vdso_cur);
    }
  }
  uint64_t target_vdso_end = 0;
  uint64_t premap_total = 0;
  uint64_t scratch_len = 0;  // room for the largest packed slot (MapPacked)
  const std::vector<uint64_t> kept = inherit ? KeptFromParent(core, *inherit, self) : std::vector<uint64_t>();
  const std::vector<uint32_t> flags = VmFlagsOf(core);
  std::vector<bool> in_place = InPlace(core, flags, room);
  for (size_t i = 0; i < kept.size(); ++i) {
    if (kept[i] != 0) in_place[i] = false;
  }
  for (int i = 0; i < core.vmas_size(); ++i) {
    const img::Vma& v = core.vmas(i);
    if (v.kind() == img::Vma::VSYSCALL) continue;
    busy.push_back({v.start(), v.end()});
    if (v.kind() == img::Vma::VDSO || v.kind() == img::Vma::VVAR || v.kind() == img::Vma::VVAR_VCLOCK) {
      if (L.vdso_target == 0 || v.start() < L.vdso_target) L.vdso_target = v.start();
      target_vdso_end = std::max(target_vdso_end, v.end());
    } else if (!in_place[static_cast<size_t>(i)] && (kept.empty() || kept[static_cast<size_t>(i)] == 0)) {
      premap_total += v.end() - v.start() + kSlotGap + v.huge_page_size();
      if (PlainAnon(v, flags[static_cast<size_t>(i)])) scratch_len = std::max(scratch_len, v.end() - v.start());
    }
  }
  if (L.vdso_target && target_vdso_end - L.vdso_target != L.vdso_len) {
    return Errorf("the vDSO block differs from the dumped one (%lu bytes, was %lu): different kernel?", L.vdso_len,
                  target_vdso_end - L.vdso_target);
  }

  const uint64_t blob_len = PageUp(static_cast<uint64_t>(cf_restorer_blob_end - cf_restorer_blob_start));
  L.args_len = PageUp(args_len);
  const uint64_t threads_len = kThreadStackSize * static_cast<uint64_t>(std::max(0, core.threads_size() - 1));
  // The vDSO block may have to stop on its way (the restorer): room for it
  // before the packed slots' scratch.
  L.region_len = blob_len + L.args_len + kStackSize + threads_len + premap_total + L.vdso_len + scratch_len;
  // The hole is where the maps read above saw none; a mapping made since
  // (the allocator's, for the lists built here: AddressSanitizer's maps and
  // unmaps large blocks all the time) may lie there now. Then the next hole
  // down is tried.
  void* r = MAP_FAILED;
  for (int attempt = 0; attempt < 8; ++attempt) {
    ASSIGN_OR_RETURN(L.region, FindHole(&busy, L.region_len));
    r = mmap(reinterpret_cast<void*>(L.region), L.region_len, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
    if (r != MAP_FAILED || errno != EEXIST) break;
    LOG_DEBUG("restore: the hole at %#lx is taken since the maps were read: the next one down", L.region);
    busy.push_back({L.region, L.region + L.region_len});
  }
  if (r == MAP_FAILED) return ErrnoStatus("reserve the restore region");

  L.blob = L.region;
  if (mmap(reinterpret_cast<void*>(L.blob), blob_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
           -1, 0) == MAP_FAILED) {
    return ErrnoStatus("map the restorer blob");
  }
  memcpy(reinterpret_cast<void*>(L.blob), cf_restorer_blob_start,
         static_cast<size_t>(cf_restorer_blob_end - cf_restorer_blob_start));
  if (mprotect(reinterpret_cast<void*>(L.blob), blob_len, PROT_READ | PROT_EXEC) != 0) {
    return ErrnoStatus("protect the restorer blob");
  }
  L.args = L.blob + blob_len;
  const uint64_t stack = L.args + L.args_len;
  if (mmap(reinterpret_cast<void*>(L.args), L.args_len + kStackSize + threads_len, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
    return ErrnoStatus("map the restorer args and stacks");
  }
  L.stack_top = stack + kStackSize;
  L.thread_stacks = L.stack_top;
  L.thread_stack_size = kThreadStackSize;

  L.first_slot = L.stack_top + threads_len;
  L.vmas = PlanSlots(core, flags, L.first_slot, in_place, kept);
  // Packed slots are made at the tail of the region, past every slot.
  const uint64_t scratch = L.region + L.region_len - scratch_len;
  L.vdso_scratch = scratch - L.vdso_len;
  for (size_t i = 0; i < L.vmas.size(); ++i) {
    PremappedVma& p = L.vmas[i];
    const img::Vma& v = core.vmas(p.vma_index);
    if (p.inherited) {
      RETURN_IF_ERROR(KeepFromParent(v, p, *inherit->pagemap, inherit->parent_pagemap));
      continue;
    }
    if (p.premap == p.start && PlainAnon(v, p.vmflags)) {
      // A run of plain anonymous VMAs in place that touch is one mapping
      // here (they would merge anyway); InPlace gave touching ones
      // different protections, so the restorer's mprotect parts them.
      size_t last = i;
      while (last + 1 < L.vmas.size()) {
        const PremappedVma& q = L.vmas[last + 1];
        if (q.premap != q.start || q.inherited || q.start != L.vmas[last].start + L.vmas[last].len ||
            !PlainAnon(core.vmas(q.vma_index), q.vmflags)) {
          break;
        }
        ++last;
      }
      RETURN_IF_ERROR(MapRun(p.start, L.vmas[last].start + L.vmas[last].len - p.start));
      for (size_t k = i; k <= last; ++k) {
        RETURN_IF_ERROR(AdviseLikeDump(core.vmas(L.vmas[k].vma_index), L.vmas[k].vmflags, L.vmas[k].premap));
      }
      i = last;
      continue;
    }
    RETURN_IF_ERROR(PremapVma(v, p, scratch, shmem, sockets, ghosts));
    p.kept_apart = v.kind() == img::Vma::ANON_PRIVATE && p.premap != p.start;
  }
  LOG_INFO("restore: region %#lx-%#lx holds %zu premapped vmas, %zu of them in place, %zu handed down by fork",
           L.region, L.region + L.region_len, L.vmas.size(),
           static_cast<size_t>(std::count(in_place.begin(), in_place.end(), true)),
           static_cast<size_t>(kept.size() - static_cast<size_t>(std::count(kept.begin(), kept.end(), 0))));
  return L;
}

namespace {

constexpr size_t kMaxIov = 1024;

// One piece of a chunk: |pages| pages from page |src| of the chunk's raw
// bytes that go to |dst| (a slot address in the new process). |fresh|: the
// destination is fresh anonymous memory, zero until written (see
// WritePieces).
struct Piece {
  uint64_t src;
  uint64_t dst;
  uint64_t pages;
  bool fresh = false;
};

// Pieces reserved at once for a chunk (FillPlan::PlaceData): a chunk holds
// 512 pages in images this build writes.
constexpr uint64_t kMaxChunkPieces = 1024;

// The premapped VMA holding target address |addr|, or null. |hint|
// (optional) is the slot of the caller's last lookup, updated: addresses
// looked up in order are found there or in the next slot without a search.
const PremappedVma* FindVma(const std::vector<PremappedVma>& slots, uint64_t addr, size_t* hint = nullptr) {
  if (hint != nullptr) {
    for (size_t i = *hint; i < slots.size() && i <= *hint + 1; ++i) {
      if (slots[i].start <= addr && addr < slots[i].start + slots[i].len) {
        *hint = i;
        return &slots[i];
      }
    }
  }
  auto it = std::upper_bound(slots.begin(), slots.end(), addr,
                             [](uint64_t a, const PremappedVma& v) { return a < v.start; });
  if (it == slots.begin()) return nullptr;
  --it;
  if (addr >= it->start + it->len) return nullptr;
  if (hint != nullptr) *hint = static_cast<size_t>(it - slots.begin());
  return &*it;
}

// Appends |p| to |pieces|, as part of the last piece where both its source
// and its destination run on from it (VMAs premapped in place side by side
// take one write, not one per VMA).
void AddPiece(std::vector<Piece>* pieces, const Piece& p) {
  if (!pieces->empty()) {
    Piece& last = pieces->back();
    if (last.src + last.pages == p.src && last.dst + last.pages * kPageSize == p.dst && last.fresh == p.fresh) {
      last.pages += p.pages;
      return;
    }
  }
  pieces->push_back(p);
}

// Zero bytes at the head or tail of a page are left out of a write into
// fresh memory only from this many on: shorter ones cost more as an extra
// iovec (and a page pinned on its own) than they save in copying.
constexpr size_t kTrimMin = 1024;

// The bytes of |page| (kPageSize) that a write into fresh memory needs:
// [*from, *to), with *from == *to for a page of zeros. Looked at in blocks
// of kBlock bytes (an OR of their words, which the compiler vectorizes):
// zero bytes inside the span are written too, which costs nothing.
constexpr size_t kBlock = 256;
constexpr size_t kBlocks = kPageSize / kBlock;

// Whether block |blk| (kBlock bytes) of |page| is all zeros.
bool ZeroBlock(const uint8_t* page, size_t blk) {
  uint64_t acc = 0;
  for (size_t k = 0; k < kBlock / sizeof(uint64_t); ++k) {
    uint64_t w;
    memcpy(&w, page + blk * kBlock + k * sizeof(w), sizeof(w));  // aliasing-safe: one load
    acc |= w;
  }
  return acc == 0;
}

// The first block of |page| that holds data, or kBlocks for a page of zeros.
size_t FirstDataBlock(const uint8_t* page) {
  size_t a = 0;
  while (a < kBlocks && ZeroBlock(page, a)) ++a;
  return a;
}

void NonZeroSpan(const uint8_t* page, size_t* from, size_t* to) {
  const size_t a = FirstDataBlock(page);
  if (a == kBlocks) {
    *from = *to = 0;
    return;
  }
  size_t b = kBlocks;
  while (ZeroBlock(page, b - 1)) --b;
  *from = a * kBlock < kTrimMin ? 0 : a * kBlock;
  *to = kPageSize - b * kBlock < kTrimMin ? kPageSize : b * kBlock;
}

// Writes the pieces from the chunk's raw bytes at |src| with
// process_vm_writev, |kMaxIov| segments a call; consecutive pieces usually
// read consecutive bytes. In fresh memory (anonymous, zero until written)
// pages of zeros are not written (nor faulted in) and long runs of zeros
// at a page's head or tail are cut off: the kernel then faults in the page
// but copies only its data. A process of many small mappings holds mostly
// such pages (a few bytes each), and the copy was most of the write's time.
Status WritePieces(pid_t pid, const uint8_t* src, const Piece* pieces, size_t n) {
  iovec remote[kMaxIov];
  iovec local[kMaxIov];
  size_t cnt = 0;
  uint64_t total = 0;
  auto flush = [&]() -> Status {
    if (cnt == 0) return OkStatus();
    ssize_t w = process_vm_writev(pid, local, cnt, remote, cnt, 0);
    if (w != static_cast<ssize_t>(total)) {
      return ErrnoStatus(w < 0 ? errno : EIO, "write memory of restored process " + std::to_string(pid));
    }
    cnt = 0;
    total = 0;
    return OkStatus();
  };
  // Adds bytes [s, s + len) to go to |d|, joined to the last segment where
  // both run on from it.
  auto add = [&](const uint8_t* s, uint64_t d, uint64_t len) -> Status {
    if (cnt > 0) {
      iovec& l = local[cnt - 1];
      iovec& r = remote[cnt - 1];
      if (static_cast<uint8_t*>(l.iov_base) + l.iov_len == s &&
          reinterpret_cast<uint64_t>(r.iov_base) + r.iov_len == d) {
        l.iov_len += len;
        r.iov_len += len;
        total += len;
        return OkStatus();
      }
    }
    if (cnt == kMaxIov) RETURN_IF_ERROR(flush());
    local[cnt] = {const_cast<uint8_t*>(s), len};
    remote[cnt] = {reinterpret_cast<void*>(d), len};
    ++cnt;
    total += len;
    return OkStatus();
  };
  for (size_t j = 0; j < n; ++j) {
    const Piece& p = pieces[j];
    const uint8_t* from = src + p.src * kPageSize;
    if (!p.fresh) {
      RETURN_IF_ERROR(add(from, p.dst, p.pages * kPageSize));
      continue;
    }
    for (uint64_t k = 0; k < p.pages; ++k) {
      const uint8_t* page = from + k * kPageSize;
      size_t a = 0, b = 0;
      NonZeroSpan(page, &a, &b);
      if (a < b) RETURN_IF_ERROR(add(page + a, p.dst + k * kPageSize + a, b - a));
    }
  }
  return flush();
}

// Registered ranges of the new process (premap addresses, sorted, apart)
// that pages go into by UFFDIO_COPY (RegisterCopyFill), through |fd|.
struct CopyInto {
  int fd = -1;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::vector<uint64_t> slot_ends;         // where each by_copy slot ends (premap addresses, sorted)
  std::atomic<uint64_t>* pages = nullptr;  // counts the pages copied
};

// Copies |len| bytes (whole pages) from |src| to |dst| in the new process.
// A page there already (the first of a slot KeepApart faulted in) is
// written with process_vm_writev: present, it needs no fault. One
// UFFDIO_COPY fills one VMA only: a run over slots that are separate VMAs
// here (packed slots; VMAs in place that madvise() parted at premap) is
// refused with ENOENT and copied again up to its slot's end, and on.
Status CopyRun(pid_t pid, const CopyInto& into, const uint8_t* src, uint64_t dst, uint64_t len) {
  int stalls = 0;
  uint64_t limit = UINT64_MAX;  // the end of the slot at |dst|, once the kernel refused a run past it
  while (len > 0) {
    // Past the slot the kernel refused a run over (its last page there
    // written below): a copy of no bytes would be refused (EINVAL).
    if (dst >= limit) limit = UINT64_MAX;
    uffdio_copy c{};
    c.dst = dst;
    c.src = reinterpret_cast<uint64_t>(src);
    c.len = std::min(len, limit - dst);
    if (ioctl(into.fd, UFFDIO_COPY, &c) == 0) {
      into.pages->fetch_add(c.len / kPageSize, std::memory_order_relaxed);
      src += c.len;
      dst += c.len;
      len -= c.len;
      limit = UINT64_MAX;
      continue;
    }
    const int err = errno;
    if (err == ENOENT && c.copy <= 0 && limit == UINT64_MAX) {
      auto end = std::upper_bound(into.slot_ends.begin(), into.slot_ends.end(), dst);
      if (end != into.slot_ends.end() && *end < dst + len) {
        limit = *end;
        continue;
      }
    }
    if (c.copy > 0) {
      const uint64_t done = static_cast<uint64_t>(c.copy);
      limit = UINT64_MAX;
      into.pages->fetch_add(done / kPageSize, std::memory_order_relaxed);
      src += done;
      dst += done;
      len -= done;
      stalls = 0;
    }
    if (err == EEXIST) {
      iovec local{const_cast<uint8_t*>(src), kPageSize};
      iovec remote{reinterpret_cast<void*>(dst), kPageSize};
      if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(kPageSize)) {
        return ErrnoStatus("write memory of restored process " + std::to_string(pid));
      }
      src += kPageSize;
      dst += kPageSize;
      len -= kPageSize;
    } else if (err != EAGAIN || (c.copy <= 0 && ++stalls > 1000)) {
      return ErrnoStatus(err, "copy into memory of restored process " + std::to_string(pid));
    }
  }
  return OkStatus();
}

// Writes pieces whose destination lies in |into|'s ranges by UFFDIO_COPY
// (whole pages; in fresh memory, pages of zeros left out), the others with
// WritePieces.
Status WriteOrCopyPieces(pid_t pid, const CopyInto& into, const uint8_t* src, const Piece* pieces, size_t n) {
  if (into.fd < 0 || into.ranges.empty()) return WritePieces(pid, src, pieces, n);
  std::vector<Piece> written;
  for (size_t j = 0; j < n; ++j) {
    Piece p = pieces[j];
    while (p.pages > 0) {
      // The first range that ends past p.dst.
      auto it = std::upper_bound(into.ranges.begin(), into.ranges.end(), p.dst,
                                 [](uint64_t a, const std::pair<uint64_t, uint64_t>& r) { return a < r.second; });
      const bool inside = it != into.ranges.end() && it->first <= p.dst;
      const uint64_t limit = it == into.ranges.end() ? UINT64_MAX : inside ? it->second : it->first;
      const uint64_t take = std::min(p.pages, (limit - p.dst) / kPageSize);
      if (!inside) {
        written.push_back({p.src, p.dst, take, p.fresh});
      } else {
        // Runs of pages with data (all pages where the memory is not fresh).
        const uint8_t* from = src + p.src * kPageSize;
        uint64_t k = 0;
        while (k < take) {
          // (Whether a page is blank needs no more than its first data.)
          auto blank = [&](uint64_t q) { return p.fresh && FirstDataBlock(from + q * kPageSize) == kBlocks; };
          while (k < take && blank(k)) ++k;
          uint64_t e = k;
          while (e < take && !blank(e)) ++e;
          if (e > k) RETURN_IF_ERROR(CopyRun(pid, into, from + k * kPageSize, p.dst + k * kPageSize, (e - k) * kPageSize));
          k = e;
        }
      }
      p.src += take;
      p.dst += take * kPageSize;
      p.pages -= take;
    }
  }
  return WritePieces(pid, src, written.data(), written.size());
}

// Where the pages of one level of a chain go: per chunk, the pieces taken
// from it. Pages a level refers to its parent for are looked up there, so a
// chunk of any level holds only what the levels above did not replace.
// INHERITED pages are the parent process's: where fork did not hand their
// VMA down, they are looked up in its chain (the lineage), as deep as
// needed. DUP pages are another process's (or this one's) DATA pages of the
// same image: their pagemap becomes a level too, once, when first referred
// to. The levels of every chain are numbered one after another.
class FillPlan {
 public:
  FillPlan(const std::vector<PremappedVma>& slots, const PageChain& chain,
           const std::vector<PageChain>& lineage)
      : slots_(slots) {
    Add(chain, std::string());
    for (const PageChain& c : lineage) Add(c, "the parent process's ");
  }

  // Places every page of the top level. |planned| (optional), with one
  // level of DATA and ZERO pages only (data_or_zero_only(0)), is told each
  // chunk c as the plan first reaches it: chunks before c are complete.
  Status Build(std::function<void(size_t)> planned = nullptr) {
    planned_ = std::move(planned);
    for (const Level& L : levels_) {
      if (L.index.data_pages() != L.index.chunk_pages()) {
        return Errorf("%s: the pagemap has %lu data pages, its chunks %lu", L.path.c_str(), L.index.data_pages(),
                      L.index.chunk_pages());
      }
    }
    const img::PageMap& top = *levels_[0].pm;
    for (int i = 0; i < top.ranges_size(); ++i) {
      RETURN_IF_ERROR(Place(0, i, top.ranges(i).vaddr(), top.ranges(i).nr_pages()));
    }
    return OkStatus();
  }

  size_t levels() const { return levels_.size(); }
  bool data_or_zero_only(size_t level) const {
    return levels_[level].pm != nullptr && levels_[level].index.data_or_zero_only();
  }
  const std::string& pages_path(size_t level) const { return levels_[level].path; }
  const img::PageMap& pagemap(size_t level) const { return *levels_[level].pm; }
  const std::vector<std::vector<Piece>>& chunk_pieces(size_t level) const { return levels_[level].pieces; }
  const std::vector<Piece>& zero_pieces() const { return zero_; }

 private:
  static constexpr size_t kNone = ~size_t{0};

  struct Level {
    const img::PageMap* pm = nullptr;    // null: that image has no pages of the process
    std::string path;
    size_t parent = kNone;               // the next level of the same chain
    size_t process_parent = kNone;       // the first level of the parent process's chain
    std::string what;                    // for errors
    const ImagePages* image = nullptr;   // the image's other processes (DUP references)
    DataIndex index;
    size_t chunk_hint = 0;  // the chunk of the last lookup in |index|
    std::vector<std::vector<Piece>> pieces;
  };

  void Add(const PageChain& chain, const std::string& what) {
    const size_t first = levels_.size();
    if (first > 0) {
      // Every level of the chain before refers to this one for INHERITED.
      for (size_t l = chain_first_.back(); l < first; ++l) levels_[l].process_parent = first;
    }
    chain_first_.push_back(first);
    for (size_t l = 0; l < chain.size(); ++l) {
      Level L;
      L.pm = chain[l].pagemap;
      L.path = chain[l].pages_path;
      L.what = what;
      L.parent = l + 1 < chain.size() ? first + l + 1 : kNone;
      L.image = chain[l].image;
      if (L.pm != nullptr) {
        L.index = DataIndex(*L.pm);
        L.pieces.resize(static_cast<size_t>(L.pm->chunks_size()));
        by_pm_.emplace(L.pm, levels_.size());
      }
      levels_.push_back(std::move(L));
    }
    if (chain.empty()) levels_.push_back(Level{});  // a process with no pages: lookups fail clearly
  }

  Status Outside(uint64_t addr) const {
    return Error("pagemap: range at " + std::to_string(addr) + " lies outside every vma", EBADMSG);
  }

  // Pages [addr, addr + pages) of range |ri| of level |l|.
  Status Place(size_t l, int ri, uint64_t addr, uint64_t pages) {
    const img::PageMap& pm = *levels_[l].pm;
    const img::PageRange& r = pm.ranges(ri);
    switch (r.kind()) {
      case img::PageRange::ZERO:
        return PlaceZero(addr, pages);
      case img::PageRange::PARENT:
        return FromLevel(levels_[l].parent, addr, pages, "parent image");
      case img::PageRange::INHERITED:
        return Inherited(l, addr, pages);
      case img::PageRange::DUP:
        return Dup(l, ri, addr, pages);
      case img::PageRange::DATA:
        return PlaceData(l, ri, addr, addr, pages);
      default:
        return Errorf("pagemap: range kind %d not supported", r.kind());
    }
  }

  // DATA pages [src, src + pages) of range |ri| of level |l|, written at
  // [dst, ...) of the target (src == dst but for DUP references).
  Status PlaceData(size_t l, int ri, uint64_t src, uint64_t dst, uint64_t pages) {
    Level& L = levels_[l];
    while (pages > 0) {
      ASSIGN_OR_RETURN(DataIndex::Place at, L.index.Find(*L.pm, ri, src, L.path, &L.chunk_hint));
      uint64_t take = std::min(pages, at.left);
      // Cut at VMA ends: a range may run over adjacent VMAs.
      const PremappedVma* v = FindVma(slots_, dst, &slot_hint_);
      if (!v) return Outside(dst);
      take = std::min(take, (v->start + v->len - dst) / kPageSize);
      if (planned_ && l == 0 && at.chunk > last_planned_) {
        last_planned_ = at.chunk;
        planned_(at.chunk);
      }
      std::vector<Piece>& pieces = L.pieces[at.chunk];
      if (pieces.capacity() == 0) {
        // At most one piece per page: room for all at once (a chunk of
        // single pages grows no further), as many as a chunk may have.
        pieces.reserve(std::min<uint64_t>(L.pm->chunks(static_cast<int>(at.chunk)).nr_pages(), kMaxChunkPieces));
      }
      AddPiece(&pieces, {at.offset, v->premap + (dst - v->start), take, v->anonymous});
      src += take * kPageSize;
      dst += take * kPageSize;
      pages -= take;
    }
    return OkStatus();
  }

  // The level of |pl| (a process's pages in one image), made when first
  // needed.
  Result<size_t> LevelOf(const PageLevel& pl) {
    auto it = by_pm_.find(pl.pagemap);
    if (it != by_pm_.end()) return it->second;
    Level L;
    L.pm = pl.pagemap;
    L.path = pl.pages_path;
    L.image = pl.image;
    L.what = "a process referred to by ";
    L.index = DataIndex(*L.pm);
    if (L.index.data_pages() != L.index.chunk_pages()) {
      return Errorf("%s: the pagemap has %lu data pages, its chunks %lu", L.path.c_str(), L.index.data_pages(),
                    L.index.chunk_pages());
    }
    L.pieces.resize(static_cast<size_t>(L.pm->chunks_size()));
    levels_.push_back(std::move(L));
    by_pm_.emplace(pl.pagemap, levels_.size() - 1);
    return levels_.size() - 1;
  }

  // Pages [addr, addr + pages) of DUP range |ri| of level |l|: the bytes of
  // the DATA pages its reference names in the same image (restore/images.cc
  // checked that they are DATA there).
  Status Dup(size_t l, int ri, uint64_t addr, uint64_t pages) {
    const img::PageRange r = levels_[l].pm->ranges(ri);
    const std::string path = levels_[l].path;
    const ImagePages* image = levels_[l].image;
    const PageLevel* ref = nullptr;
    if (image != nullptr) {
      auto it = image->find(r.ref_pid());
      if (it != image->end() && it->second.pagemap != nullptr) ref = &it->second;
    }
    if (ref == nullptr) {
      return Errorf("%s: the pages at %#lx equal those of process %d, which is not in the image", path.c_str(), addr,
                    r.ref_pid());
    }
    ASSIGN_OR_RETURN(const size_t rl, LevelOf(*ref));
    const img::PageMap& rpm = *levels_[rl].pm;
    uint64_t src = r.ref_vaddr() + (addr - r.vaddr());
    auto jt = std::upper_bound(rpm.ranges().begin(), rpm.ranges().end(), src,
                               [](uint64_t a, const img::PageRange& x) { return a < x.vaddr() + x.nr_pages() * kPageSize; });
    while (pages > 0) {
      if (jt == rpm.ranges().end() || jt->vaddr() > src || jt->kind() != img::PageRange::DATA) {
        return Errorf("%s: the pages at %#lx equal page %#lx of process %d, which its pagemap does not store",
                      path.c_str(), addr, src, r.ref_pid());
      }
      const uint64_t take = std::min(pages, (jt->vaddr() + jt->nr_pages() * kPageSize - src) / kPageSize);
      RETURN_IF_ERROR(PlaceData(rl, static_cast<int>(jt - rpm.ranges().begin()), src, addr, take));
      src += take * kPageSize;
      addr += take * kPageSize;
      pages -= take;
      ++jt;
    }
    return OkStatus();
  }

  // Zero pages in fresh anonymous slots need no writes; in file-backed
  // slots they do (the file has other bytes).
  Status PlaceZero(uint64_t addr, uint64_t pages) {
    while (pages > 0) {
      const PremappedVma* v = FindVma(slots_, addr, &slot_hint_);
      if (!v) return Outside(addr);
      const uint64_t take = std::min(pages, (v->start + v->len - addr) / kPageSize);
      if (!v->anonymous) zero_.push_back({0, v->premap + (addr - v->start), take, false});  // src 0 each: not merged
      addr += take * kPageSize;
      pages -= take;
    }
    return OkStatus();
  }

  // INHERITED pages of level |l|: nothing to write where fork handed the VMA
  // down; elsewhere the parent process's pages at the same addresses.
  Status Inherited(size_t l, uint64_t addr, uint64_t pages) {
    while (pages > 0) {
      const PremappedVma* v = FindVma(slots_, addr, &slot_hint_);
      if (!v) return Outside(addr);
      const uint64_t take = std::min(pages, (v->start + v->len - addr) / kPageSize);
      if (!v->inherited) {
        LOG_DEBUG("restore: %lu inherited pages at %#lx filled from the parent process's image", take, addr);
        RETURN_IF_ERROR(FromLevel(levels_[l].process_parent, addr, take, "parent process"));
      }
      addr += take * kPageSize;
      pages -= take;
    }
    return OkStatus();
  }

  // Pages a level refers to level |l| for (its parent image, or the parent
  // process's pages): every one must be in level |l|.
  Status FromLevel(size_t l, uint64_t addr, uint64_t pages, const char* where) {
    const uint64_t end = addr + pages * kPageSize;
    const img::PageMap* pm = l < levels_.size() ? levels_[l].pm : nullptr;
    if (pm == nullptr) return Errorf("pagemap: page %#lx is in the %s, which has no pages of it", addr, where);
    auto it = std::upper_bound(pm->ranges().begin(), pm->ranges().end(), addr,
                               [](uint64_t a, const img::PageRange& r) { return a < r.vaddr() + r.nr_pages() * kPageSize; });
    while (addr < end) {
      if (it == pm->ranges().end() || it->vaddr() > addr) {
        return Errorf("pagemap: page %#lx is in the %s (%s%s), which does not hold it", addr, where,
                      levels_[l].what.c_str(), levels_[l].path.c_str());
      }
      const uint64_t r_end = it->vaddr() + it->nr_pages() * kPageSize;
      const uint64_t take = (std::min(end, r_end) - addr) / kPageSize;
      RETURN_IF_ERROR(Place(l, static_cast<int>(it - pm->ranges().begin()), addr, take));
      addr += take * kPageSize;
      ++it;
    }
    return OkStatus();
  }

  const std::vector<PremappedVma>& slots_;
  size_t slot_hint_ = 0;  // the slot of the last FindVma
  std::function<void(size_t)> planned_;  // Build's
  size_t last_planned_ = 0;
  std::vector<Level> levels_;
  std::map<const img::PageMap*, size_t> by_pm_;  // the level of each pagemap (the first, if twice)
  std::vector<size_t> chain_first_;
  std::vector<Piece> zero_;
};

}  // namespace

DataIndex::DataIndex(const img::PageMap& pm) {
  data_before_.reserve(static_cast<size_t>(pm.ranges_size()));
  chunk_first_.reserve(static_cast<size_t>(pm.chunks_size()));
  for (const img::PageRange& r : pm.ranges()) {
    data_before_.push_back(data_pages_);
    if (r.kind() == img::PageRange::DATA) {
      data_pages_ += r.nr_pages();
    } else if (r.kind() != img::PageRange::ZERO) {
      data_or_zero_only_ = false;
    }
  }
  for (const img::ChunkRef& ch : pm.chunks()) {
    chunk_first_.push_back(chunk_pages_);
    chunk_pages_ += ch.nr_pages();
  }
}

Result<DataIndex::Place> DataIndex::Find(const img::PageMap& pm, int ri, uint64_t addr, const std::string& path,
                                         size_t* hint) const {
  if (ri < 0 || static_cast<size_t>(ri) >= data_before_.size()) return Error(path + ": no such range", EINVAL);
  const img::PageRange& r = pm.ranges(ri);
  const uint64_t d = data_before_[static_cast<size_t>(ri)] + (addr - r.vaddr()) / kPageSize;  // DATA page ordinal
  // Chunk c holds ordinals [chunk_first_[c], chunk_first_[c + 1]).
  auto holds = [&](size_t c) {
    return c < chunk_first_.size() && chunk_first_[c] <= d && (c + 1 == chunk_first_.size() || d < chunk_first_[c + 1]);
  };
  size_t c;
  if (hint != nullptr && holds(*hint)) {
    c = *hint;
  } else if (hint != nullptr && holds(*hint + 1)) {
    c = *hint + 1;
  } else {
    auto it = std::upper_bound(chunk_first_.begin(), chunk_first_.end(), d);
    if (it == chunk_first_.begin()) return Error(path + ": data pages before the first chunk", EBADMSG);
    c = static_cast<size_t>(it - chunk_first_.begin()) - 1;
  }
  if (hint != nullptr) *hint = c;
  const uint64_t off = d - chunk_first_[c];
  const uint64_t in_chunk = pm.chunks(static_cast<int>(c)).nr_pages();
  if (off >= in_chunk) return Error(path + ": more data pages than chunks hold", EBADMSG);
  return Place{c, off, in_chunk - off};
}

Status PopulateData(const MemoryLayout& L, const img::PageMap& pm) {
  // The first pages KeepApart faulted in that no data will fill: dropped,
  // so that the process has no page it did not have (a page left there
  // would cost memory and show in its pagemap). The pages that data fills
  // stay: that saves a madvise and a TLB flush per mapping.
  // INHERITED pages are written too, where fork did not hand their VMA
  // down (FillPlan): they count as data. The ranges are in address order
  // (as FillPlan reads them too): each first page is looked up by
  // bisection, which reads few of them (PagemapSummary).
  auto written = [](const img::PageRange& r) {
    return r.kind() == img::PageRange::DATA || r.kind() == img::PageRange::PARENT ||
           r.kind() == img::PageRange::INHERITED || r.kind() == img::PageRange::DUP;
  };
  for (const PremappedVma& v : L.vmas) {
    if (!v.kept_apart) continue;
    auto it = std::upper_bound(pm.ranges().begin(), pm.ranges().end(), v.start,
                               [](uint64_t a, const img::PageRange& r) { return a < r.vaddr() + r.nr_pages() * kPageSize; });
    if (it != pm.ranges().end() && it->vaddr() <= v.start && written(*it)) continue;
    if (madvise(reinterpret_cast<void*>(v.premap), kPageSize, MADV_DONTNEED) != 0) {
      return ErrnoStatus("drop the first page of a premapped vma");
    }
  }
  // The pages data fills are not faulted in here (MADV_POPULATE_WRITE):
  // process_vm_writev faults them in as it writes, from criu-fast's fill
  // threads, side by side; faulted in first, each page was walked twice.
  // Measured with the fill's zero skipping (WritePieces): 60,000 one-page
  // mappings and 1 GiB of dense memory both restore with less CPU time.
  return OkStatus();
}

namespace {

// A run of registered pages must hold data in runs of at least this many
// pages on average: UFFDIO_COPY of one page costs more than a write into it
// (1.85 against 1.53 us a page here, 262,144 pages one page apart), of a
// long run less (1.0 against 1.5 us, 60,000 pages in a row).
constexpr uint64_t kCopyMinRun = 4;

// The transparent huge page setting ("always", "madvise", "never"); empty
// where unknown.
const std::string& ThpSetting() {
  static const std::string setting = [] {
    UniqueFd fd(open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC));
    char buf[128];
    const ssize_t n = fd.valid() ? read(fd.get(), buf, sizeof(buf) - 1) : -1;
    if (n <= 0) return std::string();
    buf[n] = '\0';
    const char* a = strchr(buf, '[');
    const char* b = a ? strchr(a, ']') : nullptr;
    return a && b ? std::string(a + 1, b) : std::string();
  }();
  return setting;
}

// Whether a fault would give |v| small pages anyway (a copy maps small
// pages; a write through process_vm_writev may get a huge page).
bool SmallPagesAnyway(const img::Process& core, uint32_t flags) {
  if (core.thp_disabled() || (flags & kVmNoHuge)) return true;
  const std::string& thp = ThpSetting();
  return thp == "never" || (thp == "madvise" && !(flags & kVmHuge));
}

}  // namespace

Result<CopyFill> RegisterCopyFill(const img::Process& core, const img::PageMap& pm, const PagemapSummary& summary,
                                  MemoryLayout* L) {
  CopyFill fill;
  const char* env = getenv("CF_FILL_COPY");
  if (env != nullptr && strcmp(env, "0") == 0) return fill;
  const size_t nr = static_cast<size_t>(pm.ranges_size());
  if (!summary.data_or_zero_only || summary.data_pages_before.size() != nr + 1 ||
      summary.data_ranges_before.size() != nr + 1) {
    return fill;
  }
  // Runs of slots next to each other (in the region and at their targets)
  // that qualify, each with its data pages and the runs they come in.
  struct Group {
    size_t first, last;  // into L->vmas
    uint64_t pages = 0, runs = 0;
  };
  std::vector<Group> groups;
  auto qualifies = [&](const PremappedVma& v) {
    if (v.inherited || !v.anonymous || v.vma_index < 0 || v.vma_index >= core.vmas_size()) return false;
    const img::Vma& vma = core.vmas(v.vma_index);
    return PlainAnon(vma, v.vmflags) && SmallPagesAnyway(core, v.vmflags);
  };
  for (size_t i = 0; i < L->vmas.size(); ++i) {
    const PremappedVma& v = L->vmas[i];
    if (!qualifies(v)) continue;
    if (!groups.empty()) {
      Group& g = groups.back();
      const PremappedVma& p = L->vmas[g.last];
      if (g.last + 1 == i && p.premap + p.len == v.premap && p.start + p.len == v.start) {
        g.last = i;
        continue;
      }
    }
    groups.push_back({i, i});
  }
  // The data of each group: the DATA ranges that reach into it, found by
  // bisection (the ranges are in address order), counted by the summary;
  // the first and the last may reach out of it.
  const auto& rs = pm.ranges();
  auto end_of = [](const img::PageRange& q) { return q.vaddr() + q.nr_pages() * kPageSize; };
  for (Group& g : groups) {
    const uint64_t lo = L->vmas[g.first].start;
    const uint64_t hi = L->vmas[g.last].start + L->vmas[g.last].len;
    auto b = std::upper_bound(rs.begin(), rs.end(), lo, [&](uint64_t a, const img::PageRange& q) { return a < end_of(q); });
    auto e = std::lower_bound(b, rs.end(), hi, [](const img::PageRange& q, uint64_t a) { return q.vaddr() < a; });
    if (b >= e) continue;
    const auto i0 = static_cast<size_t>(b - rs.begin()), i1 = static_cast<size_t>(e - rs.begin());
    g.pages = summary.data_pages_before[i1] - summary.data_pages_before[i0];
    g.runs = summary.data_ranges_before[i1] - summary.data_ranges_before[i0];
    if (b->kind() == img::PageRange::DATA && b->vaddr() < lo) g.pages -= (lo - b->vaddr()) / kPageSize;
    const img::PageRange& last = *(e - 1);
    if (last.kind() == img::PageRange::DATA && end_of(last) > hi) g.pages -= (end_of(last) - hi) / kPageSize;
  }
  for (const Group& g : groups) {
    if (g.runs == 0 || g.pages < kCopyMinRun * g.runs) continue;
    if (fill.uffd < 0) {
      // User-mode only: a fault from the kernel in a registered range (a
      // stray process_vm_writev) fails instead of waiting for an answer.
      Result<UniqueFd> fd = pagemap::OpenUserfaultfd();
      if (!fd.ok()) return fill;  // no userfaultfd here: process_vm_writev fills all
      fill.uffd = fd->release();
    }
    const uint64_t start = L->vmas[g.first].premap;
    const uint64_t end = L->vmas[g.last].premap + L->vmas[g.last].len;
    ASSIGN_OR_RETURN(const bool registered, pagemap::RegisterForCopy(fill.uffd, start, end));
    if (!registered) continue;  // this group by process_vm_writev
    fill.ranges.emplace_back(start, end);
    for (size_t i = g.first; i <= g.last; ++i) L->vmas[i].by_copy = true;
  }
  if (fill.uffd >= 0 && fill.ranges.empty()) {
    close(fill.uffd);
    fill.uffd = -1;
  }
  return fill;
}

Status EndCopyFill(CopyFill* fill) {
  if (fill->uffd < 0) return OkStatus();
  Status s;
  for (const auto& [start, end] : fill->ranges) {
    if (start >= end) continue;  // unregistered by EarlyProtect
    if (Status u = pagemap::Unregister(fill->uffd, start, end); !u.ok() && s.ok()) s = u;
  }
  close(fill->uffd);
  fill->uffd = -1;
  fill->ranges.clear();
  return s;
}

void SetFillWord(uint32_t* word, uint32_t value) {
  __atomic_store_n(word, value, __ATOMIC_RELEASE);
  syscall(SYS_futex, word, FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

bool EarlyProtect::Qualifies(const PremappedVma& v) {
  return v.by_copy && v.premap == v.start && !v.inherited && v.prot != (PROT_READ | PROT_WRITE);
}

EarlyProtect::EarlyProtect(const PagemapSummary& summary, const MemoryLayout& L, const CopyFill& fill) {
  if (fill.uffd < 0 || summary.chunk_first.empty()) return;
  std::vector<uint64_t> in_place;  // where the by_copy VMAs in place begin, in order
  for (size_t i = 0; i < L.vmas.size(); ++i) {
    const PremappedVma& p = L.vmas[i];
    if (!p.by_copy || p.premap != p.start || p.inherited) continue;
    in_place.push_back(p.start);
    if (Qualifies(p)) todo_.push_back(i);
  }
  // A registered range is one group of slots (RegisterCopyFill): all in
  // place or all in the restore region.
  for (const auto& range : fill.ranges) {
    in_place_ranges_.push_back(std::binary_search(in_place.begin(), in_place.end(), range.first));
  }
  chunk_first_ = &summary.chunk_first;
}

Status EarlyProtect::Advance(uint32_t chunks, CopyFill* fill, MemoryLayout* L) {
  if (chunk_first_ == nullptr) return OkStatus();
  const uint64_t below = chunks >= chunk_first_->size() ? UINT64_MAX : (*chunk_first_)[chunks];
  size_t last = next_;
  while (last < todo_.size() && L->vmas[todo_[last]].start + L->vmas[todo_[last]].len <= below) ++last;
  if (last == next_) return OkStatus();
  // Everything registered in place below the end of the last VMA to
  // protect is written: unregistered in one call per range (ranges in place
  // are at their target addresses; the others, in the restore region, are
  // not compared with |below| and wait for EndCopyFill).
  const uint64_t hi = L->vmas[todo_[last - 1]].start + L->vmas[todo_[last - 1]].len;
  for (size_t i = 0; i < fill->ranges.size() && i < in_place_ranges_.size(); ++i) {
    auto& [start, end] = fill->ranges[i];
    if (!in_place_ranges_[i] || start >= hi || start >= end) continue;
    const uint64_t upto = std::min(end, hi);
    RETURN_IF_ERROR(pagemap::Unregister(fill->uffd, start, upto));
    start = upto;
  }
  for (; next_ < last; ++next_) {
    PremappedVma& p = L->vmas[todo_[next_]];
    if (mprotect(reinterpret_cast<void*>(p.start), p.len, static_cast<int>(p.prot)) != 0) {
      return ErrnoStatus("protect vma " + std::to_string(p.start));
    }
    p.protected_early = true;
  }
  return OkStatus();
}

Status InstallGuards(const MemoryLayout& L, const img::PageMap& pm) {
  for (const img::PageRange& g : pm.guards()) {
    const PremappedVma* v = FindVma(L.vmas, g.vaddr());
    const uint64_t len = g.nr_pages() * kPageSize;
    if (!v || g.nr_pages() == 0 || len > v->start + v->len - g.vaddr()) {
      return Error("pagemap: guard region at " + std::to_string(g.vaddr()) + " lies outside every vma", EBADMSG);
    }
    void* at = reinterpret_cast<void*>(v->premap + (g.vaddr() - v->start));
    if (madvise(at, len, kMadvGuardInstall) != 0) {
      return ErrnoStatus("install the guard region at " + std::to_string(g.vaddr()));
    }
  }
  return OkStatus();
}

Status FillMemory(pid_t pid, const std::vector<PremappedVma>& slots, const PageChain& chain, int jobs,
                  const std::vector<PageChain>& lineage, int copy_fd, uint64_t* pages_copied, uint32_t* progress) {
  FAULT_POINT("restore-fill");
  if (chain.empty() || chain[0].pagemap == nullptr) return Error("restore: no pagemap to fill memory from", EINVAL);
  FillPlan plan(slots, chain, lineage);
  // One level of DATA and ZERO pages (no parent image, nothing from other
  // processes): the plan goes through the chunks in order, and each chunk is
  // filled as soon as the plan has gone past it (workers start while it is
  // made, on the other cores). Else the whole plan comes first.
  const bool overlap = jobs > 1 && plan.levels() == 1 && plan.data_or_zero_only(0);
  const size_t nchunks = static_cast<size_t>(plan.pagemap(0).chunks_size());
  std::atomic<size_t> planned{0};  // with |overlap|: the chunks before it are planned
  if (!overlap) RETURN_IF_ERROR(plan.Build());
  auto write_zeros = [&]() -> Status {
    if (plan.zero_pieces().empty()) return OkStatus();
    const std::vector<uint8_t> zeros(kPageSize * 512, 0);
    for (const Piece& z : plan.zero_pieces()) {
      for (uint64_t done = 0; done < z.pages;) {
        const uint64_t n = std::min<uint64_t>(z.pages - done, 512);
        Piece p{0, z.dst + done * kPageSize, n, false};
        RETURN_IF_ERROR(WritePieces(pid, zeros.data(), &p, 1));
        done += n;
      }
    }
    return OkStatus();
  };
  if (!overlap) RETURN_IF_ERROR(write_zeros());

  std::atomic<uint64_t> copied{0};
  CopyInto into;
  into.pages = &copied;
  if (copy_fd >= 0) {
    into.fd = copy_fd;
    for (const PremappedVma& v : slots) {
      if (!v.by_copy) continue;
      into.slot_ends.push_back(v.premap + v.len);
      if (!into.ranges.empty() && into.ranges.back().second == v.premap) {
        into.ranges.back().second = v.premap + v.len;
      } else {
        into.ranges.emplace_back(v.premap, v.premap + v.len);
      }
    }
    std::sort(into.ranges.begin(), into.ranges.end());
    std::sort(into.slot_ends.begin(), into.slot_ends.end());
  }

  // Every chunk of every level that holds a page to write, one task each.
  struct Task {
    size_t level;
    int chunk;
  };
  std::vector<Task> tasks;
  std::vector<std::optional<streams::PagesReader>> readers(plan.levels());
  if (overlap && nchunks > 0) {
    // Every chunk, in order (one the plan leaves empty is skipped then).
    for (size_t c = 0; c < nchunks; ++c) tasks.push_back({0, static_cast<int>(c)});
    ASSIGN_OR_RETURN(streams::PagesReader r, streams::PagesReader::Open(plan.pagemap(0), plan.pages_path(0)));
    readers[0].emplace(std::move(r));
  }
  for (size_t l = 0; l < plan.levels() && !overlap; ++l) {
    const auto& per_chunk = plan.chunk_pieces(l);
    bool any = false;
    for (size_t c = 0; c < per_chunk.size(); ++c) {
      if (per_chunk[c].empty()) continue;
      tasks.push_back({l, static_cast<int>(c)});
      any = true;
    }
    if (!any) continue;
    ASSIGN_OR_RETURN(streams::PagesReader r, streams::PagesReader::Open(plan.pagemap(l), plan.pages_path(l)));
    readers[l].emplace(std::move(r));
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  // The leading chunks written, told to the process (|progress|) as they
  // grow: with one level, tasks are its chunks in order.
  const bool publish = progress != nullptr && copy_fd >= 0 && plan.levels() == 1;
  std::vector<uint8_t> task_done(publish ? tasks.size() : 0);
  size_t done_prefix = 0;
  uint32_t published = 0;
  auto written = [&](size_t ti) {
    std::lock_guard<std::mutex> lock(mu);
    task_done[ti] = 1;
    while (done_prefix < tasks.size() && task_done[done_prefix]) ++done_prefix;
    const uint64_t chunks = done_prefix < tasks.size() ? static_cast<uint64_t>(tasks[done_prefix].chunk)
                                                       : static_cast<uint64_t>(plan.pagemap(0).chunks_size());
    if (chunks > published && chunks < kFillDone) {
      published = static_cast<uint32_t>(chunks);
      SetFillWord(progress, published);
    }
  };
  std::atomic<bool> stop{false};  // a failure: workers return
  auto fail = [&](const Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    if (first_error.ok()) first_error = s;
    next.store(tasks.size());
    stop.store(true);
  };
  auto worker = [&]() {
    streams::Record rec;
    std::vector<uint8_t> raw;
    for (;;) {
      const size_t ti = next.fetch_add(1);
      if (ti >= tasks.size()) return;
      const Task& t = tasks[ti];
      const img::PageMap& pm = plan.pagemap(t.level);
      const int i = t.chunk;
      if (overlap) {
        // Until the plan has gone past this chunk (or failed: then
        // |planned| is nchunks and |stop| set).
        for (size_t got = planned.load(std::memory_order_acquire); got <= static_cast<size_t>(i);
             got = planned.load(std::memory_order_acquire)) {
          planned.wait(got, std::memory_order_acquire);
        }
        if (stop.load()) return;
        if (plan.chunk_pieces(0)[static_cast<size_t>(i)].empty()) {
          if (publish) written(ti);
          continue;
        }
      }
      const std::string& path = readers[t.level]->path_of(i);
      Status s = readers[t.level]->ReadChunk(i, &rec);
      // A raw chunk is written from the record itself; others are decoded.
      const uint8_t* data = nullptr;
      size_t size = 0;
      streams::ChunkHeader ch{};
      if (s.ok() && rec.type == streams::RecordType::kChunk && rec.payload.size() >= sizeof(ch)) {
        memcpy(&ch, rec.payload.data(), sizeof(ch));
      }
      if (s.ok() && ch.codec == static_cast<uint32_t>(streams::Codec::kNone) &&
          rec.payload.size() >= sizeof(ch) && ch.raw_size == rec.payload.size() - sizeof(ch)) {
        data = rec.payload.data() + sizeof(ch);
        size = rec.payload.size() - sizeof(ch);
      } else if (s.ok()) {
        s = streams::DecodeChunk(rec, &raw, path);
        data = raw.data();
        size = raw.size();
      }
      if (s.ok() && size != pm.chunks(i).nr_pages() * kPageSize) {
        s = Errorf("%s: chunk %d holds %zu bytes, pagemap says %lu pages", path.c_str(), i, size,
                   pm.chunks(i).nr_pages());
      }
      const auto& pieces = plan.chunk_pieces(t.level)[static_cast<size_t>(i)];
      if (s.ok()) s = WriteOrCopyPieces(pid, into, data, pieces.data(), pieces.size());
      if (s.ok() && publish) written(ti);
      if (!s.ok()) {
        fail(s);
        return;
      }
    }
  };
  // A process that protects its VMAs as they are filled (EarlyProtect)
  // keeps a core busy with it: one thread fewer here. (Two threads copying
  // into one process contend in its page tables anyway: 60,000 one-page
  // mappings took 90 ms on one thread, 73 on two.)
  const bool protects = publish && std::any_of(slots.begin(), slots.end(), EarlyProtect::Qualifies);
  const int n = std::max(1, std::min(protects ? jobs - 1 : jobs, static_cast<int>(tasks.size())));
  std::vector<std::thread> threads;
  for (int t = 1; t < n; ++t) threads.emplace_back(worker);
  if (overlap) {
    Status built = plan.Build([&](size_t chunk) {
      planned.store(chunk, std::memory_order_release);
      planned.notify_all();
    });
    if (built.ok()) built = write_zeros();
    if (!built.ok()) fail(built);  // workers waiting on the plan return
    planned.store(nchunks, std::memory_order_release);
    planned.notify_all();
  }
  worker();
  for (auto& t : threads) t.join();
  if (copy_fd >= 0) LOG_DEBUG("restore: %lu pages of process %d filled by UFFDIO_COPY", copied.load(), pid);
  if (pages_copied != nullptr) *pages_copied += copied.load();
  return first_error;
}

}  // namespace cf::restore
