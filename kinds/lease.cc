#include "kinds/lease.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/text.h"

namespace cf::kinds {
namespace {

constexpr int kSetLease[] = {F_RDLCK, F_WRLCK, F_UNLCK};  // by img::Lease::Type

std::string FdName(const img::Fd& f) { return "fd " + std::to_string(f.fd()) + " (" + f.path() + ")"; }

// The type the lease had before its break began.
int TypeBeforeBreak(const img::Fd& f) {
  if (f.lease().type() == img::Lease::READ) return F_WRLCK;
  return (f.flags() & O_ACCMODE) == O_RDONLY ? F_RDLCK : F_WRLCK;
}

// Breaks the lease on f.fd() as an open for |target| does; the signal the
// break sends us is dequeued.
Status Break(const img::Fd& f) {
  int sig = fcntl(f.fd(), F_GETSIG);
  if (sig < 0) return ErrnoStatus(FdName(f) + ": F_GETSIG");
  if (sig == 0) sig = SIGIO;
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, &old);
  Status s;
  // The break signals the description's owner, which the lease makes its
  // setter only when there is none: this thread, for the time of the break.
  struct f_owner_ex self {};
  self.type = F_OWNER_TID;
  self.pid = gettid();
  if (fcntl(f.fd(), F_SETOWN_EX, &self) != 0) {
    s = ErrnoStatus(FdName(f) + ": own it for its lease's break");
  } else if (fcntl(f.fd(), F_SETLEASE, TypeBeforeBreak(f)) != 0) {
    s = ErrnoStatus(FdName(f) + ": take the lease it had before its break");
  } else {
    const int mode = f.lease().type() == img::Lease::READ ? O_RDONLY : O_WRONLY;
    const std::string self = "/proc/self/fd/" + std::to_string(f.fd());
    const int breaker = open(self.c_str(), mode | O_NONBLOCK | O_CLOEXEC);
    if (breaker >= 0) {
      close(breaker);
      s = Error(FdName(f) + ": an open did not break its lease");
    } else if (errno != EWOULDBLOCK) {
      s = ErrnoStatus(FdName(f) + ": break its lease");
    }
  }
  const struct timespec now = {0, 0};
  while (sigtimedwait(&set, nullptr, &now) == sig) {
  }
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return s;
}

}  // namespace

bool IsLeaseLine(std::string_view value) {
  const std::vector<std::string_view> w = Words(value);
  return w.size() > 1 && (w[1] == "LEASE" || w[1] == "DELEG");
}

Result<img::Lease> ParseLeaseLine(std::string_view value) {
  // id: LEASE ACTIVE|BREAKING|BREAKER READ|WRITE|UNLCK PID MAJ:MIN:INO 0 EOF
  const std::vector<std::string_view> w = Words(value);
  if (w.size() != 8) return Error("malformed lease line '" + std::string(value) + "'");
  if (w[1] != "LEASE") return Error("a " + std::string(w[1]) + " (NFS delegation): not supported");
  img::Lease l;
  if (w[2] == "BREAKING") {
    l.set_breaking(true);
  } else if (w[2] != "ACTIVE") {
    return Error("a lease in state " + std::string(w[2]) + ": not supported");
  }
  if (w[3] == "READ") {
    l.set_type(img::Lease::READ);
  } else if (w[3] == "WRITE") {
    l.set_type(img::Lease::WRITE);
  } else if (w[3] == "UNLCK" && l.breaking()) {
    l.set_type(img::Lease::UNLOCK);
  } else {
    return Error("a lease of type " + std::string(w[3]) + ": not supported");
  }
  return l;
}

Status ApplyLease(const img::Fd& f) {
  // The dup's original takes it: one lease per description.
  if (!f.has_lease() || f.is_dup()) return OkStatus();
  const img::Lease& l = f.lease();
  if (l.breaking()) {
    RETURN_IF_ERROR(Break(f));
  } else if (fcntl(f.fd(), F_SETLEASE, kSetLease[l.type()]) != 0) {
    return ErrnoStatus(FdName(f) + ": take its lease again");
  }
  const int now = fcntl(f.fd(), F_GETLEASE);
  if (now != kSetLease[l.type()]) {
    return Errorf("%s: its lease came back as type %d, want %d", FdName(f).c_str(), now, kSetLease[l.type()]);
  }
  // The image's owner (none: none).
  struct f_owner_ex owner {};
  owner.type = f.has_owner() ? static_cast<__pid_type>(f.owner().type()) : F_OWNER_PID;
  owner.pid = f.has_owner() ? f.owner().pid() : 0;
  if (fcntl(f.fd(), F_SETOWN_EX, &owner) != 0) return ErrnoStatus(FdName(f) + ": set its owner after its lease");
  return OkStatus();
}

}  // namespace cf::kinds
