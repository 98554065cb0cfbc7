// Shared memory objects of a dump: the shmem behind MAP_SHARED|MAP_ANONYMOUS
// mappings and memfds (mapped or held as descriptors).
//
// Several processes of a tree may map one object (a parent's shared mapping
// inherited across fork, a memfd passed around). It is saved once: the first
// time a process of the dump refers to it, its pages are read from the
// object itself (through /proc/PID/map_files or /proc/PID/fd, mapped into
// criu-fast) rather than from that process's page tables, so a page only
// another process touched is not missed. Holes (never-touched pages) are
// found with SEEK_DATA/SEEK_HOLE and skipped; all-zero pages are recorded,
// not stored. The pages go through the same page pipeline as process memory
// into shmem-ID.img; the Shmem message (with its page map) goes into the
// core of that first process, and vmas and fds refer to it by id.
//
// SysV shared memory segments are refused: they live in the IPC namespace,
// outside the tree.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "engine/page_dump.h"
#include "engine/stats.h"
#include "streams/image_sink.h"

namespace cf::engine {

class ShmemSet {
 public:
  ShmemSet(streams::ImageSink* sink, PageDumpOptions opts) : sink_(sink), opts_(std::move(opts)) {}

  // Gives every shmem-backed vma of |proc| its object id, saving the objects
  // seen for the first time into |proc| (their pages into the sink).
  Status AddVmas(img::Process* proc, DumpCounters* stats);

  // The id of the memfd held as fd |fd| of |pid| (|dev|, |inode| from its
  // stat), saving it into |proc| if it is new.
  Result<uint32_t> AddMemfd(pid_t pid, int fd, uint64_t dev, uint64_t inode, const std::string& link,
                            img::Process* proc, DumpCounters* stats);

 private:
  Result<uint32_t> Add(const std::string& open_path, img::Shmem::Kind kind, uint64_t dev, uint64_t inode,
                       const std::string& link, img::Process* proc, DumpCounters* stats);

  streams::ImageSink* sink_;
  PageDumpOptions opts_;
  std::map<std::pair<uint64_t, uint64_t>, uint32_t> ids_;  // (dev, inode) -> id
};


}  // namespace cf::engine
