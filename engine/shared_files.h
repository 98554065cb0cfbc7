// Descriptors whose kernel object the processes of a tree may share: the
// kinds of scope kDescription and kObject (kinds/kind.h), and kPrivate ones
// (files, directories, memfds) whose open file description (offset, flags)
// several processes share.
//
// One pass over every process of the (frozen) tree, before the per-process
// collection, because what one fd is depends on the others: two fds, in one
// process or two, share an open file description when kcmp(KCMP_FILE) says
// so (they get one file_id); a description's state is read once, through
// its first fd, and copied to the others; then each kind's TreePass
// finishes what needs the whole tree (pipes read once, sockets paired,
// epoll targets placed). Queued bytes are read without consuming them,
// through a copy of the descriptor (pidfd_getfd), so a dump with -R leaves
// them in place. Objects are saved once, in the core of the first process
// that holds them.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"
#include "proc/fd_dir.h"
#include "proc/open_file_index.h"
#include "sched/arena.h"

namespace cf::engine {

// What /proc/PID/fd/FD shows of |fd| (its link and stat), through |dir|;
// nullopt when the fd was closed meanwhile (only with -R).
Result<std::optional<kinds::FdSight>> LookAtFd(const proc::FdDir& dir, int fd);

// The owner and signal of the open file description behind |copy| (a copy
// of fd |fd|, taken with pidfd_getfd), F_GETOWN_EX and F_GETSIG: /proc does
// not show them. nullopt when it has none, and for an O_PATH one (|flags|:
// its fdinfo flags): fcntl refuses it there, and it has none.
Result<std::optional<img::FdOwner>> ReadOwner(int copy, int fd, uint32_t flags);

class SharedFiles final : private kinds::TreeFds {
 public:
  // Walks the descriptors of |pids| (the whole tree, root first); a
  // process's many fds are looked at on |arena|'s workers (null: on the
  // calling thread).
  Status Collect(const std::vector<pid_t>& pids, kinds::DumpContext& ctx, sched::Arena* arena = nullptr);

  // The record of fd |fd| of |pid|, when this pass took it (its owner read:
  // ReadOwner); null otherwise (CollectFds handles it).
  const img::Fd* Find(pid_t pid, int fd) const;
  // What this pass read of fd |fd| of |pid|, a kPrivate one of a
  // Shareable kind: its name, stat and fdinfo, and the id of its open file
  // description (fds of one process with the same id are dups); null when
  // the pass did not look at it.
  struct PrivateSeen {
    kinds::FdSight sight;
    proc::FdInfo info;
    uint32_t file_id = 0;
    std::optional<img::FdOwner> owner;  // see ReadOwner
  };
  const PrivateSeen* SeenPrivate(pid_t pid, int fd) const;
  // The descriptors of |pid| this pass listed (the tree is frozen: they
  // are still those); null for a process it did not walk.
  const std::vector<int>* Listed(pid_t pid) const;
  // Adds the objects saved with |pid| (pipes, socket pairs) to its core.
  void AddObjects(pid_t pid, img::Process* out) const;
  // The tree runs on: each kind puts back what it consumed (TreePass::PutBack).
  void PutBack();

 private:
  struct Ref {  // one fd of one process
    pid_t pid;
    int fd;
  };
  Status CollectProcess(pid_t pid, kinds::DumpContext& ctx, sched::Arena* arena);
  Status CompleteSharedFiles(kinds::DumpContext& ctx);
  Result<uint32_t> DescriptionId(pid_t pid, int fd, const proc::DescriptionKey& key);
  kinds::TreePass* PassOf(const kinds::FdKind* kind, kinds::DumpContext& ctx);

  // kinds::TreeFds
  const std::vector<pid_t>& order() const override { return order_; }
  std::vector<img::Fd*> FdsOf(pid_t pid) override;
  void AddObject(pid_t pid, img::FileObject obj) override;
  uint32_t NewFileId() override;

  std::map<std::pair<pid_t, int>, img::Fd> fds_;
  std::map<std::pair<pid_t, int>, PrivateSeen> private_seen_;  // kPrivate fds, kept or not
  std::vector<Ref> descriptions_;  // file_id - 1 -> where it was first seen (fd -1: no fd)
  proc::OpenFileIndex open_files_;  // file ids by open file description
  std::map<const kinds::FdKind*, std::unique_ptr<kinds::TreePass>> passes_;
  std::map<pid_t, std::vector<img::FileObject>> objects_;  // by carrier process
  std::vector<pid_t> order_;                                // processes, root first
  std::map<pid_t, std::vector<int>> listed_;                // fds of each process
  std::optional<proc::FdDir> self_;  // criu-fast's own, opened once (CollectProcess)
};

}  // namespace cf::engine
