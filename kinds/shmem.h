// Shared memory objects: the shmem behind MAP_SHARED|MAP_ANONYMOUS mappings
// and memfds (mapped or held as descriptors), dump and restore.
//
// Dump. Several processes of a tree may map one object (a parent's shared
// mapping inherited across fork, a memfd passed around). It is saved once:
// the first time a process of the dump refers to it, its pages are read from
// the object itself (through /proc/PID/map_files or /proc/PID/fd, mapped into
// criu-fast) rather than from that process's page tables, so a page only
// another process touched is not missed. Holes (never-touched pages) are
// found with SEEK_DATA/SEEK_HOLE and skipped; all-zero pages are recorded,
// not stored. The pages go through the same page pipeline as process memory
// (sched/page_pipeline.h) into shmem-ID.img; the Shmem message (with its page
// map) goes into the core of that first process, and vmas and fds refer to
// it by id.
//
// SysV shared memory segments are refused: they live in the IPC namespace,
// outside the tree.
//
// Restore. Before the tree is created, criu-fast itself creates each object
// (shared anonymous memory, reopened through /proc/self/map_files; or a
// memfd with its name), fills it from shmem-ID.img, applies the memfd's
// seals, and keeps one descriptor per object at a number at or above
// |temp_base| (above every fd number of the tree). The root process inherits
// them all, and so does each process it creates: premapping maps a shared
// (or private memfd) vma from its object, the memfd kind (kinds/memfd.cc)
// reopens memfd descriptors from it (new open file descriptions, like the
// originals, each with its flags and offset), and every process closes the
// objects' descriptors before it runs on.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "common/fd.h"
#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"
#include "sched/arena.h"
#include "sched/page_pipeline.h"
#include "streams/codec.h"
#include "streams/image_sink.h"

namespace cf::kinds {

// --- dump

struct ShmemDumpOptions {
  streams::CodecSpec codec;
  sched::Arena* arena = nullptr;  // where the page pipeline runs
  // Told, for each object saved, how many pages were scanned and what its
  // page pipeline runs did (the dump adds them to its stats).
  std::function<void(uint64_t pages_scanned, const sched::PagePipelineStats&)> count;
};

class ShmemSet {
 public:
  ShmemSet(streams::ImageSink* sink, ShmemDumpOptions opts) : sink_(sink), opts_(std::move(opts)) {}

  // Gives every shmem-backed vma of |proc| its object id, saving the objects
  // seen for the first time into |proc| (their pages into the sink).
  Status AddVmas(img::Process* proc);

  // The id of the memfd held as fd |fd| of |pid| (|dev|, |inode| from its
  // stat), saving it into |proc| if it is new.
  Result<uint32_t> AddMemfd(pid_t pid, int fd, uint64_t dev, uint64_t inode, const std::string& link,
                            img::Process* proc);

 private:
  Result<uint32_t> Add(const std::string& open_path, img::Shmem::Kind kind, uint64_t dev, uint64_t inode,
                       const std::string& link, img::Process* proc);
  Status SavePages(int fd, const std::string& name, bool huge, img::Shmem* s);

  streams::ImageSink* sink_;
  ShmemDumpOptions opts_;
  std::map<std::pair<uint64_t, uint64_t>, uint32_t> ids_;  // (dev, inode) -> id
};

// --- restore

// What recreating the objects needs from the restore layer above.
struct ShmemRestoreHooks {
  // Raises the descriptor limit so that number |top| can be used.
  std::function<Status(int top)> fd_room;
  // Fills |len| bytes of fresh memory (zero pages need no writes) at |addr|
  // in criu-fast from |pages|, whose chunks are in |pages_path|.
  std::function<Status(uint64_t addr, uint64_t len, const img::PageMap& pages, const std::string& pages_path)> fill;
};

class ShmemObjects {
 public:
  // Creates and fills every object of |shmems| (by id; pages files in
  // |dir|), each kept as a descriptor at or above |temp_base|. The ids in
  // |huge| are hugetlb objects, with their page size (kinds/hugetlb.h).
  static Result<ShmemObjects> Create(const std::map<uint32_t, img::Shmem>& shmems,
                                     const std::map<uint32_t, uint64_t>& huge, const std::string& dir,
                                     int temp_base, const ShmemRestoreHooks& hooks);

  // Object id -> descriptor (RestoreContext::shmem).
  const std::map<uint32_t, int>& fds() const { return fds_; }

 private:
  std::map<uint32_t, UniqueFd> owned_;
  std::map<uint32_t, int> fds_;
};

// --- check
// memfd_create, size, map shared, write.
ProbeResult ProbeMemfd();

}  // namespace cf::kinds
