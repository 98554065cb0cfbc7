// Planning and creating the shared objects (see shared_files.h).
//
// Planning runs in criu-fast before the tree exists: it gathers the objects
// saved in every core (pipes, socket pairs), gives each eventfd, timerfd,
// signalfd, inotify and epoll description (and each regular file or
// directory description held by several processes) an object of its own,
// maps every fd that names an open file description
// (file_id) to its object, and makes the lowest common ancestor of the
// processes holding an object its owner.
#include "restore/shared_files.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <optional>
#include <set>
#include <string>

#include "common/log.h"

namespace cf::restore {
namespace {

using ParentMap = std::map<pid_t, pid_t>;  // pid -> parent, for every process of the image

// True when |anc| is |pid| or one of its ancestors in the image.
bool IsAncestorOrSelf(pid_t anc, pid_t pid, const ParentMap& parent) {
  for (;;) {
    if (pid == anc) return true;
    auto it = parent.find(pid);
    if (it == parent.end() || !parent.count(it->second)) return false;
    pid = it->second;
  }
}

// The lowest process of the image that is an ancestor (or self) of every
// process of |users|.
Result<pid_t> LowestCommonAncestor(const std::set<pid_t>& users, const ParentMap& parent) {
  for (pid_t c = *users.begin();;) {
    bool all = true;
    for (pid_t u : users) all = all && IsAncestorOrSelf(c, u, parent);
    if (all) return c;
    auto it = parent.find(c);
    if (it == parent.end() || !parent.count(it->second)) break;
    c = it->second;
  }
  return Errorf("processes %d and others share a file but have no common ancestor in the image", *users.begin());
}

const char* KindName(SharedObject::Kind k) {
  switch (k) {
    case SharedObject::Kind::kPipe: return "pipe";
    case SharedObject::Kind::kUnixPair: return "socket pair";
    case SharedObject::Kind::kEventFd: return "eventfd";
    case SharedObject::Kind::kFile: return "file";
    case SharedObject::Kind::kTimerFd: return "timerfd";
    case SharedObject::Kind::kSignalFd: return "signalfd";
    case SharedObject::Kind::kInotify: return "inotify instance";
    case SharedObject::Kind::kEpoll: return "epoll instance";
  }
  return "?";
}

// The kinds whose object is one open file description (no object record
// in the core: the state is on the fds).
std::optional<SharedObject::Kind> DescriptionKind(img::Fd::Type t) {
  switch (t) {
    case img::Fd::EVENTFD: return SharedObject::Kind::kEventFd;
    case img::Fd::TIMERFD: return SharedObject::Kind::kTimerFd;
    case img::Fd::SIGNALFD: return SharedObject::Kind::kSignalFd;
    case img::Fd::INOTIFY: return SharedObject::Kind::kInotify;
    case img::Fd::EPOLL: return SharedObject::Kind::kEpoll;
    case img::Fd::REG:
    case img::Fd::DIR:
    case img::Fd::MEMFD: return SharedObject::Kind::kFile;  // held by several processes
    default: return std::nullopt;
  }
}

// Room for descriptors up to |top| (criu-fast may run with a lower
// RLIMIT_NOFILE than the target had; the target's limits come later).

}  // namespace

Status EnsureFdRoom(int top) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return ErrnoStatus("getrlimit");
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > static_cast<rlim_t>(top)) return OkStatus();
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= static_cast<rlim_t>(top)) {
    return Errorf("descriptor %d is above the hard RLIMIT_NOFILE (%lu)", top, rl.rlim_max);
  }
  rl.rlim_cur = static_cast<rlim_t>(top) + 1;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return ErrnoStatus("raise RLIMIT_NOFILE");
  return OkStatus();
}

Result<SharedFilePlan> PlanSharedFiles(const ImageSet& images) {
  SharedFilePlan plan;
  ParentMap parent;
  for (const ProcessImages& p : images.processes) parent[p.core.pid()] = p.core.ppid();

  std::map<std::pair<uint64_t, uint64_t>, size_t> pipes;  // (dev, inode) -> object
  std::map<uint64_t, size_t> sockets;                      // socket inode -> object
  for (const ProcessImages& p : images.processes) {
    for (const img::Pipe& pipe : p.core.pipes()) {
      if (!pipes.emplace(std::make_pair(pipe.dev(), pipe.inode()), plan.objects.size()).second) {
        return Errorf("core-%d.img: pipe %lu saved twice", p.core.pid(), pipe.inode());
      }
      SharedObject o;
      o.kind = SharedObject::Kind::kPipe;
      o.pipe = &pipe;
      plan.objects.push_back(std::move(o));
    }
    for (const img::UnixPair& pair : p.core.unix_pairs()) {
      for (uint64_t ino : {pair.a().inode(), pair.b().inode()}) {
        if (ino && !sockets.emplace(ino, plan.objects.size()).second) {
          return Errorf("core-%d.img: socket %lu saved twice", p.core.pid(), ino);
        }
      }
      SharedObject o;
      o.kind = SharedObject::Kind::kUnixPair;
      o.pair = &pair;
      plan.objects.push_back(std::move(o));
    }
  }

  std::map<uint32_t, size_t> file_object;  // file_id -> object
  std::vector<std::set<pid_t>> users(plan.objects.size());
  int max_fd = 2;
  for (const ProcessImages& p : images.processes) {
    const pid_t pid = p.core.pid();
    for (const img::Fd& f : p.core.fds()) {
      max_fd = std::max(max_fd, f.fd());
      if (f.file_id() == 0) continue;
      size_t obj = 0;
      auto missing = [&](const char* what) {
        return Errorf("core-%d.img: fd %d: its %s (inode %lu) is not in the image", pid, f.fd(), what, f.inode());
      };
      if (f.type() == img::Fd::PIPE || f.type() == img::Fd::FIFO) {
        auto it = pipes.find({f.dev(), f.inode()});
        if (it == pipes.end()) return missing("pipe");
        obj = it->second;
      } else if (f.type() == img::Fd::UNIX_SOCKET) {
        auto it = sockets.find(f.inode());
        if (it == sockets.end()) return missing("socket pair");
        obj = it->second;
      } else if (auto kind = DescriptionKind(f.type())) {
        auto it = file_object.find(f.file_id());
        if (it != file_object.end()) {
          obj = it->second;
        } else {
          obj = plan.objects.size();
          SharedObject o;
          o.kind = *kind;
          plan.objects.push_back(std::move(o));
          users.emplace_back();
        }
      } else {
        return Errorf("core-%d.img: fd %d has a file id but type %d", pid, f.fd(), static_cast<int>(f.type()));
      }
      auto [it, inserted] = file_object.emplace(f.file_id(), obj);
      if (!inserted && it->second != obj) {
        return Errorf("core-%d.img: fd %d: open file %u belongs to two objects", pid, f.fd(), f.file_id());
      }
      plan.objects[obj].files.emplace(f.file_id(), &f);
      users[obj].insert(pid);
    }
  }
  for (size_t i = 0; i < plan.objects.size(); ++i) {
    SharedObject& o = plan.objects[i];
    if (users[i].empty()) return Errorf("a %s of the image is held by no descriptor", KindName(o.kind));
    ASSIGN_OR_RETURN(o.owner, LowestCommonAncestor(users[i], parent));
  }
  plan.temp_base = max_fd + 1;
  return plan;
}

Status CreateOwnedFiles(const SharedFilePlan& plan, pid_t pid, InheritedFiles* files) {
  size_t n = 0;
  for (const SharedObject& o : plan.objects) {
    if (o.owner == pid) n += o.files.size();
  }
  if (n == 0) return OkStatus();
  // What this process inherited sits at temp_base and up too.
  RETURN_IF_ERROR(EnsureFdRoom(plan.temp_base + static_cast<int>(files->size() + n) + 16));
  for (const SharedObject& o : plan.objects) {
    if (o.owner != pid) continue;
    CreatedFiles created;
    switch (o.kind) {
      case SharedObject::Kind::kPipe: RETURN_IF_ERROR(CreatePipe(o, &created)); break;
      case SharedObject::Kind::kUnixPair: RETURN_IF_ERROR(CreateUnixPair(o, &created)); break;
      case SharedObject::Kind::kEventFd: RETURN_IF_ERROR(CreateEventFd(o, &created)); break;
      case SharedObject::Kind::kFile: RETURN_IF_ERROR(CreateSharedFile(o, plan.shmem, &created)); break;
      case SharedObject::Kind::kTimerFd: RETURN_IF_ERROR(CreateTimerFd(o, &created)); break;
      case SharedObject::Kind::kSignalFd: RETURN_IF_ERROR(CreateSignalFd(o, &created)); break;
      case SharedObject::Kind::kInotify: RETURN_IF_ERROR(CreateInotify(o, &created)); break;
      case SharedObject::Kind::kEpoll: RETURN_IF_ERROR(CreateEpoll(o, &created)); break;
    }
    for (auto& [id, fd] : created) {
      const int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, plan.temp_base);
      if (moved < 0) return ErrnoStatus(std::string("move a new ") + KindName(o.kind) + " descriptor");
      (*files)[id] = moved;
    }
  }
  return OkStatus();
}

}  // namespace cf::restore
