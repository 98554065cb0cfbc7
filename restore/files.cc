#include "restore/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "common/fault.h"
#include "common/fd.h"
#include "common/log.h"
#include "kinds/file_lock.h"
#include "kinds/ghost_node.h"

namespace cf::restore {
namespace {

bool SameFile(int a, int b) {
  const pid_t self = getpid();
  return syscall(SYS_kcmp, self, self, KCMP_FILE, a, b) == 0;
}

// Closes every descriptor but those in |keep|, and with |same_file| those
// that are the same open file as one of |same_file|.
void CloseAllBut(const std::vector<int>& keep, const std::vector<int>& same_file) {
  // Without files to compare with, the gaps between those kept are closed
  // whole (close_range, Linux 5.9): no listing of /proc/self/fd, ~40 us
  // in each process of a tree.
  if (same_file.empty()) {
    std::vector<unsigned> kept;
    for (int k : keep) {
      if (k >= 0) kept.push_back(static_cast<unsigned>(k));
    }
    std::sort(kept.begin(), kept.end());
    unsigned from = 0;
    bool ok = true;
    for (unsigned k : kept) {
      if (k > from && syscall(SYS_close_range, from, k - 1, 0) != 0) ok = false;
      from = std::max(from, k + 1);
    }
    if (ok && syscall(SYS_close_range, from, ~0u, 0) == 0) return;
    // Else (a kernel without it) one by one, as listed.
  }
  std::vector<int> open_fds;
  if (DIR* d = opendir("/proc/self/fd")) {
    const int self = dirfd(d);
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      const int fd = atoi(e->d_name);
      if (fd != self) open_fds.push_back(fd);
    }
    closedir(d);
  }
  for (int fd : open_fds) {
    if (std::find(keep.begin(), keep.end(), fd) != keep.end()) continue;
    if (std::any_of(same_file.begin(), same_file.end(), [fd](int k) { return SameFile(fd, k); })) continue;
    close(fd);
  }
}

// How long setting an owner waits for a process of the tree to appear.
constexpr int kWaitForOwnerMs = 10000;

// The owner and signal of the description, and O_ASYNC (set through
// F_SETFL so that the file registers its async notification), once the fd
// is at its number.
Status RestoreOwner(const img::Fd& f) {
  if (f.has_owner()) {
    const img::FdOwner& o = f.owner();
    struct f_owner_ex owner {};
    owner.type = static_cast<__pid_type>(o.type());
    owner.pid = o.pid();
    // The owner may be a process of the tree not created yet.
    for (int waited = 0; fcntl(f.fd(), F_SETOWN_EX, &owner) != 0; ++waited) {
      if (errno != ESRCH || waited >= kWaitForOwnerMs) {
        return ErrnoStatus("fd " + std::to_string(f.fd()) + ": set its owner to " + std::to_string(o.pid()));
      }
      const struct timespec ms = {0, 1000000};
      nanosleep(&ms, nullptr);
    }
    if (o.signum() != 0 && fcntl(f.fd(), F_SETSIG, o.signum()) != 0) {
      return ErrnoStatus("fd " + std::to_string(f.fd()) + ": F_SETSIG " + std::to_string(o.signum()));
    }
  }
  if (f.flags() & O_ASYNC) {
    const int fl = fcntl(f.fd(), F_GETFL);
    if (fl < 0 || fcntl(f.fd(), F_SETFL, fl | O_ASYNC) != 0) {
      return ErrnoStatus("fd " + std::to_string(f.fd()) + ": set O_ASYNC");
    }
  }
  return OkStatus();
}

// Puts one descriptor at its number; returns its kind.
Result<const kinds::FdKind*> PlaceFd(const img::Fd& f, kinds::RestoreContext& ctx, const InheritedFiles& inherited) {
  const kinds::FdKind* kind = kinds::KindOf(f);
  if (kind == nullptr) return Errorf("fd %d is of no known kind", f.fd());
  int fd = -1;
  bool cloexec = false;  // whether fd |f.fd()| has FD_CLOEXEC now
  if (f.file_id() != 0) {
    // A shared object's description: put it at its number, keep the
    // temporary descriptor for other fds of the same description.
    auto it = inherited.find(f.file_id());
    if (it == inherited.end()) return Errorf("fd %d: its open file %u was not created", f.fd(), f.file_id());
    if (dup2(it->second, f.fd()) < 0) return ErrnoStatus("place fd " + std::to_string(f.fd()));
    fd = f.fd();
  } else if (f.is_dup()) {
    fd = fcntl(f.dup_of(), f.cloexec() ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    if (fd < 0) return ErrnoStatus("dup fd " + std::to_string(f.dup_of()));
    cloexec = f.cloexec();
  } else {
    ASSIGN_OR_RETURN(UniqueFd opened, kind->Open(f, ctx));
    fd = opened.release();
    cloexec = f.cloexec();  // Open gives the record's flag (FdKind::Open)
  }
  // Placed in fd order, most land at their number already (the lowest
  // free one): no dup2 then.
  if (fd != f.fd()) {
    const int placed = dup2(fd, f.fd());
    close(fd);
    if (placed < 0) return ErrnoStatus("place fd " + std::to_string(f.fd()));
    cloexec = false;
  }
  if (cloexec != f.cloexec() && fcntl(f.fd(), F_SETFD, f.cloexec() ? FD_CLOEXEC : 0) != 0) {
    return ErrnoStatus("set fd flags of " + std::to_string(f.fd()));
  }
  RETURN_IF_ERROR(RestoreOwner(f));
  return kind;
}

}  // namespace

Status RestoreFds(const img::Process& core, kinds::RestoreContext& ctx, const InheritedFiles& inherited,
                  std::vector<int*> keep, bool shared_table) {
  FAULT_POINT("restore-files");
  // From here on descriptor numbers belong to the restored process: a log
  // line would land in one of its files.
  DetachLogging();
  int max_fd = 2;
  for (const img::Fd& f : core.fds()) max_fd = std::max(max_fd, f.fd());
  // Move our own descriptors out of the way.
  for (int* k : keep) {
    const int moved = fcntl(*k, F_DUPFD_CLOEXEC, max_fd + 1);
    if (moved < 0) return ErrnoStatus("move internal descriptor");
    close(*k);
    *k = moved;
  }
  std::vector<int> open_fds;
  for (int* k : keep) open_fds.push_back(*k);
  for (const auto& [id, fd] : inherited) open_fds.push_back(fd);
  if (ctx.shmem) {
    for (const auto& [id, fd] : *ctx.shmem) open_fds.push_back(fd);
  }
  std::vector<int> same_file;
  if (shared_table) {
    for (int* k : keep) same_file.push_back(*k);
  }
  CloseAllBut(open_fds, same_file);

  Status status;
  std::vector<const kinds::FdKind*> kinds(static_cast<size_t>(core.fds_size()));
  for (int i = 0; i < core.fds_size() && status.ok(); ++i) {
    auto kind = PlaceFd(core.fds(i), ctx, inherited);
    if (kind.ok()) kinds[static_cast<size_t>(i)] = *kind;
    else status = kind.status();
  }
  for (const auto& [id, fd] : inherited) close(fd);
  if (ctx.shmem) {
    for (const auto& [id, fd] : *ctx.shmem) close(fd);
  }
  // Every fd of ours is in place: what a kind does with the others.
  for (int i = 0; i < core.fds_size() && status.ok(); ++i) {
    status = kinds[static_cast<size_t>(i)]->AfterPlacement(core.fds(i), ctx);
  }
  // Locks last: each descriptor they go through is in place.
  for (int i = 0; i < core.fds_size() && status.ok(); ++i) status = kinds::ApplyLocks(core.fds(i));
  // Deleted files go away again once every descriptor holds them.
  if (ctx.recreated) kinds::RemoveRecreated(*ctx.recreated);
  return status;
}

}  // namespace cf::restore
