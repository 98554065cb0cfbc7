// Live checkpoints (`dump -R --live`): the tree is frozen only to collect
// its state and write-protect its private memory; its pages are saved while
// it runs, and the image still holds exactly the memory at the freeze.
//
// Each process gets a userfaultfd made inside it (by a remote system call,
// as for write tracking: engine/track.h), here in synchronous write-protect
// mode: no WP_ASYNC, and not UFFD_USER_MODE_ONLY, so that a write by the
// kernel on the program's behalf (read(2) into a buffer) waits like a write
// of the program instead of failing with EFAULT. Its private mappings are
// registered (UFFDIO_REGISTER_MODE_WP) and the pages to save are
// write-protected (UFFDIO_WRITEPROTECT).
// Protecting costs the kernel a change of each page table entry (50-100 ms
// per GiB of 4 KiB pages here), so it is done before the freeze (PreArm):
// the tree is seized a moment to make the userfaultfds and register its
// private anonymous mappings, then runs on while its present pages are
// protected; meanwhile the handler only unprotects what the program writes.
// At the freeze, one PAGEMAP_SCAN per range of the snapshot finds the pages
// that are not protected any more (written since, populated since, mapped
// since: PAGE_IS_WRITTEN, i.e. no uffd-wp bit, whatever the reason) and only
// those are protected again, under the lock that switches the handler to
// copying. The kernel says what is protected: nothing is assumed from the
// events seen. Then the tree runs on, and:
//   - the page pipeline reads pages with process_vm_readv as usual; a page
//     still protected holds its bytes of the freeze. Once a batch is read,
//     its pages are marked saved and unprotected (so later writes cost
//     nothing);
//   - a thread that writes a protected page blocks in the kernel and a
//     message reaches criu-fast's fault handler thread, which copies the page
//     out first (still protected, so still as at the freeze), stashes the
//     copy, then unprotects the page, which wakes the thread. The pipeline
//     takes a stashed copy instead of what it read (the page may have been
//     written between the unprotect and its read).
// Per page one state, changed by compare-and-swap: unsaved -> saved (by the
// pipeline, after its read) or unsaved -> stashed (by the handler, under the
// stash lock, before its unprotect); so each page is saved once, always with
// the bytes of the freeze.
//
// What the program may do meanwhile:
//   - fork: not in the snapshot; the child gets no userfaultfd (no
//     EVENT_FORK: the kernel drops the registration and the protection bits
//     in the child), so it runs free.
//   - munmap, madvise(DONTNEED), mremap, mmap over a mapping: reported by
//     UFFD_EVENT_UNMAP / REMOVE / REMAP. On memory already saved (or not in
//     the snapshot, e.g. mapped after the freeze) they are harmless; on pages
//     not saved yet, the bytes of the freeze may be gone: the live save
//     fails (changed()), and engine/dump.cc removes the partial image and
//     dumps again without --live, frozen to the end (the tree ran on).
//   - exit: the pages not saved are gone: the dump fails (the tree runs on).
// Shared memory is not per process (a write through another mapping would
// not fault here): it is saved while the tree is frozen, as is every page
// of a mapping userfaultfd refuses, and every process in which a privileged
// userfaultfd cannot be made.
// If criu-fast dies during the save, the kernel closes its descriptors; the
// last one of a userfaultfd gone, the kernel drops the registrations and
// wakes every thread blocked on a fault: the program runs on (tested).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "criu_fast.pb.h"
#include "memdrain/drain.h"
#include "sched/page_pipeline.h"

namespace cf::engine {

class LiveProcess;

class LiveSave {
 public:
  LiveSave();
  ~LiveSave();  // stops the handler and closes every userfaultfd
  LiveSave(const LiveSave&) = delete;
  LiveSave& operator=(const LiveSave&) = delete;

  // Before the freeze, to keep write-protecting out of the frozen time:
  // seizes the tree of |root| for a moment to make each process's
  // userfaultfd and register its private anonymous mappings, lets it run,
  // starts the handler (which only unprotects, for now) and write-protects
  // every present page while the tree runs. On error nothing is left armed.
  Status PreArm(pid_t root);
  // Stops the handler; messages left in the queues wait for Start().
  void Pause();

  // While |pid| is frozen, on the thread that seized it: makes its
  // userfaultfd (or takes the one PreArm made, if |start_time| matches),
  // registers its private mappings and protects |sources| (the pages its
  // dump will save; after PreArm, only those not protected any more).
  // Pages of a mapping userfaultfd refuses are copied at once. Returns
  // false, with nothing changed, when the process cannot have a privileged
  // userfaultfd (its pages must be saved frozen).
  Result<bool> AddProcess(pid_t pid, uint64_t start_time, const img::Process& proc,
                          std::span<const sched::PageSource> sources);

  // Every process added: (re)starts the fault handler for all of them.
  Status Start();
  // Where the page pipeline reads |pid|'s pages (AddProcess returned true).
  const memdrain::PageDrain& DrainOf(pid_t pid) const;
  // Every page saved: stops the handler, lets the tree go (closes the
  // userfaultfds), and tells whether the snapshot holds (a mapping changed
  // under pages not saved yet makes it fail).
  Status Finish();

  // A process changed memory not saved yet (the snapshot is lost).
  bool changed() const;
  uint64_t faults() const { return faults_.load(); }
  uint64_t pages_copied() const { return copied_.load(); }
  uint64_t pages_protected() const { return protected_; }
  uint64_t pages_copied_frozen() const { return copied_frozen_; }
  uint64_t prearm_pause_ns() const { return prearm_pause_ns_; }
  uint64_t prearm_ns() const { return prearm_ns_; }
  uint64_t pages_prearmed() const { return prearmed_; }
  // Faults left unanswered for a while because the stash was full.
  uint64_t faults_deferred() const { return deferred_total_.load(); }
  uint64_t stash_limit() const { return stash_limit_; }
  // Pages are read without pinning them (memdrain/page_reader.h), so that
  // the processes of a tree keep what they share copy-on-write: set for a
  // tree of more than one process, before AddProcess (PreArm sets it
  // itself from the tree it seizes).
  void set_keep_shared(bool keep) { keep_shared_ = keep_shared_ || keep; }

 private:
  void StartHandler();
  void Loop(const std::vector<LiveProcess*>& procs);
  template <typename TakeEvents>
  void HandleFault(LiveProcess* lp, uint64_t addr, TakeEvents& take_events);
  void Stop();

  std::map<pid_t, std::unique_ptr<LiveProcess>> procs_;
  UniqueFd stop_;  // eventfd: the handler returns
  std::thread handler_;
  std::atomic<uint64_t> faults_{0};
  std::atomic<uint64_t> copied_{0};
  uint64_t protected_ = 0;
  uint64_t copied_frozen_ = 0;
  uint64_t prearm_pause_ns_ = 0;  // the tree seized to make the userfaultfds
  uint64_t prearm_ns_ = 0;        // write-protecting while it ran
  uint64_t prearmed_ = 0;         // pages protected then
  // The copies made on fault wait in memory until the pipeline takes them:
  // at most |stash_limit_| pages (128 MiB) for the whole tree. Past it a
  // writer's fault waits in |deferred_| (the writer stays blocked) until
  // copies are taken out or the pipeline saves the page itself.
  uint64_t stash_limit_ = 32768;
  bool keep_shared_ = false;
  std::atomic<uint64_t> stashed_pages_{0};
  std::deque<std::pair<LiveProcess*, uint64_t>> deferred_;  // the handler's only
  std::atomic<uint64_t> deferred_total_{0};
};

}  // namespace cf::engine
