#include "engine/track.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <vector>

#include "common/fault.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "pagemap/uffd_track.h"
#include "proc/fd_dir.h"
#include "ptrace/remote_syscall.h"

namespace cf::engine {
namespace {

// What the keeper sends, one record per descriptor, in the order of the
// descriptors passed with it (SCM_RIGHTS).
struct KeptRecord {
  int32_t pid;
  uint32_t pad;
  uint64_t start_time;
};

constexpr size_t kMaxFdsPerMessage = 250;  // below SCM_MAX_FD (253)

Result<sockaddr_un> AbstractAddr(const std::string& name, socklen_t* len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (name.size() + 1 > sizeof(a.sun_path)) return Error("keeper socket name too long: " + name, ENAMETOOLONG);
  memcpy(a.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return a;
}

bool PeerTrusted(int sock) {
  ucred cr{};
  socklen_t len = sizeof(cr);
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) return false;
  return cr.uid == 0 || cr.uid == geteuid();
}

}  // namespace

std::string WriteTracking::KeeperName(const std::string& image_id) { return "criu-fast-track-" + image_id; }

int WriteTracking::Inherited(pid_t pid, uint64_t start_time) const {
  auto it = fds_.find(pid);
  if (it == fds_.end() || it->second.start_time != start_time) return -1;
  return it->second.uffd.get();
}

WriteTracking WriteTracking::FromKeeper(const std::string& name) {
  WriteTracking t;
  socklen_t len = 0;
  auto addr = AbstractAddr(name, &len);
  if (!addr.ok()) return t;
  UniqueFd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s.valid()) return t;
  if (connect(s.get(), reinterpret_cast<const sockaddr*>(&*addr), len) != 0) {
    LOG_INFO("track: no keeper at %s (%m): pages are compared with the parent's by content", name.c_str());
    return t;
  }
  if (!PeerTrusted(s.get())) {
    LOG_WARN("track: the keeper at %s is not run by root or by us: ignored", name.c_str());
    return t;
  }
  for (;;) {
    KeptRecord recs[kMaxFdsPerMessage];
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
    iovec iov{recs, sizeof(recs)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl;
    msg.msg_controllen = sizeof(ctl);
    const ssize_t n = recvmsg(s.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) break;
    std::vector<int> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < cnt; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.push_back(fd);
      }
    }
    const size_t nrec = static_cast<size_t>(n) / sizeof(KeptRecord);
    for (size_t i = 0; i < fds.size(); ++i) {
      if (i < nrec) {
        t.fds_[recs[i].pid] = Entry{recs[i].start_time, UniqueFd(fds[i])};
      } else {
        close(fds[i]);
      }
    }
  }
  LOG_INFO("track: took write tracking of %zu processes from %s", t.fds_.size(), name.c_str());
  return t;
}

namespace {

// The descriptor number the next open of |pid| gets (its lowest free one).
Result<int> LowestFreeFd(pid_t pid) {
  ASSIGN_OR_RETURN(const proc::FdDir dir, proc::FdDir::Open(pid));
  ASSIGN_OR_RETURN(const std::vector<int> open, dir.List());  // ascending
  int free = 0;
  for (int fd : open) {
    if (fd != free) break;
    ++free;
  }
  return free;
}

}  // namespace

Result<UniqueFd> MakeUserfaultfdIn(pid_t pid, int flags) {
  ASSIGN_OR_RETURN(const int expect_fd, LowestFreeFd(pid));
  ASSIGN_OR_RETURN(const tracing::RemoteSites sites, tracing::FindRemoteSites(pid));
  ASSIGN_OR_RETURN(tracing::RemoteSyscall rs, tracing::RemoteSyscall::Attach(pid, pid, &sites));
  Result<UniqueFd> copy = Error("track: no descriptor taken", EIO);
  // The target's descriptor is closed whatever happens, also should
  // criu-fast die before it could close it (RemoteSyscall::CallClosing).
  Result<long> fd = rs.CallClosing(SYS_userfaultfd, {static_cast<uint64_t>(flags)}, expect_fd, [&](long made) {
    copy = kinds::TakeFd(pid, static_cast<int>(made));
    if (Status f = CheckFault("track-arm"); !f.ok()) copy = f;
    return copy.status();
  });
  RETURN_IF_ERROR(rs.Restore());
  RETURN_IF_ERROR(fd.status());
  if (*fd < 0) return ErrnoStatus(static_cast<int>(-*fd), "track: userfaultfd() in process " + std::to_string(pid));
  return copy;
}

Result<int> WriteTracking::Create(pid_t pid, uint64_t start_time) {
  ASSIGN_OR_RETURN(UniqueFd copy, MakeUserfaultfdIn(pid, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
  RETURN_IF_ERROR(pagemap::EnableWriteTracking(copy.get()));
  const int raw = copy.get();
  fds_[pid] = Entry{start_time, std::move(copy)};
  return raw;
}

Status WriteTracking::Keep(const std::string& name) {
  if (fds_.empty()) return OkStatus();
  socklen_t len = 0;
  ASSIGN_OR_RETURN(const sockaddr_un addr, AbstractAddr(name, &len));
  UniqueFd ls(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!ls.valid()) return ErrnoStatus("track: keeper socket");
  if (bind(ls.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) return ErrnoStatus("track: bind " + name);
  if (listen(ls.get(), 4) != 0) return ErrnoStatus("track: listen " + name);
  // Everything the keeper needs is made here, before the fork.
  std::vector<int> uffds;
  std::vector<KeptRecord> recs;
  std::vector<UniqueFd> pidfd_owners;
  std::vector<pollfd> pfds;
  pfds.push_back({ls.get(), POLLIN, 0});
  for (const auto& [pid, e] : fds_) {
    uffds.push_back(e.uffd.get());
    recs.push_back({pid, 0, e.start_time});
    UniqueFd pfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (pfd.valid()) {
      pfds.push_back({pfd.get(), POLLIN, 0});
      pidfd_owners.push_back(std::move(pfd));
    }
  }
  std::vector<int> keep_fds = uffds;
  keep_fds.push_back(ls.get());
  for (size_t i = 1; i < pfds.size(); ++i) keep_fds.push_back(pfds[i].fd);
  // Up to 64 Ki descriptors are closed in the child: a sorted list to walk.
  std::sort(keep_fds.begin(), keep_fds.end());

  const pid_t child = fork();
  if (child < 0) return ErrnoStatus("track: fork the keeper");
  if (child == 0) {
    setsid();
    if (chdir("/") != 0) _exit(1);
    prctl(PR_SET_NAME, "cf-track-keeper", 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    int next = 0;
    for (int k : keep_fds) {
      if (next < k) syscall(SYS_close_range, next, k - 1, 0);
      next = k + 1;
    }
    syscall(SYS_close_range, next, ~0U, 0);
    for (int k : keep_fds) fcntl(k, F_SETFD, FD_CLOEXEC);
    const size_t targets = pfds.size() - 1;
    size_t dead = 0;
    for (;;) {
      if (targets > 0 && dead == targets) _exit(0);  // every tracked process is gone
      if (poll(pfds.data(), pfds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        _exit(1);
      }
      for (size_t i = 1; i < pfds.size(); ++i) {
        if (pfds[i].revents) {
          pfds[i].fd = -1;  // poll ignores it from now on
          ++dead;
        }
      }
      if (!(pfds[0].revents & POLLIN)) continue;
      const int c = accept4(pfds[0].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      if (!PeerTrusted(c)) {
        close(c);
        continue;
      }
      for (size_t off = 0; off < uffds.size(); off += kMaxFdsPerMessage) {
        const size_t n = std::min(kMaxFdsPerMessage, uffds.size() - off);
        alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
        iovec iov{const_cast<KeptRecord*>(recs.data() + off), n * sizeof(KeptRecord)};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctl;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cm), uffds.data() + off, sizeof(int) * n);
        if (sendmsg(c, &msg, MSG_NOSIGNAL) < 0) _exit(1);
      }
      _exit(0);  // handed over; the peer holds the tracking now
    }
  }
  LOG_INFO("track: keeper %d holds the write tracking of %zu processes at %s", child, fds_.size(), name.c_str());
  fds_.clear();
  return OkStatus();
}

}  // namespace cf::engine
