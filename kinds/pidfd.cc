// Pidfds (link "anon_inode:[pidfd]"; pidfs gives each pid one inode, so two
// pidfds of one process have the same inode). fdinfo names the process
// ("Pid:", -1 once it was reaped); the flags hold PIDFD_NONBLOCK (O_NONBLOCK)
// and PIDFD_THREAD (O_EXCL).
//
// Two kinds, told apart by that "Pid:" line:
//   pidfd       a live process: each holder opens it again by itself with
//               pidfd_open(pid, flags). The process may be another one of
//               the tree, created by someone else at about the same time,
//               so the open waits (bounded) until that pid exists.
//   dead pidfd  a reaped process: the DeadPid object, saved once. Its owner
//               (the lowest common ancestor of the holders) forks a process
//               that only waits, opens every description on it, then kills
//               and reaps it: the pidfds again share one inode, different
//               from any other pid's, and report a process that is gone.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>

#include "common/fd.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "proc/fdinfo_kinds.h"

namespace cf::kinds {
namespace {

constexpr const char* kPidFdLink = "anon_inode:[pidfd]";
// The flags a pidfd keeps: PIDFD_NONBLOCK and PIDFD_THREAD.
constexpr int kPidFdFlags = O_NONBLOCK | O_EXCL;
// How long an open waits for a process of the tree to appear.
constexpr int kWaitForPidMs = 10000;

// The "Pid:" line of |info|.
Result<pid_t> PidOf(const FdInfo& info) {
  const std::string* text = proc::FdInfoExtra(info, "Pid");
  if (!text) return Error("no Pid in its fdinfo");
  char* end = nullptr;
  const long pid = strtol(text->c_str(), &end, 10);
  if (end == text->c_str() || *end != '\0') return Error("bad Pid '" + *text + "' in its fdinfo");
  return static_cast<pid_t>(pid);
}

// True when the pidfd |s| refers to a reaped process.
bool IsDead(const FdSight& s) {
  auto info = proc::ReadFdInfo(s.pid, s.fd);
  if (!info.ok()) return false;  // the live kind's Read reports it
  auto pid = PidOf(*info);
  return pid.ok() && *pid == -1;
}

int PidFdOpen(pid_t pid, uint32_t flags) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, flags & kPidFdFlags));
}

class PidFd final : public FdKind {
 public:
  const char* name() const override { return "pidfd"; }
  img::Fd::KindCase field() const override { return img::Fd::kPidfd; }
  Scope scope() const override { return Scope::kPrivate; }
  bool Recognise(const FdSight& s) const override { return s.link == kPidFdLink && !IsDead(s); }

  Status Read(const FdSight& s, const FdInfo& info, DumpContext&, img::Fd* f) const override {
    ASSIGN_OR_RETURN(pid_t pid, PidOf(info));
    if (pid <= 0) return Errorf("a pidfd of pid %d (another pid namespace?): not supported yet", pid);
    if (f->flags() & O_EXCL) {
      ASSIGN_OR_RETURN(proc::ProcStatus st, proc::ReadStatus(pid));
      if (st.tgid != pid) return Errorf("a pidfd of thread %d: not supported yet", pid);
    }
    LOG_DEBUG("files: %s: pidfd of process %d", s.Name().c_str(), pid);
    f->mutable_pidfd()->set_pid(pid);
    return OkStatus();
  }

  Result<UniqueFd> Open(const img::Fd& f, RestoreContext&) const override {
    const pid_t pid = f.pidfd().pid();
    for (int waited = 0;; ++waited) {
      UniqueFd fd(PidFdOpen(pid, f.flags()));
      if (fd.valid()) {
        // pidfd_open sets close-on-exec; Open gives the record's.
        if (!f.cloexec() && fcntl(fd.get(), F_SETFD, 0) != 0) return ErrnoStatus("clear FD_CLOEXEC of a pidfd");
        return fd;
      }
      if (errno != ESRCH || waited >= kWaitForPidMs) {
        return ErrnoStatus("fd " + std::to_string(f.fd()) + ": pidfd_open " + std::to_string(pid));
      }
      const struct timespec ms = {0, 1000000};
      nanosleep(&ms, nullptr);
    }
  }

  std::string Describe(const img::Fd& f) const override {
    return "process " + std::to_string(f.pidfd().pid()) + ((f.flags() & O_EXCL) ? ", thread" : "") +
           ((f.flags() & O_NONBLOCK) ? ", nonblocking" : "");
  }

  std::vector<Probe> Probes() const override {
    return {{"pidfd_open", "pidfds cannot be restored", [] {
               UniqueFd fd(PidFdOpen(getpid(), 0));
               return fd.valid() ? ProbeResult{true, ""} : ProbeFailed("pidfd_open", errno);
             }}};
  }
};

// Saves each dead pid once, in the core of the first process holding a
// pidfd of it.
class DeadPidPass final : public TreePass {
 public:
  Status Add(const FdSight&, const FdInfo&, bool, img::Fd*) override { return OkStatus(); }
  Status Finish(TreeFds& fds) override {
    std::set<std::pair<uint64_t, uint64_t>> done;
    for (pid_t pid : fds.order()) {
      for (img::Fd* f : fds.FdsOf(pid)) {
        if (!f->has_dead_pidfd() || !done.insert({f->dev(), f->inode()}).second) continue;
        img::FileObject obj;
        obj.mutable_dead_pid()->set_dev(f->dev());
        obj.mutable_dead_pid()->set_inode(f->inode());
        fds.AddObject(pid, std::move(obj));
      }
    }
    return OkStatus();
  }
};

class DeadPidFd final : public FdKind {
 public:
  const char* name() const override { return "dead pidfd"; }
  img::Fd::KindCase field() const override { return img::Fd::kDeadPidfd; }
  Scope scope() const override { return Scope::kObject; }
  bool Recognise(const FdSight& s) const override { return s.link == kPidFdLink && IsDead(s); }

  Status Read(const FdSight&, const FdInfo&, DumpContext&, img::Fd* f) const override {
    if (f->flags() & O_EXCL) return Error("a pidfd of a dead thread: not supported yet");
    f->mutable_dead_pidfd();
    return OkStatus();
  }
  std::unique_ptr<TreePass> NewPass() const override { return std::make_unique<DeadPidPass>(); }

  int object_case() const override { return img::FileObject::kDeadPid; }
  std::vector<ObjectKey> ObjectKeys(const img::FileObject& o) const override {
    return {{object_case(), o.dead_pid().dev(), o.dead_pid().inode()}};
  }
  ObjectKey KeyOf(const img::Fd& f) const override { return {object_case(), f.dev(), f.inode()}; }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const pid_t child = fork();
    if (child < 0) return ErrnoStatus("fork a process for dead pidfds");
    if (child == 0) {
      // Never outlives a restore that dies before killing it.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() == 1) _exit(1);
      for (;;) pause();
    }
    Status status;
    for (const auto& [id, f] : obj.files) {
      UniqueFd fd(PidFdOpen(child, f->flags()));
      if (!fd.valid()) {
        status = ErrnoStatus("pidfd_open of a process for dead pidfds");
        break;
      }
      (*out)[id] = std::move(fd);
    }
    kill(child, SIGKILL);
    while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    return status;
  }

  std::string Describe(const img::Fd& f) const override {
    return "a process gone (pidfs inode " + std::to_string(f.inode()) + ")";
  }
};

}  // namespace

const FdKind& PidFdKind() {
  static const PidFd kind;
  return kind;
}

const FdKind& DeadPidFdKind() {
  static const DeadPidFd kind;
  return kind;
}

}  // namespace cf::kinds
