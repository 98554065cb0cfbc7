// Restoring a timerfd: a new one on the saved clock, armed again, with its
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
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/io.h"
#include "common/log.h"
#include "restore/shared_files.h"

namespace cf::restore {
namespace {

constexpr unsigned long kSetTicks = _IOW('T', 0, uint64_t);  // TFD_IOC_SET_TICKS

timespec Ts(uint64_t ns) {
  return {static_cast<time_t>(ns / 1000000000ull), static_cast<long>(ns % 1000000000ull)};
}

// The expirations a read of |fd| would return now, from our own fdinfo.
uint64_t CurrentTicks(int fd) {
  auto text = ReadFile("/proc/self/fdinfo/" + std::to_string(fd));
  if (!text.ok()) return 0;
  const size_t at = text->find("\nticks:");
  return at == std::string::npos ? 0 : strtoull(text->c_str() + at + 7, nullptr, 10);
}

}  // namespace

Status CreateTimerFd(const SharedObject& obj, CreatedFiles* out) {
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
      LOG_WARN("restore: no TFD_IOC_SET_TICKS: timerfd with %lu unread expirations fires at once instead", t.ticks());
      its.it_value = Ts(1);
      if (timerfd_settime(tfd.get(), 0, &its, nullptr) != 0) return ErrnoStatus("timerfd_settime");
    }
  }
  if (fcntl(tfd.get(), F_SETFL, static_cast<int>(f->flags()) & O_NONBLOCK) != 0) {
    return ErrnoStatus("set the timerfd's flags");
  }
  (*out)[id] = std::move(tfd);
  return OkStatus();
}

}  // namespace cf::restore
