// Timerfds: clock, settime flags, time to the next expiry, period and the
// expirations not read yet.
//
// fdinfo alone understates a periodic timer that expired and was not read:
// the kernel leaves such a timer expired (it_value shows 0, ticks 1) and only
// counts the missed periods and re-arms it when someone reads it or asks
// timerfd_gettime(). So the dump asks timerfd_gettime() once, through a copy
// of the descriptor: that changes nothing a reader can tell (the kernel does
// the same on its own at the next read), and afterwards fdinfo's ticks are
// the exact count and it_value the time to the next expiry. The timer keeps
// running while we look; if it expires again in between, we ask again.
//
// Restore: a new one on the saved clock, armed again, with its
// unread expirations.
//
// Arming: a relative timer gets the time it had left at dump time (the time
// between dump and restore does not count, as for a process that was
// stopped); a TFD_TIMER_ABSTIME timer gets its absolute expiry on its clock
// (with TFD_TIMER_CANCEL_ON_SET kept), so a CLOCK_REALTIME deadline stays
// the same wall-clock time, and fires at once if it passed meanwhile.
// A periodic timer keeps its period.
//
// Expirations: the kernel's TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE)
// sets the count a read() returns, so the exact count comes back; expirations
// the new timer already had by then (an absolute deadline that passed) are
// added to it. Without that ioctl a timer with unread expirations is armed to
// expire 1 ns after creation instead, so a read returns at least 1 (the count
// is lost and the period restarts from restore time).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "common/io.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "proc/fdinfo_kinds.h"

namespace cf::kinds {
namespace {

constexpr int kTries = 5;
constexpr uint32_t kAbsTime = 1;  // TFD_TIMER_ABSTIME
constexpr unsigned long kSetTicks = _IOW('T', 0, uint64_t);  // TFD_IOC_SET_TICKS

uint64_t Ns(const timespec& ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

timespec Ts(uint64_t ns) {
  return {static_cast<time_t>(ns / 1000000000ull), static_cast<long>(ns % 1000000000ull)};
}

// The expirations a read of |fd| would return now, from our own fdinfo.
uint64_t CurrentTicks(int fd) {
  auto info = proc::ReadFdInfo(getpid(), fd);
  if (!info.ok()) return 0;
  auto t = proc::ParseTimerFdInfo(*info);
  return t.ok() ? t->ticks : 0;
}

ProbeResult ProbeSetTicks() {
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd.valid()) return ProbeFailed("timerfd_create", errno);
  uint64_t ticks = 3;
  if (ioctl(fd.get(), kSetTicks, &ticks) != 0) return ProbeFailed("TFD_IOC_SET_TICKS", errno);
  uint64_t got = 0;
  if (read(fd.get(), &got, sizeof(got)) != static_cast<ssize_t>(sizeof(got)) || got != 3) {
    return {false, "a read after TFD_IOC_SET_TICKS(3) gives " + std::to_string(got)};
  }
  return {true, ""};
}

class TimerFd final : public FdKind {
 public:
  const char* name() const override { return "timerfd"; }
  img::Fd::KindCase field() const override { return img::Fd::kTimerfd; }
  Scope scope() const override { return Scope::kDescription; }
  bool Recognise(const FdSight& s) const override { return s.link == "anon_inode:[timerfd]"; }

  Status Read(const FdSight& s, const FdInfo&, DumpContext&, img::Fd* f) const override {
    ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(s.pid, s.fd));
    proc::TimerFdInfo t;
    uint64_t now = 0;
    for (int i = 0; i < kTries; ++i) {
      itimerspec cur{};
      if (timerfd_gettime(copy.get(), &cur) != 0) return ErrnoStatus("timerfd_gettime");
      ASSIGN_OR_RETURN(FdInfo info, proc::ReadFdInfo(s.pid, s.fd));
      ASSIGN_OR_RETURN(t, proc::ParseTimerFdInfo(info));
      timespec ts{};
      if (clock_gettime(t.clockid, &ts) != 0) return ErrnoStatus("clock_gettime " + std::to_string(t.clockid));
      now = Ns(ts);
      // Expired again since timerfd_gettime (a short period): once more.
      if (t.value_ns != 0 || t.interval_ns == 0) break;
    }
    img::TimerFd* tf = f->mutable_timerfd();
    tf->set_clockid(t.clockid);
    tf->set_ticks(t.ticks);
    tf->set_settime_flags(t.settime_flags);
    tf->set_value_ns(t.value_ns);
    tf->set_interval_ns(t.interval_ns);
    if (t.value_ns != 0 || t.interval_ns != 0) tf->set_expires_ns(now + t.value_ns);
    LOG_DEBUG("files: %s: timerfd clock %d, next in %lu ns, every %lu ns, %lu ticks%s", s.Name().c_str(),
              t.clockid, t.value_ns, t.interval_ns, t.ticks, (t.settime_flags & kAbsTime) ? ", absolute" : "");
    return OkStatus();
  }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    const img::TimerFd& t = f->timerfd();
    UniqueFd tfd(timerfd_create(t.clockid(), TFD_CLOEXEC | TFD_NONBLOCK));
    if (!tfd.valid()) return ErrnoStatus("timerfd_create(clock " + std::to_string(t.clockid()) + ")");
    const bool armed = t.value_ns() != 0 || t.interval_ns() != 0;
    itimerspec its{};
    its.it_interval = Ts(t.interval_ns());
    int flags = 0;
    if (armed && (t.settime_flags() & TFD_TIMER_ABSTIME)) {
      flags = static_cast<int>(t.settime_flags() & (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET));
      its.it_value = Ts(t.expires_ns() ? t.expires_ns() : 1);
    } else if (armed) {
      its.it_value = Ts(t.value_ns() ? t.value_ns() : 1);  // 0 would disarm it
    } else if (t.settime_flags() & TFD_TIMER_CANCEL_ON_SET) {
      flags = static_cast<int>(t.settime_flags() & (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET));
    }
    if ((armed || flags) && timerfd_settime(tfd.get(), flags, &its, nullptr) != 0) {
      return ErrnoStatus("timerfd_settime");
    }
    if (t.ticks() != 0) {
      uint64_t ticks = t.ticks() + CurrentTicks(tfd.get());
      if (ioctl(tfd.get(), kSetTicks, &ticks) != 0) {
        if (errno != ENOTTY) return ErrnoStatus("set the timerfd's expirations (TFD_IOC_SET_TICKS)");
        LOG_WARN("restore: no TFD_IOC_SET_TICKS: timerfd with %lu unread expirations fires at once instead",
                 t.ticks());
        its.it_value = Ts(1);
        if (timerfd_settime(tfd.get(), 0, &its, nullptr) != 0) return ErrnoStatus("timerfd_settime");
      }
    }
    RETURN_IF_ERROR(SetStatusFlags(tfd.get(), f->flags(), O_NONBLOCK, "timerfd"));
    (*out)[id] = std::move(tfd);
    return OkStatus();
  }

  std::string Describe(const img::Fd& f) const override {
    const img::TimerFd& t = f.timerfd();
    return "clock " + std::to_string(t.clockid()) + ", next in " + std::to_string(t.value_ns()) + " ns, every " +
           std::to_string(t.interval_ns()) + " ns, " + std::to_string(t.ticks()) + " unread expirations";
  }

  std::vector<Probe> Probes() const override {
    return {{"timerfd TFD_IOC_SET_TICKS",
             "a timerfd's unread expirations come back as 1 (it is re-armed to fire at once)", ProbeSetTicks}};
  }
};

}  // namespace

const FdKind& TimerFdKind() {
  static const TimerFd kind;
  return kind;
}

}  // namespace cf::kinds
