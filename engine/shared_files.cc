// The pass over the tree's shareable descriptors (see shared_files.h):
//   1. per process, per fd of a kind this pass takes (regular files and
//      directories only when another process holds the same description):
//      its fdinfo, and its
//      open file description's id (kcmp against the descriptions seen so far
//      with the same dev and inode); for a socket, what sock_diag says; for
//      an eventfd, its counter and mode; for a timerfd, signalfd or inotify
//      instance, its state; for an epoll instance, its targets;
//   2. per pipe: capacity and queued bytes, once, through its first fd;
//   3. per socket pair: both ends found in the tree (or the peer closed),
//      and each end's state and queue;
//   4. per epoll description: the first process holding it in which every
//      target is still at its fd number (kcmp) gets the targets on that fd.
#include "engine/shared_files.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <set>

#include "common/io.h"
#include "common/log.h"
#include "proc/proc_parse.h"

namespace cf::engine {
using namespace ::cf::proc;  // /proc parsing, the layer below
namespace {

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::string FdName(pid_t pid, int fd, const std::string& link) {
  return "process " + std::to_string(pid) + " fd " + std::to_string(fd) + " (" + link + ")";
}

std::string FamilyName(int family) {
  switch (family) {
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_NETLINK: return "AF_NETLINK";
    case AF_PACKET: return "AF_PACKET";
    case AF_VSOCK: return "AF_VSOCK";
    default: return "family " + std::to_string(family);
  }
}

bool IsFileKind(img::Fd::Type t) { return t == img::Fd::REG || t == img::Fd::DIR || t == img::Fd::MEMFD; }

void SetFdInfo(const FdInfo& info, img::Fd* f) {
  f->set_flags(info.flags & ~static_cast<uint32_t>(O_CLOEXEC));
  f->set_cloexec(info.flags & O_CLOEXEC);
  f->set_pos(info.pos);
  f->set_mnt_id(info.mnt_id);
}

}  // namespace

Status SharedFiles::Collect(const std::vector<pid_t>& pids) {
  order_ = pids;
  for (pid_t pid : pids) RETURN_IF_ERROR(CollectProcess(pid));
  RETURN_IF_ERROR(CompleteSharedFiles());
  RETURN_IF_ERROR(CollectPipes());
  RETURN_IF_ERROR(CollectSockets());
  RETURN_IF_ERROR(CollectEpolls());
  LOG_INFO("files: %zu shared-kind descriptors, %zu open file descriptions", fds_.size(), descriptions_.size());
  return OkStatus();
}

// A regular file, memfd or directory description that one process holds
// alone is left to CollectFds (dup'ed fds within a process are found there); one
// that several processes share keeps its file_id, so that restore opens it
// once, in their lowest common ancestor, and they share its offset again;
// its fdinfo (flags, offset) is read here, for those kept only.
Status SharedFiles::CompleteSharedFiles() {
  std::map<uint32_t, std::set<pid_t>> holders;
  for (const auto& [ref, f] : fds_) {
    if (IsFileKind(f.type())) holders[f.file_id()].insert(ref.first);
  }
  for (auto it = fds_.begin(); it != fds_.end();) {
    const img::Fd& f = it->second;
    if (!IsFileKind(f.type())) {
      ++it;
    } else if (holders[f.file_id()].size() < 2) {
      it = fds_.erase(it);
    } else {
      ASSIGN_OR_RETURN(FdInfo info, ReadFdInfo(it->first.first, f.fd()));
      SetFdInfo(info, &it->second);
      ++it;
    }
  }
  return OkStatus();
}

Result<uint32_t> SharedFiles::DescriptionId(pid_t pid, int fd, uint64_t dev, uint64_t inode) {
  const auto next = static_cast<uint32_t>(descriptions_.size() + 1);
  ASSIGN_OR_RETURN(std::optional<uint32_t> seen, open_files_.FindOrAdd(pid, fd, dev, inode, next));
  if (seen) return *seen;
  descriptions_.push_back({{pid, fd}, dev, inode});
  return next;
}

Status SharedFiles::CollectProcess(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  ASSIGN_OR_RETURN(std::vector<int> fds, ListFds(pid));
  for (int fd : fds) {
    const std::string fd_path = proc + "/fd/" + std::to_string(fd);
    auto link = ReadLink(fd_path);
    if (!link.ok()) {
      if (link.status().err() == ENOENT) continue;  // closed meanwhile (only with -R)
      return link.status();
    }
    struct stat sb;
    if (stat(fd_path.c_str(), &sb) != 0) return ErrnoStatus("stat " + fd_path);
    img::Fd f;
    if (StartsWith(*link, "pipe:")) {
      f.set_type(img::Fd::PIPE);
    } else if (S_ISFIFO(sb.st_mode)) {
      if (sb.st_nlink == 0) return Error(FdName(pid, fd, *link) + " is a deleted FIFO: not supported yet");
      f.set_type(img::Fd::FIFO);
    } else if (S_ISSOCK(sb.st_mode)) {
      RETURN_IF_ERROR(CollectSocket(pid, fd, *link, sb.st_ino));
      f.set_type(img::Fd::UNIX_SOCKET);
    } else if (*link == "anon_inode:[eventfd]") {
      f.set_type(img::Fd::EVENTFD);
    } else if (*link == "anon_inode:[timerfd]") {
      f.set_type(img::Fd::TIMERFD);
    } else if (*link == "anon_inode:[signalfd]") {
      f.set_type(img::Fd::SIGNALFD);
    } else if (*link == "anon_inode:inotify") {
      f.set_type(img::Fd::INOTIFY);
    } else if (*link == "anon_inode:[eventpoll]") {
      f.set_type(img::Fd::EPOLL);
    } else if ((S_ISREG(sb.st_mode) && sb.st_nlink > 0 && !StartsWith(*link, "/memfd:") &&
                !StartsWith(*link, "anon_inode:")) || S_ISDIR(sb.st_mode)) {
      // Kept only if another process holds the same description (below).
      f.set_type(S_ISREG(sb.st_mode) ? img::Fd::REG : img::Fd::DIR);
      f.set_size(static_cast<uint64_t>(sb.st_size));
    } else if (S_ISREG(sb.st_mode) && StartsWith(*link, "/memfd:")) {
      // Likewise; the dumper gives it its shared memory object (shmem_id).
      f.set_type(img::Fd::MEMFD);
      f.set_size(static_cast<uint64_t>(sb.st_size));
    } else {
      continue;  // not a kind of this pass
    }
    f.set_fd(fd);
    f.set_dev(sb.st_dev);
    f.set_inode(sb.st_ino);
    f.set_mode(sb.st_mode);
    f.set_path(*link);
    ASSIGN_OR_RETURN(uint32_t id, DescriptionId(pid, fd, sb.st_dev, sb.st_ino));
    f.set_file_id(id);
    if (IsFileKind(f.type())) {
      // Most are held by one process and go to CollectFds, which reads their
      // fdinfo: read it only for those kept (CompleteSharedFiles).
      fds_[{pid, fd}] = std::move(f);
      continue;
    }
    ASSIGN_OR_RETURN(FdInfo info, ReadFdInfo(pid, fd));
    SetFdInfo(info, &f);
    RETURN_IF_ERROR(ReadState(pid, fd, info, id, &f).WithContext(FdName(pid, fd, *link)));
    fds_[{pid, fd}] = std::move(f);
  }
  return OkStatus();
}

// The kind-specific state of |f| (fd |fd| of |pid|, open file |id|).
// A description seen before is read once: its later fds copy the state.
Status SharedFiles::ReadState(pid_t pid, int fd, const FdInfo& info, uint32_t id, img::Fd* f) {
  const Ref& first = descriptions_[id - 1].first;
  if ((first.pid != pid || first.fd != fd) && f->type() != img::Fd::EPOLL) {
    const img::Fd& prev = fds_.at({first.pid, first.fd});
    f->set_eventfd_count(prev.eventfd_count());
    f->set_eventfd_semaphore(prev.eventfd_semaphore());
    if (prev.has_timerfd()) *f->mutable_timerfd() = prev.timerfd();
    f->set_signalfd_mask(prev.signalfd_mask());
    *f->mutable_inotify_watches() = prev.inotify_watches();
    return OkStatus();
  }
  switch (f->type()) {
    case img::Fd::EVENTFD: return ReadEventFd(pid, fd, info, f);
    case img::Fd::TIMERFD: return ReadTimerFd(pid, fd, f);
    case img::Fd::SIGNALFD: return ReadSignalFd(pid, fd, info, f);
    case img::Fd::INOTIFY: return ReadInotify(pid, fd, info, f);
    case img::Fd::EPOLL: {
      Epoll& e = epolls_[id];
      if (e.refs.empty()) {
        ASSIGN_OR_RETURN(e.targets, ParseEpollTargets(info));
      }
      e.refs.push_back({pid, fd});
      return OkStatus();
    }
    default: return OkStatus();
  }
}

Status SharedFiles::CollectPipes() {
  // The ends of each pipe that the tree holds (1 read, 2 write).
  std::map<std::pair<uint64_t, uint64_t>, int> ends;
  for (const auto& [ref, f] : fds_) {
    if (f.type() != img::Fd::PIPE && f.type() != img::Fd::FIFO) continue;
    const uint32_t access = f.flags() & O_ACCMODE;
    ends[{f.dev(), f.inode()}] |= access == O_RDONLY ? 1 : access == O_WRONLY ? 2 : 3;
  }
  std::set<std::pair<uint64_t, uint64_t>> done;
  for (pid_t pid : order_) {
    for (auto it = fds_.lower_bound({pid, INT_MIN}); it != fds_.end() && it->first.first == pid; ++it) {
      const img::Fd& f = it->second;
      if (f.type() != img::Fd::PIPE && f.type() != img::Fd::FIFO) continue;
      if (!done.insert({f.dev(), f.inode()}).second) continue;
      img::Pipe p;
      p.set_dev(f.dev());
      p.set_inode(f.inode());
      RETURN_IF_ERROR(ReadPipe(pid, f.fd(), f.flags(), &p).WithContext(FdName(pid, f.fd(), f.path())));
      LOG_DEBUG("files: pipe %lu: %zu bytes queued, size %u", f.inode(), p.data().size(), p.size());
      const int have = ends[{f.dev(), f.inode()}];
      if (f.type() == img::Fd::PIPE && have != 3) {
        LOG_WARN("files: %s: no process of the tree holds the pipe's %s end: restored, that end is closed",
                 FdName(pid, f.fd(), f.path()).c_str(), have == 1 ? "write" : "read");
      }
      pipes_[pid].push_back(std::move(p));
    }
  }
  return OkStatus();
}

// A unix socket that is one end of a connected, unnamed pair; anything else
// is refused.
Status SharedFiles::CollectSocket(pid_t pid, int fd, const std::string& link, uint64_t inode) {
  const std::string name = FdName(pid, fd, link);
  ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(pid, fd));
  int family = 0;
  socklen_t len = sizeof(family);
  if (getsockopt(copy.get(), SOL_SOCKET, SO_DOMAIN, &family, &len) != 0) return ErrnoStatus(name + ": SO_DOMAIN");
  if (family != AF_UNIX) return Error(name + " is a socket of " + FamilyName(family) + ": not supported yet");
  auto info = QueryUnixSocket(inode);
  if (!info.ok()) return info.status().WithContext(name + " is a unix socket");
  if (!info->name.empty()) {
    return Error(name + " is a unix socket bound to " + info->name + ": not supported yet");
  }
  if (!info->connected) {
    return Error(name + " is a unix socket that is not connected (state " + std::to_string(info->state) +
                 "): not supported yet");
  }
  Socket& s = sockets_[inode];
  s.refs.push_back({pid, fd});
  s.info = *info;
  return OkStatus();
}

Status SharedFiles::ReadEnd(uint64_t inode, img::UnixEnd* out) const {
  const Socket& s = sockets_.at(inode);
  const Ref& r = s.refs.front();
  const std::string name = FdName(r.pid, r.fd, "socket:[" + std::to_string(inode) + "]");
  out->set_inode(inode);
  ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(r.pid, r.fd));
  return ReadUnixEnd(copy.get(), s.info, out).WithContext(name);
}

// Pairs the sockets: each with its peer, which the tree must hold too
// (or which is closed: a socket the kernel no longer knows).
Status SharedFiles::CollectSockets() {
  std::set<uint64_t> done;
  for (pid_t pid : order_) {
    for (auto it = fds_.lower_bound({pid, INT_MIN}); it != fds_.end() && it->first.first == pid; ++it) {
      const img::Fd& f = it->second;
      if (f.type() != img::Fd::UNIX_SOCKET || done.count(f.inode())) continue;
      const Socket& s = sockets_.at(f.inode());
      const std::string name = FdName(pid, f.fd(), f.path());
      uint64_t peer = s.info.peer;
      if (peer && !sockets_.count(peer)) {
        auto q = QueryUnixSocket(peer);
        if (q.ok()) {
          return Error(name + ": its peer, socket:[" + std::to_string(peer) +
                       "], is held by no process of the tree: not supported yet");
        }
        if (q.status().err() != ENOENT) return q.status().WithContext(name);
        peer = 0;  // closed
      }
      if (peer) {
        const Socket& ps = sockets_.at(peer);
        if (ps.info.peer != f.inode() || ps.info.type != s.info.type) {
          return Error(name + ": its peer socket:[" + std::to_string(peer) + "] is connected elsewhere");
        }
      }
      img::UnixPair pair;
      pair.set_type(s.info.type);
      RETURN_IF_ERROR(ReadEnd(f.inode(), pair.mutable_a()));
      if (peer) RETURN_IF_ERROR(ReadEnd(peer, pair.mutable_b()));
      done.insert(f.inode());
      done.insert(peer);
      LOG_DEBUG("files: socket pair %lu-%lu (type %u): %d and %d messages queued", f.inode(), peer, pair.type(),
                pair.a().queue_size(), pair.b().queue_size());
      pairs_[pid].push_back(std::move(pair));
    }
  }
  return OkStatus();
}

// Each epoll description's targets go on the first fd, in dump order, whose
// process holds every target at its fd number; that process re-adds them at
// restore. An fd of the same description elsewhere shares them.
Status SharedFiles::CollectEpolls() {
  for (auto& [id, e] : epolls_) {
    Status first;
    bool placed = false;
    for (const Ref& r : e.refs) {
      Status s = CheckEpollTargets(r.pid, r.fd, e.targets);
      if (s.ok()) {
        img::Fd& f = fds_.at({r.pid, r.fd});
        for (const EpollTargetInfo& t : e.targets) {
          img::EpollTarget* et = f.add_epoll_targets();
          et->set_tfd(t.tfd);
          et->set_events(t.events);
          et->set_data(t.data);
        }
        LOG_DEBUG("files: epoll %u: %zu targets, added back by process %d fd %d", id, e.targets.size(), r.pid,
                  r.fd);
        placed = true;
        break;
      }
      if (first.ok()) first = s.WithContext(FdName(r.pid, r.fd, "anon_inode:[eventpoll]"));
    }
    if (!placed) {
      if (e.refs.size() > 1) {
        first = first.WithContext("an epoll instance shared by " + std::to_string(e.refs.size()) +
                                  " descriptors, none of whose processes holds all its targets");
      }
      return Error(first.ToString() + ": not supported yet");
    }
  }
  return OkStatus();
}

const img::Fd* SharedFiles::Find(pid_t pid, int fd) const {
  auto it = fds_.find({pid, fd});
  return it == fds_.end() ? nullptr : &it->second;
}

void SharedFiles::AddObjects(pid_t pid, img::Process* out) const {
  if (auto it = pipes_.find(pid); it != pipes_.end()) {
    for (const img::Pipe& p : it->second) *out->add_pipes() = p;
  }
  if (auto it = pairs_.find(pid); it != pairs_.end()) {
    for (const img::UnixPair& p : it->second) *out->add_unix_pairs() = p;
  }
}

}  // namespace cf::engine
