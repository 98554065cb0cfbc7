// Rebuilding a process's memory before the restorer runs.
//
// The target's VMAs cannot be mapped at their addresses yet: criu-fast itself
// may sit there. So a region R is reserved at a hole free in both layouts; it
// holds the restorer blob, its args block and stack, and one slot per VMA
// where that VMA is premapped (anonymous memory, or the file for file
// mappings) and filled from the page chunks. The restorer later moves each
// slot to its address with mremap, which moves pages without copying.
// Slots lie one page apart and each private anonymous one gets an anon_vma of
// its own, so that no two VMAs merge on the way: the target gets back the
// same VMAs.
// Filling runs on several threads, each decoding whole chunks straight into
// their slots.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "pagemap/page_ranges.h"
#include "pagemap/vma.h"

namespace cf::restore {

using ShmemFds = std::map<uint32_t, int>;  // shared memory object id -> descriptor
// Sockets whose memory the process maps (a packet socket's rings): the
// dumped socket's inode -> a descriptor of the socket made again.
using SocketFds = std::map<uint64_t, int>;

struct PremappedVma {
  int vma_index = 0;       // into core.vmas()
  uint64_t start = 0;      // target address
  uint64_t len = 0;
  uint64_t premap = 0;     // address of the slot in R, or |start| when premapped in place (see InPlace)
  uint32_t prot = 0;       // final protection
  uint32_t vmflags = 0;    // the VmFlags of its VMA that restore acts on, as bits (restore/memory.cc)
  bool anonymous = false;  // fresh anonymous memory (zero pages need no writes)
  // Private anonymous, right after another one with no gap (see PlanSlots):
  // made elsewhere and moved into its slot, so the two do not merge.
  bool packed = false;
  // Its first page was faulted in to give it an anon_vma (KeepApart), to be
  // dropped by PopulateData unless data fills it.
  bool kept_apart = false;
  // Handed down by fork from the parent's premapped VMA (|premap| is where
  // the parent premapped it): its INHERITED pages are the parent's, shared
  // copy-on-write, and need no fill (see Inheritance).
  bool inherited = false;
  // Registered with the new process's userfaultfd (RegisterCopyFill): its
  // pages are filled by UFFDIO_COPY, never by process_vm_writev (which
  // would fault on a missing page there and fail).
  bool by_copy = false;
  // Given its final protection by the new process while criu-fast was
  // still filling other VMAs (EarlyProtect): the restorer leaves it.
  bool protected_early = false;
};

// Read by criu-fast from the new process's memory (TaskReport.plan_addr).
static_assert(std::is_trivially_copyable_v<PremappedVma>);

struct MemoryLayout {
  uint64_t region = 0;      // R
  uint64_t region_len = 0;
  uint64_t blob = 0;        // restorer code
  uint64_t args = 0;        // cf_rst_args block
  uint64_t args_len = 0;
  uint64_t stack_top = 0;
  uint64_t first_slot = 0;     // where the VMA slots begin
  uint64_t thread_stacks = 0;  // one stack per thread besides the leader
  uint64_t thread_stack_size = 0;
  uint64_t vdso_cur = 0;    // our [vvar]..[vdso] block
  uint64_t vdso_len = 0;
  uint64_t vdso_target = 0;
  uint64_t vdso_scratch = 0;  // vdso_len bytes of the region, reserved for a move in two steps
  std::vector<PremappedVma> vmas;
};

// Reserves R, copies the restorer blob into it and premaps every VMA of |core|
// that the restorer moves (all but vdso/vvar/vsyscall). |args_len| is the size
// the args block needs. Vmas of shared memory objects map them from |shmem|,
// vmas of sockets (path "socket:[INODE]") from |sockets|, and those of
// deleted files the files recreated for them (|ghosts|: by ghost image,
// kinds/ghost_file.h).
using Ghosts = std::map<std::string, std::string>;

// Copy-on-write sharing with the parent process (kinds/fork_cow.h): the
// parent premapped and filled its memory before forking this process, so
// the VMAs this process shares pages of are here already, at the parent's
// premap addresses, holding the parent's pages. Each VMA the same in both
// images whose INHERITED pages the pagemap lists is kept (its other pages
// dropped) instead of premapped again.
struct Inheritance {
  const img::Process* parent = nullptr;
  const std::vector<PremappedVma>* parent_vmas = nullptr;  // the parent's MemoryLayout::vmas
  const img::PageMap* pagemap = nullptr;                   // this process's
  const img::PageMap* parent_pagemap = nullptr;            // the parent's (null: not known)
};

// This process's mappings, for PremapMemory in the children it forks next:
// their ranges, and the names only of the kernel's special mappings
// ("[stack]", "[vdso]"...), the only ones PremapMemory looks at, the stack's
// with the room below it PremapMemory keeps free; and the pages they span,
// to tell whether a child's mappings are still these. A child reading its
// own maps first touches, in its new address space, the pages of the
// parser, the allocator and their data (1.4 of the 1.7 ms it took a child
// of a 300-process restore, against 0.3 ms for the same read again); even
// a copy of the list cost a child ~100 us, so it is used in place.
struct KnownMaps {
  std::vector<pagemap::VmaInfo> maps;
  uint64_t pages = 0;  // as statm counts them
};
Result<KnownMaps> MapsForChildren();

// |known|: this process's mappings as its parent read them before the fork
// (MapsForChildren), used when the process has mapped or unmapped nothing
// since (its size is still theirs); else /proc/self/maps is read.
Result<MemoryLayout> PremapMemory(const img::Process& core, uint64_t args_len, const ShmemFds& shmem,
                                  const SocketFds& sockets = {}, const Ghosts* ghosts = nullptr,
                                  const Inheritance* inherit = nullptr, const KnownMaps* known = nullptr);

// The protection PremapMemory gives VMA |v|'s slot, where it is always the
// same (so the restorer's mprotect can be skipped when it is final already).
std::optional<uint32_t> PremapProt(const img::Vma& v);

// The address of a `syscall` instruction (bytes 0f 05) of the restorer blob
// in a process whose restore region starts at |region| (the blob is its
// first bytes), or 0: criu-fast's last remote calls run there, without
// searching the restored process's mappings for one (a process of 60,000
// VMAs has 4 MB of /proc/PID/maps).
uint64_t RestorerSyscallSite(uint64_t region);

inline constexpr uint64_t kThreadStackSize = 64 * 1024;

// Prepares the slots for the fill, from inside the new process: drops the
// first pages KeepApart faulted in where no data goes. The pages data goes
// to are faulted in by the fill itself (FillMemory), not here.
Status PopulateData(const MemoryLayout& layout, const img::PageMap& pagemap);

// Installs the guard regions of |pm| (MADV_GUARD_INSTALL) in their slots;
// the restorer's mremap moves the markers with the page tables.
Status InstallGuards(const MemoryLayout& layout, const img::PageMap& pm);

// The slot of every VMA the restorer moves, in order from |first_slot|;
// the VMAs |in_place| marks (by index into core.vmas(), or none if empty)
// are premapped at their own address instead, and those |kept| gives an
// address (non-zero, by index) were handed down there by fork. |flags|: the
// VMAs' VmFlags as bits, by index (one per VMA).
std::vector<PremappedVma> PlanSlots(const img::Process& core, const std::vector<uint32_t>& flags, uint64_t first_slot,
                                    const std::vector<bool>& in_place = {}, const std::vector<uint64_t>& kept = {});

// One level of an image chain: a pagemap and its pages file. Level 0 is the
// image restored; level i+1 is the parent of level i (incremental dumps),
// with a null pagemap where that image has no pages of the process.
struct PageLevel;
// Every process's pages in one image, by pid: where the references of DUP
// ranges (pages equal to a page another range of the image stores) lead.
using ImagePages = std::map<int32_t, PageLevel>;
struct PageLevel {
  const img::PageMap* pagemap = nullptr;
  std::string pages_path;
  const ImagePages* image = nullptr;  // the image this level belongs to (null: it has no DUP ranges)
};
using PageChain = std::vector<PageLevel>;

// Where a pagemap's DATA pages are in its pages file: DATA ranges in order
// are cut into chunks (docs/image-format.md), so a page's place is its
// ordinal among the DATA pages.
class DataIndex {
 public:
  DataIndex() = default;
  explicit DataIndex(const img::PageMap& pm);

  struct Place {
    size_t chunk;
    uint64_t offset;  // pages into the chunk
    uint64_t left;    // pages of the chunk from there on
  };
  // The place of page |addr| of DATA range |ri| of |pm| (the pagemap this
  // index was made from); |path| names the pages file in errors. |hint|
  // (optional) is the chunk of the caller's last lookup, updated: pages
  // looked up in order are found there or in the next chunk without a
  // search.
  Result<Place> Find(const img::PageMap& pm, int ri, uint64_t addr, const std::string& path,
                     size_t* hint = nullptr) const;

  uint64_t data_pages() const { return data_pages_; }    // by the ranges
  uint64_t chunk_pages() const { return chunk_pages_; }  // by the chunks
  bool data_or_zero_only() const { return data_or_zero_only_; }  // no range of another kind

 private:
  std::vector<uint64_t> data_before_;  // per range: DATA pages of the ranges before it
  std::vector<uint64_t> chunk_first_;  // per chunk: its first DATA page
  uint64_t data_pages_ = 0;
  uint64_t chunk_pages_ = 0;
  bool data_or_zero_only_ = true;
};

// Fills the premapped slots of process |pid| from the chain's pages files
// with process_vm_writev, using |jobs| threads: PARENT pages are looked up
// down the chain. INHERITED pages in VMAs not handed down by fork are taken
// from the parent process's pages: |lineage| holds the chains of its
// parent, grandparent, ... (as far as pages are inherited). Runs in
// criu-fast, not in the new process: threads there would take TIDs the
// restored threads need.
// With |copy_fd| (criu-fast's copy of the process's userfaultfd, see
// RegisterCopyFill), the slots marked by_copy are filled by UFFDIO_COPY;
// |pages_copied|, where given, grows by the pages that went in that way.
// With |progress| (the process's fill word, shared with it: see
// kFillDone), a fill by copy of one level of pages publishes there, as it
// goes, how many leading chunks of the pages file are written (futex wake),
// for EarlyProtect.
Status FillMemory(pid_t pid, const std::vector<PremappedVma>& slots, const PageChain& chain, int jobs,
                  const std::vector<PageChain>& lineage = {}, int copy_fd = -1, uint64_t* pages_copied = nullptr,
                  uint32_t* progress = nullptr);

// A process's fill word (TaskContext::filled) once its memory is filled and
// it may go on; below it, while the fill runs, the leading chunks written.
inline constexpr uint32_t kFillDone = ~uint32_t{0};
// Sets the fill word |word| (shared with the process) to |value| and wakes
// the process waiting on it.
void SetFillWord(uint32_t* word, uint32_t value);

// Filling by copy. process_vm_writev faults each page in through the
// target's page tables (allocate, zero, map) before it copies into it;
// UFFDIO_COPY allocates the page, copies into it and maps it, a run of
// pages a call: no zeroing, no fault. It only fills missing pages of a
// range registered with a userfaultfd of the process, made by the process
// itself. Per page it costs more than process_vm_writev where the data lies
// in runs of one page (a sparse mapping), less where the runs are long.
struct CopyFill {
  int uffd = -1;  // -1: none (the fill is all process_vm_writev)
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // registered [start, end), premap addresses
};

// What the new process needs of its pagemap's ranges, worked out by
// criu-fast as it loads the images (LoadImages). The ranges sit in memory
// shared with the new processes, each of which maps the pages of it that
// it reads one fault at a time (restore/shared_heap.h): 262,144 one-page
// ranges are 16 MB, which took a process 13-39 ms to read through. With
// these counts it bisects the ranges instead.
struct PagemapSummary {
  bool data_or_zero_only = true;  // no range but DATA and ZERO ones
  // Per range, and one past the last: the DATA pages, and the DATA ranges,
  // of the ranges before it.
  std::vector<uint64_t> data_pages_before;
  std::vector<uint64_t> data_ranges_before;
  // Per chunk: the address of its first page. Empty where the ranges are not
  // in address order (then neither is the pages file) or do not hold the
  // chunks' pages.
  std::vector<uint64_t> chunk_first;
};
// Made by SummarizePagemap (restore/images.h).

// From inside the new process, after PopulateData: registers (missing
// pages) the runs of slots of plain private anonymous memory whose data
// comes in runs of several pages, where the transparent huge page setting
// would not give them huge pages (a copy maps small pages), and marks their
// slots by_copy. Only for a process whose pages are all DATA (no parent
// image, no pages shared with another process). uffd -1 where nothing
// qualifies, or userfaultfd is missing or off (CF_FILL_COPY=0).
Result<CopyFill> RegisterCopyFill(const img::Process& core, const img::PageMap& pm, const PagemapSummary& summary,
                                  MemoryLayout* layout);

// After the fill, from inside the new process: unregisters and closes.
Status EndCopyFill(CopyFill* fill);

// Protecting VMAs while the fill runs. Parting a premapped run of VMAs by
// mprotect costs the kernel about 2 us per VMA made (a process of 60,000
// small mappings of alternating protections: ~110 ms), which the restorer
// used to pay after the fill, on one core while the other idled. The new
// process now does it for its VMAs in place and filled by copy (read-only
// pages need no write from criu-fast: UFFDIO_COPY maps pages whatever the
// protection), each once every page of it is written: the pages file is in
// address order, so with its first k chunks written (the fill word, see
// FillMemory), every VMA ending below chunk k's first page is complete.
// Their part of the userfaultfd registration goes first (one split), so no
// range the fill still copies into is parted under it.
class EarlyProtect {
 public:
  // Whether |v| is one the process protects during the fill: in place,
  // filled by copy, its protection not the premap's.
  static bool Qualifies(const PremappedVma& v);
  EarlyProtect() = default;
  // From inside the new process, after RegisterCopyFill. Nothing to do
  // where no VMA qualifies or the pagemap is not in address order.
  EarlyProtect(const PagemapSummary& summary, const MemoryLayout& L, const CopyFill& fill);

  bool empty() const { return todo_.size() == next_; }
  // With |chunks| leading chunks written (kFillDone: all): unregisters what
  // lies below the first page not yet written from |fill| and sets the
  // final protection of each VMA wholly below it (marked protected_early).
  Status Advance(uint32_t chunks, CopyFill* fill, MemoryLayout* L);

 private:
  const std::vector<uint64_t>* chunk_first_ = nullptr;  // PagemapSummary::chunk_first
  std::vector<size_t> todo_;           // into L.vmas, in address order
  std::vector<bool> in_place_ranges_;  // per range of the CopyFill: its slots are in place
  size_t next_ = 0;                    // the first of todo_ not protected yet
};

}  // namespace cf::restore
