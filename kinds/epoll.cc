// Epoll instances: the files they watch, with events and data.
//
// Dump: fdinfo lists each target by the fd number it was added with (tfd),
// but that number may since have been closed or reused for another file,
// and restore can only add a target through an fd that holds its file. So
// each target is checked with kcmp(KCMP_EPOLL_TFD): fd tfd of the process
// must be the very file the instance watches under that number. The kernel
// may watch the same number twice (two files, the first closed since);
// |toff| tells kcmp which of them, counted in the order fdinfo prints them.
// A target whose number was closed or reused is looked for among the other
// fds of the process (same inode, then kcmp): restore puts that fd at the
// old number for the time of the epoll_ctl, so the instance records the
// same number as before.
// An epoll instance held by several processes is checked in each, in dump
// order, until one holds every target (the tree pass, once every process is
// known); that fd carries the targets.
//
// An instance in flight in a unix socket's queue that no process holds is
// saved with that socket object (kinds/unix_flight.h), whose creator adds
// its targets with AddEpollTarget.
//
// Restore: the instance is created empty by the owner of its description;
// its targets are added by the process whose fd carries them, once every fd
// of that process is at its number (AfterPlacement), with the saved events
// and data. The kernel adds EPOLLERR|EPOLLHUP to every target itself, so
// the saved events (which include them) are valid input. Readiness is found
// again by the kernel when a target is added: a target that is ready is
// reported by the next epoll_wait, also one in EPOLLET mode whose edge the
// program had already seen.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cerrno>
#include <map>
#include <utility>
#include <string>
#include <vector>

#include "common/io.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "kinds/unix_flight.h"
#include "proc/fdinfo_kinds.h"

namespace cf::kinds {
namespace {

constexpr int kKcmpEpollTfd = 7;

struct KcmpEpollSlot {  // struct kcmp_epoll_slot
  uint32_t efd;
  uint32_t tfd;
  uint32_t toff;
};

bool SameFile(pid_t pid, int fd, const KcmpEpollSlot& slot) {
  return syscall(SYS_kcmp, pid, pid, kKcmpEpollTfd, fd, reinterpret_cast<unsigned long>(&slot)) == 0;
}

// Another fd of |pid| that holds the file of epoll target |slot| (inode
// |ino|), or -1.
int FindSource(pid_t pid, const KcmpEpollSlot& slot, uint64_t ino) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd/";
  auto fds = proc::ListFds(pid);
  if (!fds.ok()) return -1;
  for (int fd : *fds) {
    struct stat sb;
    if (fd == static_cast<int>(slot.tfd) || stat((dir + std::to_string(fd)).c_str(), &sb) != 0) continue;
    if (sb.st_ino == ino && SameFile(pid, fd, slot)) return fd;
  }
  return -1;
}

// OK when every target of epoll fd |efd| of |pid| is, in |pid|, the file at
// the fd number it was added with, or at another fd (then in |sources|, by
// target; -1 where it is at its number), and not an epoll instance itself.
Status CheckTargets(pid_t pid, int efd, const std::vector<proc::EpollTargetInfo>& targets, std::vector<int>* sources) {
  std::map<int32_t, uint32_t> seen;  // tfd -> entries with that number so far
  sources->assign(targets.size(), -1);
  for (size_t i = 0; i < targets.size(); ++i) {
    const proc::EpollTargetInfo& t = targets[i];
    const std::string what = "it watches fd " + std::to_string(t.tfd);
    KcmpEpollSlot slot{static_cast<uint32_t>(efd), static_cast<uint32_t>(t.tfd), seen[t.tfd]++};
    const long r = syscall(SYS_kcmp, pid, pid, kKcmpEpollTfd, t.tfd, reinterpret_cast<unsigned long>(&slot));
    if (r < 0 && errno != EBADF) return ErrnoStatus(what + ": kcmp(KCMP_EPOLL_TFD)");
    int at = t.tfd;
    if (r != 0) {
      // Closed or replaced since: the file may still be at another fd.
      at = (*sources)[i] = FindSource(pid, slot, t.ino);
      if (at < 0) {
        return Error(what + (r < 0 ? ", which is closed" : ", which now holds another file") +
                     ", and no other fd of the process holds the watched file");
      }
    }
    auto link = ReadLink("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(at));
    if (link.ok() && *link == "anon_inode:[eventpoll]") {
      return Error(what + ", another epoll instance (nested epoll)");
    }
  }
  return OkStatus();
}

// Puts the file of fd |source| at fd |at| for a moment, keeping what |at|
// held aside (with its close-on-exec flag) until Undo.
class TemporaryFd {
 public:
  ~TemporaryFd() { (void)Undo(); }
  Status Put(int source, int at) {
    at_ = at;
    const int fl = fcntl(at, F_GETFD);
    if (fl >= 0) {
      aside_flags_ = fl;
      aside_ = fcntl(at, F_DUPFD_CLOEXEC, 0);
      if (aside_ < 0) return ErrnoStatus("set fd " + std::to_string(at) + " aside");
    }
    if (dup2(source, at) < 0) return ErrnoStatus("dup fd " + std::to_string(source) + " to " + std::to_string(at));
    return OkStatus();
  }
  Status Undo() {
    if (at_ < 0) return OkStatus();
    const int at = std::exchange(at_, -1);
    if (aside_ < 0) {
      close(at);
      return OkStatus();
    }
    const int aside = std::exchange(aside_, -1);
    const bool ok = dup2(aside, at) >= 0 && fcntl(at, F_SETFD, aside_flags_) == 0;
    close(aside);
    if (!ok) return ErrnoStatus("put fd " + std::to_string(at) + " back");
    return OkStatus();
  }

 private:
  int at_ = -1, aside_ = -1, aside_flags_ = 0;
};

// Where each epoll description is held and what it watches.
class EpollPass final : public TreePass {
 public:
  Status Add(const FdSight& s, const FdInfo& info, bool, img::Fd* f) override {
    Instance& e = instances_[f->file_id()];
    if (e.holders.empty()) {
      ASSIGN_OR_RETURN(e.targets, proc::ParseEpollTargets(info));
    }
    e.holders.push_back({s.pid, s.fd});
    return OkStatus();
  }

  // Each description's targets go on the first fd, in dump order, whose
  // process holds every target at its fd number.
  Status Finish(TreeFds& fds) override {
    for (auto& [id, e] : instances_) {
      Status first;
      img::Fd* carrier = nullptr;
      std::vector<int> sources;
      for (const auto& [pid, fd] : e.holders) {
        Status s = CheckTargets(pid, fd, e.targets, &sources);
        if (s.ok()) {
          for (img::Fd* f : fds.FdsOf(pid)) {
            if (f->fd() == fd) carrier = f;
          }
          if (carrier) break;
          s = Error("not kept by the tree pass");
        }
        if (first.ok()) first = s.WithContext(FdSight{pid, fd, "anon_inode:[eventpoll]", {}}.Name());
      }
      if (!carrier) {
        if (e.holders.size() > 1) {
          first = first.WithContext("an epoll instance shared by " + std::to_string(e.holders.size()) +
                                    " descriptors, none of whose processes holds all its targets");
        }
        return Error(first.ToString() + ": not supported yet");
      }
      for (size_t i = 0; i < e.targets.size(); ++i) {
        const proc::EpollTargetInfo& t = e.targets[i];
        img::EpollTarget* et = carrier->mutable_epoll()->add_targets();
        et->set_tfd(t.tfd);
        et->set_events(t.events);
        et->set_data(t.data);
        if (sources[i] >= 0) et->set_source_fd(sources[i]);
      }
      LOG_DEBUG("files: epoll %u: %zu targets, added back by fd %d", id, e.targets.size(), carrier->fd());
    }
    return OkStatus();
  }

 private:
  struct Instance {
    std::vector<std::pair<pid_t, int>> holders;  // in dump order
    std::vector<proc::EpollTargetInfo> targets;
  };
  std::map<uint32_t, Instance> instances_;  // by file_id
};

ProbeResult ProbeKcmpEpollTfd() {
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC)), ev(eventfd(0, EFD_CLOEXEC));
  if (!ep.valid() || !ev.valid()) return ProbeFailed("epoll_create1/eventfd", errno);
  epoll_event e{};
  e.events = EPOLLIN;
  if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, ev.get(), &e) != 0) return ProbeFailed("epoll_ctl", errno);
  KcmpEpollSlot slot{static_cast<uint32_t>(ep.get()), static_cast<uint32_t>(ev.get()), 0};
  const long r = syscall(SYS_kcmp, getpid(), getpid(), kKcmpEpollTfd, ev.get(), reinterpret_cast<unsigned long>(&slot));
  if (r < 0) return ProbeFailed("kcmp(KCMP_EPOLL_TFD)", errno);
  if (r != 0) return {false, "kcmp(KCMP_EPOLL_TFD) does not find the target it was added with"};
  return {true, ""};
}

class Epoll final : public FdKind {
 public:
  const char* name() const override { return "epoll instance"; }
  img::Fd::KindCase field() const override { return img::Fd::kEpoll; }
  Scope scope() const override { return Scope::kDescription; }
  bool Recognise(const FdSight& s) const override { return s.link == "anon_inode:[eventpoll]"; }

  Status Read(const FdSight&, const FdInfo&, DumpContext&, img::Fd* f) const override {
    f->mutable_epoll();  // the targets come in the tree pass
    return OkStatus();
  }
  std::unique_ptr<TreePass> NewPass() const override { return std::make_unique<EpollPass>(); }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    UniqueFd efd(epoll_create1(EPOLL_CLOEXEC));
    if (!efd.valid()) return ErrnoStatus("epoll_create1");
    RETURN_IF_ERROR(SetStatusFlags(efd.get(), f->flags(), O_NONBLOCK, "epoll instance"));
    (*out)[id] = std::move(efd);
    return OkStatus();
  }

  Status AfterPlacement(const img::Fd& f, RestoreContext&) const override {
    for (const img::EpollTarget& t : f.epoll().targets()) {
      epoll_event ev{};
      ev.events = t.events();
      ev.data.u64 = t.data();
      TemporaryFd at;
      if (t.has_source_fd()) RETURN_IF_ERROR(at.Put(t.source_fd(), t.tfd()));
      if (epoll_ctl(f.fd(), EPOLL_CTL_ADD, t.tfd(), &ev) != 0) {
        return ErrnoStatus("epoll fd " + std::to_string(f.fd()) + ": add fd " + std::to_string(t.tfd()) +
                           " (events " + std::to_string(t.events()) + ")");
      }
      RETURN_IF_ERROR(at.Undo());
    }
    return OkStatus();
  }

  std::string Describe(const img::Fd& f) const override {
    std::string out = std::to_string(f.epoll().targets_size()) + " targets";
    for (const img::EpollTarget& t : f.epoll().targets()) out += ", fd " + std::to_string(t.tfd());
    return out;
  }

  std::vector<Probe> Probes() const override {
    return {{"kcmp KCMP_EPOLL_TFD", "epoll instances with targets cannot be dumped", ProbeKcmpEpollTfd}};
  }
};

}  // namespace

Status AddEpollTarget(int efd, const img::EpollTarget& t, int source) {
  // Above t.tfd, so that putting |source| there leaves the instance alone.
  UniqueFd ep(fcntl(efd, F_DUPFD_CLOEXEC, t.tfd() + 1));
  if (!ep.valid()) return ErrnoStatus("dup epoll fd");
  UniqueFd src(fcntl(source, F_DUPFD_CLOEXEC, t.tfd() + 1));
  if (!src.valid()) return ErrnoStatus("dup target fd");
  epoll_event ev{};
  ev.events = t.events();
  ev.data.u64 = t.data();
  TemporaryFd at;
  RETURN_IF_ERROR(at.Put(src.get(), t.tfd()));
  if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, t.tfd(), &ev) != 0) {
    return ErrnoStatus("epoll: add fd " + std::to_string(t.tfd()) + " (events " + std::to_string(t.events()) + ")");
  }
  return at.Undo();
}

const FdKind& EpollKind() {
  static const Epoll kind;
  return kind;
}

}  // namespace cf::kinds
