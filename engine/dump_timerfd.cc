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
#include <sys/timerfd.h>
#include <time.h>

#include "common/log.h"
#include "proc/fdinfo_kinds.h"
#include "engine/shared_files.h"

namespace cf::engine {
namespace {

constexpr int kTries = 5;
constexpr uint32_t kAbsTime = 1;  // TFD_TIMER_ABSTIME

uint64_t Ns(const timespec& ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

Status ReadTimerFd(pid_t pid, int fd, img::Fd* out) {
  ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(pid, fd));
  TimerFdInfo t;
  uint64_t now = 0;
  for (int i = 0; i < kTries; ++i) {
    itimerspec cur{};
    if (timerfd_gettime(copy.get(), &cur) != 0) return ErrnoStatus("timerfd_gettime");
    ASSIGN_OR_RETURN(FdInfo info, ReadFdInfo(pid, fd));
    ASSIGN_OR_RETURN(t, ParseTimerFdInfo(info));
    timespec ts{};
    if (clock_gettime(t.clockid, &ts) != 0) return ErrnoStatus("clock_gettime " + std::to_string(t.clockid));
    now = Ns(ts);
    // Expired again since timerfd_gettime (a short period): once more.
    if (t.value_ns != 0 || t.interval_ns == 0) break;
  }
  img::TimerFd* tf = out->mutable_timerfd();
  tf->set_clockid(t.clockid);
  tf->set_ticks(t.ticks);
  tf->set_settime_flags(t.settime_flags);
  tf->set_value_ns(t.value_ns);
  tf->set_interval_ns(t.interval_ns);
  if (t.value_ns != 0 || t.interval_ns != 0) tf->set_expires_ns(now + t.value_ns);
  LOG_DEBUG("files: process %d fd %d: timerfd clock %d, next in %lu ns, every %lu ns, %lu ticks%s", pid, fd,
            t.clockid, t.value_ns, t.interval_ns, t.ticks, (t.settime_flags & kAbsTime) ? ", absolute" : "");
  return OkStatus();
}

}  // namespace cf::engine
