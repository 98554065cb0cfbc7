// Reads the VMAs (/proc/PID/smaps) of many frozen processes on background
// threads, while the thread that seized them collects the rest of their
// state.
//
// smaps is the slowest file a dump reads: the kernel walks the page tables
// of every VMA for its counters (~14 ms per GiB of resident 4 KiB pages),
// and the VmFlags it carries (what madvise() and mlock() set) are in no
// other file. The tree is frozen from the seize on, so the text read early
// is the same as read in turn; only the dump's own remote calls change the
// address space (a scratch mapping), so a process's VMAs must be taken
// (Take) before the first remote call into it.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "pagemap/vma.h"

namespace cf::pagemap {

class VmaPrefetch {
 public:
  VmaPrefetch() = default;
  VmaPrefetch(const VmaPrefetch&) = delete;
  VmaPrefetch& operator=(const VmaPrefetch&) = delete;
  // Stops reading (a read under way finishes) and joins the threads.
  ~VmaPrefetch();

  // Starts reading the smaps of |pids|, in order, on up to |threads|
  // threads. Call once (|pids| may be empty: see Add).
  void Start(std::vector<pid_t> pids, int threads);
  // Reads the smaps of |pid| too, after those given before (on the threads
  // of Start, started again when they ran out of work).
  void Add(pid_t pid);

  // The VMAs of |pid|: waits for its read; reads them now if |pid| was not
  // given to Start or was already taken.
  Result<std::vector<VmaInfo>> Take(pid_t pid);

 private:
  struct Entry {
    pid_t pid = 0;
    std::optional<Result<std::vector<VmaInfo>>> result;  // set once read
    bool taken = false;
  };

  void Work();

  std::mutex mu_;
  std::condition_variable done_;
  std::vector<Entry> entries_;
  std::unordered_map<pid_t, size_t> index_;
  size_t next_ = 0;  // the next entry to read (under mu_)
  bool stop_ = false;
  size_t max_threads_ = 1;
  size_t running_ = 0;  // threads in Work (under mu_)
  std::vector<std::thread> threads_;
};

}  // namespace cf::pagemap
