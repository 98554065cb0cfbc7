// The pass over the tree's shareable descriptors (see shared_files.h):
//   1. per process, per fd of a kind this pass takes (kPrivate kinds only
//      when Shareable): its fdinfo, its open file description's id (kcmp
//      against the descriptions seen so far with the same file, offset,
//      flags and mount: proc/open_file_index.h)
//      and its kind's state (read for the first fd of a description, copied
//      for the others), then the kind's TreePass sees it;
//   2. kPrivate fds are kept only when several processes hold their
//      description (their state is read then); what was read of the
//      others is handed to CollectFds;
//   3. each kind's TreePass finishes (pipes, socket pairs, epoll targets).
#include "engine/shared_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <set>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include "common/io.h"
#include "common/log.h"
#include "kinds/file_lock.h"
#include "proc/proc_parse.h"

namespace cf::engine {
using namespace ::cf::proc;  // /proc parsing, the layer below

Status SharedFiles::Collect(const std::vector<pid_t>& pids, kinds::DumpContext& ctx, sched::Arena* arena) {
  order_ = pids;
  for (pid_t pid : pids) RETURN_IF_ERROR(CollectProcess(pid, ctx, arena));
  RETURN_IF_ERROR(CompleteSharedFiles(ctx));
  for (auto& [kind, pass] : passes_) {
    if (pass) RETURN_IF_ERROR(pass->Finish(*this));
  }
  LOG_INFO("files: %zu shared-kind descriptors, %zu open file descriptions", fds_.size(), descriptions_.size());
  return OkStatus();
}

kinds::TreePass* SharedFiles::PassOf(const kinds::FdKind* kind, kinds::DumpContext& ctx) {
  auto it = passes_.find(kind);
  if (it == passes_.end()) it = passes_.emplace(kind, kind->NewPassFor(ctx)).first;
  return it->second.get();
}

// A kPrivate description that one process holds alone is left to CollectFds
// (dup'ed fds within a process are found there); one that several
// processes share keeps its file_id, so that restore opens it once, in
// their lowest common ancestor, and they share its offset again. Its
// fdinfo and state are read here, for those kept only.
Status SharedFiles::CompleteSharedFiles(kinds::DumpContext& ctx) {
  std::map<uint32_t, std::set<pid_t>> holders;
  for (const auto& [ref, seen] : private_seen_) holders[seen.file_id].insert(ref.first);
  for (auto& [ref, seen] : private_seen_) {
    if (holders[seen.file_id].size() < 2) {
      fds_.erase(ref);
      continue;
    }
    img::Fd& f = fds_.at(ref);
    kinds::SetFdInfo(seen.info, &f);
    RETURN_IF_ERROR(kinds::ReadLocks(seen.sight, seen.info, ctx, &f));
    if (Status st = kinds::KindOf(f)->Read(seen.sight, seen.info, ctx, &f); !st.ok()) {
      return st.WithContext(seen.sight.Name());
    }
  }
  return OkStatus();
}

Result<uint32_t> SharedFiles::DescriptionId(pid_t pid, int fd, const DescriptionKey& key) {
  const auto next = static_cast<uint32_t>(descriptions_.size() + 1);
  ASSIGN_OR_RETURN(std::optional<uint32_t> seen, open_files_.FindOrAdd(pid, fd, key, next));
  if (seen) return *seen;
  descriptions_.push_back({pid, fd});
  return next;
}

Result<std::optional<kinds::FdSight>> LookAtFd(const FdDir& dir, int fd) {
  kinds::FdSight s;
  s.pid = dir.pid();
  s.fd = fd;
  ASSIGN_OR_RETURN(bool open, dir.Look(fd, &s.link, &s.sb));
  if (!open) return std::optional<kinds::FdSight>();
  return std::optional<kinds::FdSight>(std::move(s));
}

Result<std::optional<img::FdOwner>> ReadOwner(int copy, int fd, uint32_t flags) {
  std::optional<img::FdOwner> none;
  if (flags & O_PATH) return none;
  struct f_owner_ex owner {};
  if (fcntl(copy, F_GETOWN_EX, &owner) != 0) return ErrnoStatus("F_GETOWN_EX of fd " + std::to_string(fd));
  const int sig = fcntl(copy, F_GETSIG);
  if (sig < 0) return ErrnoStatus("F_GETSIG of fd " + std::to_string(fd));
  if (owner.pid == 0 && sig == 0) return none;
  img::FdOwner o;
  o.set_type(owner.type);
  o.set_pid(owner.pid);
  o.set_signum(sig);
  return std::optional<img::FdOwner>(std::move(o));
}

namespace {

// What the pass learns of one fd by system calls alone, before any
// bookkeeping: see SightFd.
struct Sighted {
  kinds::FdSight s;
  const kinds::FdKind* kind = nullptr;  // null: left to CollectFds (closed, unknown, or not shareable)
  FdInfo info;
  std::optional<img::FdOwner> owner;
  Status status;
};

// Each fd is looked at through one copy of it (pidfd_getfd): its file's
// stat (fstat of the copy: no lookup in /proc), its name (the link of the
// copy in /proc/self/fd, where /proc/PID/fd/FD would make a dentry per fd)
// and its owner come from the copy, its fdinfo from /proc/PID/fdinfo. The
// copy is closed before it returns: the kinds see the tree's descriptors
// alone.
void SightFd(int pidfd, const FdDir& dir, const FdDir& self, int fd, Sighted* out) {
  kinds::FdSight& s = out->s;
  s.pid = dir.pid();
  s.fd = fd;
  Result<UniqueFd> taken = kinds::TakeFdThrough(pidfd, fd);
  if (!taken.ok() && taken.status().err() == EBADF) return;  // closed meanwhile
  if (!taken.ok()) {
    out->status = taken.status().WithContext("process " + std::to_string(s.pid));
    return;
  }
  UniqueFd copy = std::move(*taken);
  Result<bool> open = self.ReadLink(copy.get(), &s.link);
  if (!open.ok() || !*open) {
    out->status = open.ok() ? Errorf("fd %d of %d: its copy %d is not in /proc/self/fd", fd, s.pid, copy.get())
                            : open.status();
    return;
  }
  if (fstat(copy.get(), &s.sb) != 0) {
    out->status = ErrnoStatus("stat of " + s.Name());
    return;
  }
  const kinds::FdKind* kind = kinds::Recognise(s);
  if (kind == nullptr) return;  // CollectFds refuses it
  if (kind->scope() == kinds::Scope::kPrivate && !kind->Shareable(s)) return;
  Result<FdInfo> info = dir.Info(fd);
  if (!info.ok()) {
    out->status = info.status();
    return;
  }
  Result<std::optional<img::FdOwner>> owner = ReadOwner(copy.get(), fd, info->flags);
  if (!owner.ok()) {
    out->status = owner.status().WithContext(s.Name());
    return;
  }
  out->info = std::move(*info);
  out->owner = std::move(*owner);
  out->kind = kind;
}

// Below this many fds a process's are looked at on the calling thread.
constexpr size_t kParallelFds = 256;

}  // namespace

// The fds are looked at side by side on the arena's workers (about nine
// system calls each, most of the time of this pass), then recorded in
// order on the calling thread: description ids, the first fd of each
// description and the kinds' tree passes see them as one walk would.
Status SharedFiles::CollectProcess(pid_t pid, kinds::DumpContext& ctx, sched::Arena* arena) {
  ASSIGN_OR_RETURN(FdDir dir, FdDir::Open(pid));
  if (!self_) {
    ASSIGN_OR_RETURN(FdDir own, FdDir::Open(getpid()));
    self_.emplace(std::move(own));
  }
  const FdDir& self = *self_;
  ASSIGN_OR_RETURN(std::vector<int> fds, dir.List());
  const std::vector<int>& listed = listed_[pid] = std::move(fds);
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return ErrnoStatus("pidfd_open " + std::to_string(pid));
  std::vector<Sighted> sighted(listed.size());
  auto sight = [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) SightFd(pidfd.get(), dir, self, listed[i], &sighted[i]);
  };
  if (arena != nullptr && arena->jobs() > 1 && listed.size() >= kParallelFds) {
    arena->Execute([&] {
      tbb::parallel_for(tbb::blocked_range<size_t>(0, listed.size(), 64),
                        [&](const tbb::blocked_range<size_t>& r) { sight(r.begin(), r.end()); });
    });
  } else {
    sight(0, listed.size());
  }
  for (Sighted& seen : sighted) {
    RETURN_IF_ERROR(seen.status);
    if (seen.kind == nullptr) continue;
    kinds::FdSight& s = seen.s;
    FdInfo& info = seen.info;
    const kinds::FdKind* kind = seen.kind;
    const int fd = s.fd;
    const bool is_private = kind->scope() == kinds::Scope::kPrivate;
    img::Fd f;
    f.set_fd(fd);
    f.set_dev(s.sb.st_dev);
    f.set_inode(s.sb.st_ino);
    f.set_mode(s.sb.st_mode);
    f.set_rdev(s.sb.st_rdev);
    f.set_size(static_cast<uint64_t>(s.sb.st_size));
    f.set_path(s.link);
    ASSIGN_OR_RETURN(uint32_t id, DescriptionId(pid, fd, KeyOf(s.sb, info)));
    f.set_file_id(id);
    if (is_private) {
      if (seen.owner) *f.mutable_owner() = *seen.owner;
      // Most are held by one process and go to CollectFds, which reads their
      // state (with what was seen here): read it only for those kept
      // (CompleteSharedFiles). The kind's field marks the record's kind
      // meanwhile.
      f.GetReflection()->MutableMessage(&f, f.GetDescriptor()->FindFieldByNumber(kind->field()));
      fds_[{pid, fd}] = std::move(f);
      private_seen_[{pid, fd}] = PrivateSeen{std::move(s), std::move(info), id, std::move(seen.owner)};
      continue;
    }
    const Ref& first = descriptions_[id - 1];
    const bool is_first = first.pid == pid && first.fd == fd;
    if (is_first) {
      kinds::SetFdInfo(info, &f);
      if (Status st = kind->Read(s, info, ctx, &f); !st.ok()) return st.WithContext(s.Name());
    } else {
      // The same description: its flags, offset and state are the first fd's.
      const img::Fd& prev = fds_.at({first.pid, first.fd});
      f = prev;
      f.set_fd(fd);
      f.set_cloexec(info.flags & O_CLOEXEC);
    }
    f.clear_owner();
    if (seen.owner) *f.mutable_owner() = *seen.owner;
    RETURN_IF_ERROR(kinds::ReadLocks(s, info, ctx, &f));
    img::Fd& kept = fds_[{pid, fd}] = std::move(f);
    if (kinds::TreePass* pass = PassOf(kind, ctx)) {
      if (Status st = pass->Add(s, info, is_first, &kept); !st.ok()) return st.WithContext(s.Name());
    }
  }
  return OkStatus();
}

std::vector<img::Fd*> SharedFiles::FdsOf(pid_t pid) {
  std::vector<img::Fd*> out;
  for (auto it = fds_.lower_bound({pid, INT_MIN}); it != fds_.end() && it->first.first == pid; ++it) {
    out.push_back(&it->second);
  }
  return out;
}

void SharedFiles::PutBack() {
  for (auto& [kind, pass] : passes_) {
    if (pass) pass->PutBack();
  }
}

void SharedFiles::AddObject(pid_t pid, img::FileObject obj) { objects_[pid].push_back(std::move(obj)); }

uint32_t SharedFiles::NewFileId() {
  descriptions_.push_back({0, -1});
  return static_cast<uint32_t>(descriptions_.size());
}

const SharedFiles::PrivateSeen* SharedFiles::SeenPrivate(pid_t pid, int fd) const {
  auto it = private_seen_.find({pid, fd});
  return it == private_seen_.end() ? nullptr : &it->second;
}

const std::vector<int>* SharedFiles::Listed(pid_t pid) const {
  auto it = listed_.find(pid);
  return it == listed_.end() ? nullptr : &it->second;
}

const img::Fd* SharedFiles::Find(pid_t pid, int fd) const {
  auto it = fds_.find({pid, fd});
  return it == fds_.end() ? nullptr : &it->second;
}

void SharedFiles::AddObjects(pid_t pid, img::Process* out) const {
  if (auto it = objects_.find(pid); it != objects_.end()) {
    for (const img::FileObject& o : it->second) *out->add_file_objects() = o;
  }
}

}  // namespace cf::engine
