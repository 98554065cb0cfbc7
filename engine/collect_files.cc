// Descriptors of one process: each is recognised by the kinds registry
// (kinds/kind.h). Those the tree-wide pass took (engine/shared_files.h) are
// copied from it; the others (kPrivate kinds held by this process alone) get
// their common fields here and their kind's state from the kind. A
// descriptor no kind takes is refused with a message naming the fd and its
// kind. Then every fd's kind may attach what it needs (a memfd its shared
// memory object), and the objects this process carries join its core.
// The owner and signal of each description (F_SETOWN_EX, F_SETSIG), which
// /proc does not show, are read here for every fd, through a copy of it.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <vector>

#include "common/io.h"
#include "common/log.h"
#include "engine/collect.h"
#include "engine/shared_files.h"
#include "kinds/file_lock.h"
#include "proc/fd_dir.h"
#include "proc/open_file_index.h"
#include "proc/proc_parse.h"

namespace cf::engine {
using namespace ::cf::proc;  // /proc parsing, the layer below
namespace {

// A name for the kind of a descriptor no kind takes, from its link text.
std::string UnknownKind(const kinds::FdSight& s) {
  if (kinds::StartsWith(s.link, "anon_inode:")) {
    std::string k = s.link.substr(11);
    if (!k.empty() && k.front() == '[') k = k.substr(1, k.size() - 2);
    return k;  // pidfd, io_uring, userfaultfd, fanotify, perf_event...
  }
  char type[32];
  snprintf(type, sizeof(type), "file of type %o", s.sb.st_mode & S_IFMT);
  return type;
}

// The owner and signal of fd |fd| (ReadOwner), read through a copy of it.
// |pidfd|: of the process.
Status ReadOwnerOf(int pidfd, int fd, img::Fd* f) {
  if (f->flags() & O_PATH) return OkStatus();  // fcntl refuses F_GETOWN_EX there: it has none
  ASSIGN_OR_RETURN(UniqueFd copy, kinds::TakeFdThrough(pidfd, fd));
  ASSIGN_OR_RETURN(std::optional<img::FdOwner> owner, ReadOwner(copy.get(), fd, f->flags()));
  if (owner) *f->mutable_owner() = std::move(*owner);
  return OkStatus();
}

}  // namespace

Status CollectFds(pid_t pid, kinds::DumpContext& ctx, const SharedFiles& shared, img::Process* out) {
  ASSIGN_OR_RETURN(FdDir dir, FdDir::Open(pid));
  std::vector<int> fds;
  if (const std::vector<int>* listed = shared.Listed(pid)) {
    fds = *listed;
  } else {
    ASSIGN_OR_RETURN(fds, dir.List());
  }
  OpenFileIndex own_files;  // dups within this process: value = first fd
  std::map<uint32_t, int> first_of_id;  // the same for fds the tree-wide pass saw
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return ErrnoStatus("pidfd_open " + std::to_string(pid));
  for (int fd : fds) {
    if (const img::Fd* kept = shared.Find(pid, fd)) {
      img::Fd* f = out->add_fds();
      *f = *kept;  // its owner too
      continue;
    }
    const SharedFiles::PrivateSeen* seen = shared.SeenPrivate(pid, fd);
    // What the tree-wide pass read is used in place (not copied).
    std::optional<kinds::FdSight> looked;
    if (seen == nullptr) {
      ASSIGN_OR_RETURN(looked, LookAtFd(dir, fd));
      if (!looked) continue;  // closed meanwhile
    }
    const kinds::FdSight& s = seen != nullptr ? seen->sight : *looked;
    const kinds::FdKind* kind = kinds::Recognise(s);
    if (kind == nullptr) {
      return Errorf("process %d fd %d is a %s (%s): not supported yet", pid, fd, UnknownKind(s).c_str(),
                    s.link.c_str());
    }
    if (kind->scope() != kinds::Scope::kPrivate) {
      return Errorf("process %d fd %d (%s): a %s the tree-wide pass did not see", pid, fd, s.link.c_str(),
                    kind->name());
    }
    FdInfo read_info;
    if (seen == nullptr) {
      ASSIGN_OR_RETURN(read_info, dir.Info(fd));
    }
    const FdInfo& info = seen != nullptr ? seen->info : read_info;
    img::Fd* f = out->add_fds();
    f->set_fd(fd);
    kinds::SetFdInfo(info, f);
    RETURN_IF_ERROR(kinds::ReadLocks(s, info, ctx, f));
    f->set_dev(s.sb.st_dev);
    f->set_inode(s.sb.st_ino);
    f->set_mode(s.sb.st_mode);
    f->set_rdev(s.sb.st_rdev);
    f->set_size(static_cast<uint64_t>(s.sb.st_size));
    f->set_path(s.link);
    std::optional<uint32_t> first;
    if (seen != nullptr) {
      auto [it, added] = first_of_id.emplace(seen->file_id, fd);
      if (!added) first = static_cast<uint32_t>(it->second);
    } else {
      ASSIGN_OR_RETURN(first, own_files.FindOrAdd(pid, fd, KeyOf(s.sb, info), static_cast<uint32_t>(fd)));
    }
    if (first) {
      f->set_is_dup(true);
      f->set_dup_of(static_cast<int32_t>(*first));
    }
    if (Status st = kind->Read(s, info, ctx, f); !st.ok()) return st.WithContext(s.Name());
    if (seen != nullptr) {
      if (seen->owner) *f->mutable_owner() = *seen->owner;
    } else {
      RETURN_IF_ERROR(ReadOwnerOf(pidfd.get(), fd, f).WithContext(s.Name()));
    }
  }
  for (img::Fd& f : *out->mutable_fds()) {
    RETURN_IF_ERROR(kinds::KindOf(f)->Attach(pid, ctx, &f, out));
  }
  shared.AddObjects(pid, out);
  LOG_INFO("files: process %d has %d descriptors", pid, out->fds_size());
  return OkStatus();
}

}  // namespace cf::engine
