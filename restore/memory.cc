#include "restore/memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string_view>
#include <thread>

#include "common/fault.h"
#include "common/fd.h"
#include "common/log.h"
#include "pagemap/vma.h"
#include "streams/codec.h"
#include "streams/image_file.h"

extern "C" const uint8_t cf_restorer_blob_start[];
extern "C" const uint8_t cf_restorer_blob_end[];

namespace cf::restore {
namespace {

using pagemap::kPageSize;
using pagemap::PageUp;

constexpr uint64_t kStackSize = 256 * 1024;
// Slots are kept one page apart (the region's PROT_NONE reservation stays
// between them), so that adjacent slots never merge into one VMA: each VMA
// of the image comes back as a VMA of its own (see KeepApart).
constexpr uint64_t kSlotGap = kPageSize;
constexpr int kMadvPopulateWrite = 23;  // MADV_POPULATE_WRITE, Linux 5.14
constexpr int kMapDroppable = 0x08;     // MAP_DROPPABLE, Linux 6.11
constexpr int kMadvGuardInstall = 102;  // MADV_GUARD_INSTALL, Linux 6.13
constexpr uint64_t kGuard = 16 * kPageSize;
constexpr uint64_t kLowest = 0x10000000;       // keep clear of low addresses
constexpr uint64_t kHighest = 0x7ffffffff000;  // TASK_SIZE on x86-64 (4-level)


bool Moves(const img::Vma& v) {
  return v.kind() != img::Vma::VDSO && v.kind() != img::Vma::VVAR && v.kind() != img::Vma::VVAR_VCLOCK &&
         v.kind() != img::Vma::VSYSCALL;
}

// The highest hole of |len| bytes (plus guards) free of every busy range.
Result<uint64_t> FindHole(std::vector<pagemap::PageRange> busy, uint64_t len) {
  std::sort(busy.begin(), busy.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
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

// Whether the dumped VMA carried smaps VmFlag |flag| ("nr": VM_NORESERVE).
bool HasVmFlag(const img::Vma& v, std::string_view flag) {
  std::string_view rest = v.vmflags();
  while (!rest.empty()) {
    const size_t sp = rest.find(' ');
    if (rest.substr(0, sp) == flag) return true;
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  return false;
}

// Gives the private anonymous slot at |addr| an anon_vma of its own, by
// faulting in its first page (from the kernel, no store of ours: that memory
// is not ASan's to check) and dropping it again. Two adjacent VMAs of the
// image were apart in the target, and the restorer's mremaps must not merge
// them: the kernel merges anonymous VMAs only when they share an anon_vma
// (or one has none) and their page offsets run on. Slots one page apart
// already differ in page offset, but mremap gives a VMA that has no anon_vma
// the offset of its new address, so two adjacent untouched slots would merge.
Status KeepApart(uint64_t addr) {
  void* page = reinterpret_cast<void*>(addr);
  if (madvise(page, kPageSize, kMadvPopulateWrite) != 0) return ErrnoStatus("fault in a premapped vma");
  if (madvise(page, kPageSize, MADV_DONTNEED) != 0) {
    return ErrnoStatus("drop the first page of a premapped vma");
  }
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

// Maps one VMA's slot at |addr| inside the reserved region.
Status MapSlot(const img::Vma& v, uint64_t addr, const ShmemFds& shmem) {
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
  int noreserve = HasVmFlag(v, "nr") ? MAP_NORESERVE : 0;
  // Droppable memory (VmFlag "dp", Linux 6.11) is its own mapping type.
  const int type = HasVmFlag(v, "dp") ? kMapDroppable : MAP_PRIVATE;
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
      UniqueFd fd(open(v.path().c_str(), (shared ? O_RDWR : O_RDONLY) | O_CLOEXEC));
      if (!fd.valid() && shared) fd.reset(open(v.path().c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoStatus("open mapped file " + v.path());
      struct stat sb;
      if (fstat(fd.get(), &sb) != 0) return ErrnoStatus("stat " + v.path());
      if (sb.st_ino != v.inode() || sb.st_dev != v.dev()) {
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
  if (v.kind() == img::Vma::ANON_PRIVATE) return KeepApart(addr);
  return OkStatus();
}

// The VmFlags that madvise() and mlock() set, given again to the slot: the
// flags move with the VMA when the restorer mremaps it.
struct AdviceFlag {
  const char* flag;
  int advice;  // or kLock: mlock
};
constexpr int kLock = -1;
constexpr AdviceFlag kAdviceFlags[] = {
    {"sr", MADV_SEQUENTIAL}, {"rr", MADV_RANDOM},       {"dc", MADV_DONTFORK},    {"dd", MADV_DONTDUMP},
    {"mg", MADV_MERGEABLE},  {"hg", MADV_HUGEPAGE},     {"nh", MADV_NOHUGEPAGE},  {"wf", MADV_WIPEONFORK},
    {"lo", kLock},
};

Status AdviseLikeDump(const img::Vma& v, uint64_t addr) {
  void* p = reinterpret_cast<void*>(addr);
  const size_t len = v.end() - v.start();
  for (const AdviceFlag& a : kAdviceFlags) {
    if (!HasVmFlag(v, a.flag)) continue;
    const int r = a.advice == kLock ? mlock(p, len) : madvise(p, len, a.advice);
    if (r != 0) {
      return ErrnoStatus(std::string(a.advice == kLock ? "mlock" : "madvise") + " vma " + std::to_string(v.start()) +
                         " (VmFlag " + a.flag + ")");
    }
  }
  return OkStatus();
}

Status PremapVma(const img::Vma& v, uint64_t addr, const ShmemFds& shmem) {
  RETURN_IF_ERROR(MapSlot(v, addr, shmem));
  return AdviseLikeDump(v, addr);
}

}  // namespace

std::vector<PremappedVma> PlanSlots(const img::Process& core, uint64_t first_slot, int in_place_vma) {
  std::vector<PremappedVma> slots;
  uint64_t slot = first_slot;
  for (int i = 0; i < core.vmas_size(); ++i) {
    const img::Vma& v = core.vmas(i);
    if (!Moves(v)) continue;
    PremappedVma p;
    p.vma_index = i;
    p.start = v.start();
    p.len = v.end() - v.start();
    p.premap = i == in_place_vma ? p.start : slot;
    p.prot = v.prot();
    p.anonymous = v.kind() == img::Vma::ANON_PRIVATE || v.kind() == img::Vma::ANON_SHARED;
    slots.push_back(p);
    slot += p.len + kSlotGap;
  }
  return slots;
}

Result<MemoryLayout> PremapMemory(const img::Process& core, uint64_t args_len, const ShmemFds& shmem) {
  FAULT_POINT("restore-premap");
  MemoryLayout L;
  ASSIGN_OR_RETURN(std::vector<pagemap::VmaInfo> self, pagemap::ReadVmas(getpid()));
  std::vector<pagemap::PageRange> busy;
  for (const auto& v : self) {
    if (v.path == "[vsyscall]") continue;
    busy.push_back({v.start, v.end});
    if (v.path == "[vvar]" || v.path == "[vvar_vclock]" || v.path == "[vdso]") {
      if (L.vdso_cur == 0 || v.start < L.vdso_cur) L.vdso_cur = v.start;
      L.vdso_len = std::max(L.vdso_len, v.end - L.vdso_cur);
    }
  }
  uint64_t target_vdso_end = 0;
  uint64_t premap_total = 0;
  for (const img::Vma& v : core.vmas()) {
    if (v.kind() == img::Vma::VSYSCALL) continue;
    busy.push_back({v.start(), v.end()});
    if (v.kind() == img::Vma::VDSO || v.kind() == img::Vma::VVAR || v.kind() == img::Vma::VVAR_VCLOCK) {
      if (L.vdso_target == 0 || v.start() < L.vdso_target) L.vdso_target = v.start();
      target_vdso_end = std::max(target_vdso_end, v.end());
    } else {
      premap_total += v.end() - v.start() + kSlotGap;
    }
  }
  if (L.vdso_target && target_vdso_end - L.vdso_target != L.vdso_len) {
    return Errorf("the vDSO block differs from the dumped one (%lu bytes, was %lu): different kernel?", L.vdso_len,
                  target_vdso_end - L.vdso_target);
  }

  const uint64_t blob_len = PageUp(static_cast<uint64_t>(cf_restorer_blob_end - cf_restorer_blob_start));
  L.args_len = PageUp(args_len);
  const uint64_t threads_len = kThreadStackSize * static_cast<uint64_t>(std::max(0, core.threads_size() - 1));
  L.region_len = blob_len + L.args_len + kStackSize + threads_len + premap_total;
  ASSIGN_OR_RETURN(L.region, FindHole(busy, L.region_len));
  void* r = mmap(reinterpret_cast<void*>(L.region), L.region_len, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
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
  L.in_place_vma = HeapInPlace(core, self);
  L.vmas = PlanSlots(core, L.first_slot, L.in_place_vma);
  for (const PremappedVma& p : L.vmas) RETURN_IF_ERROR(PremapVma(core.vmas(p.vma_index), p.premap, shmem));
  LOG_INFO("restore: region %#lx-%#lx holds %zu premapped vmas", L.region, L.region + L.region_len, L.vmas.size());
  return L;
}

namespace {

constexpr size_t kMaxIov = 1024;

// One piece of a chunk: |pages| pages that go to |dst| (a slot address in
// the new process).
struct Piece {
  uint64_t dst;
  uint64_t pages;
};

// The premapped VMA holding target address |addr|, or null.
const PremappedVma* FindVma(const std::vector<PremappedVma>& slots, uint64_t addr) {
  auto it = std::upper_bound(slots.begin(), slots.end(), addr,
                             [](uint64_t a, const PremappedVma& v) { return a < v.start; });
  if (it == slots.begin()) return nullptr;
  --it;
  return addr < it->start + it->len ? &*it : nullptr;
}

// Writes |len| bytes from |src| to the pieces, |kMaxIov| at a time.
Status WritePieces(pid_t pid, const uint8_t* src, const Piece* pieces, size_t n) {
  iovec remote[kMaxIov];
  while (n > 0) {
    const size_t cnt = std::min(n, kMaxIov);
    uint64_t total = 0;
    for (size_t j = 0; j < cnt; ++j) {
      remote[j] = {reinterpret_cast<void*>(pieces[j].dst), pieces[j].pages * kPageSize};
      total += pieces[j].pages * kPageSize;
    }
    iovec local{const_cast<uint8_t*>(src), total};
    ssize_t w = process_vm_writev(pid, &local, 1, remote, cnt, 0);
    if (w != static_cast<ssize_t>(total)) {
      return ErrnoStatus(w < 0 ? errno : EIO, "write memory of restored process " + std::to_string(pid));
    }
    src += total;
    pieces += cnt;
    n -= cnt;
  }
  return OkStatus();
}

}  // namespace

Status PopulateData(const MemoryLayout& L, const img::PageMap& pm) {
  for (const img::PageRange& r : pm.ranges()) {
    if (r.kind() != img::PageRange::DATA) continue;
    uint64_t addr = r.vaddr();
    uint64_t left = r.nr_pages() * kPageSize;
    while (left > 0) {
      const PremappedVma* v = FindVma(L.vmas, addr);
      if (!v) return Error("pagemap: range at " + std::to_string(addr) + " lies outside every vma", EBADMSG);
      const uint64_t len = std::min(left, v->start + v->len - addr);
      void* dst = reinterpret_cast<void*>(v->premap + (addr - v->start));
      if (madvise(dst, len, kMadvPopulateWrite) != 0 && errno != EINVAL) {
        return ErrnoStatus("populate premapped memory");
      }
      addr += len;
      left -= len;
    }
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

Status FillMemory(pid_t pid, const std::vector<PremappedVma>& slots, const img::PageMap& pm,
                  const std::string& pages_path, int jobs) {
  FAULT_POINT("restore-fill");
  // Pair each chunk with the DATA pages it holds, in order; zero pages that
  // fall in file-backed slots must be written (the file has other bytes).
  std::vector<std::vector<Piece>> chunk_pieces(static_cast<size_t>(pm.chunks_size()));
  std::vector<Piece> zero_pieces;
  int chunk = 0;
  uint64_t left_in_chunk = pm.chunks_size() ? pm.chunks(0).nr_pages() : 0;
  for (const img::PageRange& r : pm.ranges()) {
    if (r.kind() != img::PageRange::DATA && r.kind() != img::PageRange::ZERO) {
      return Errorf("pagemap: range kind %d not supported", r.kind());
    }
    // Ranges may run over several adjacent VMAs: cut them at VMA ends.
    uint64_t addr = r.vaddr();
    uint64_t pages = r.nr_pages();
    while (pages > 0) {
      const PremappedVma* v = FindVma(slots, addr);
      if (!v) return Error("pagemap: range at " + std::to_string(addr) + " lies outside every vma", EBADMSG);
      uint64_t take = std::min(pages, (v->start + v->len - addr) / kPageSize);
      const uint64_t dst = v->premap + (addr - v->start);
      if (r.kind() == img::PageRange::ZERO) {
        if (!v->anonymous) zero_pieces.push_back({dst, take});
        addr += take * kPageSize;
        pages -= take;
        continue;
      }
      if (chunk >= pm.chunks_size()) return Error("pagemap: more data pages than chunks hold", EBADMSG);
      take = std::min(take, left_in_chunk);
      chunk_pieces[static_cast<size_t>(chunk)].push_back({dst, take});
      addr += take * kPageSize;
      pages -= take;
      left_in_chunk -= take;
      while (left_in_chunk == 0 && ++chunk < pm.chunks_size()) left_in_chunk = pm.chunks(chunk).nr_pages();
    }
  }
  if (chunk < pm.chunks_size()) return Error("pagemap: chunks hold more pages than the ranges", EBADMSG);

  if (!zero_pieces.empty()) {
    const std::vector<uint8_t> zeros(kPageSize * 512, 0);
    for (const Piece& z : zero_pieces) {
      for (uint64_t done = 0; done < z.pages;) {
        const uint64_t n = std::min<uint64_t>(z.pages - done, 512);
        Piece p{z.dst + done * kPageSize, n};
        RETURN_IF_ERROR(WritePieces(pid, zeros.data(), &p, 1));
        done += n;
      }
    }
  }

  ASSIGN_OR_RETURN(streams::ImageReader reader, streams::ImageReader::Open(pages_path, streams::FileKind::kPages));
  std::atomic<int> next{0};
  std::mutex mu;
  Status first_error;
  auto worker = [&]() {
    streams::Record rec;
    std::vector<uint8_t> raw;
    for (;;) {
      const int i = next.fetch_add(1);
      if (i >= pm.chunks_size()) return;
      Status s = reader.ReadAt(pm.chunks(i).file_offset(), &rec);
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
        s = streams::DecodeChunk(rec, &raw, pages_path);
        data = raw.data();
        size = raw.size();
      }
      if (s.ok() && size != pm.chunks(i).nr_pages() * kPageSize) {
        s = Errorf("%s: chunk %d holds %zu bytes, pagemap says %lu pages", pages_path.c_str(), i, size,
                   pm.chunks(i).nr_pages());
      }
      const auto& pieces = chunk_pieces[static_cast<size_t>(i)];
      if (s.ok()) s = WritePieces(pid, data, pieces.data(), pieces.size());
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = s;
        next.store(pm.chunks_size());
        return;
      }
    }
  };
  const int n = std::max(1, std::min(jobs, pm.chunks_size()));
  std::vector<std::thread> threads;
  for (int t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return first_error;
}

}  // namespace cf::restore
