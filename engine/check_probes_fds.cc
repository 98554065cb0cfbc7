// Probes for what the dump and restore of timerfds, inotify and epoll
// instances use (see check_probes.h), each on a real object of ours.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/fd.h"
#include "engine/check_probes.h"

namespace cf::engine {
namespace {

ProbeResult Ok() { return {true, ""}; }
ProbeResult Fail(std::string why) { return {false, std::move(why)}; }
ProbeResult FailErrno(const std::string& what, int err = errno) { return Fail(what + ": " + strerror(err)); }

}  // namespace

ProbeResult ProbeTimerFdSetTicks() {
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd.valid()) return FailErrno("timerfd_create");
  uint64_t ticks = 3;
  if (ioctl(fd.get(), _IOW('T', 0, uint64_t), &ticks) != 0) return FailErrno("TFD_IOC_SET_TICKS");
  uint64_t got = 0;
  if (read(fd.get(), &got, sizeof(got)) != static_cast<ssize_t>(sizeof(got)) || got != 3) {
    return Fail("a read after TFD_IOC_SET_TICKS(3) gives " + std::to_string(got));
  }
  return Ok();
}

ProbeResult ProbeOpenByHandle() {
  std::vector<char> buf(sizeof(file_handle) + MAX_HANDLE_SZ);
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mnt_id = 0;
  if (name_to_handle_at(AT_FDCWD, "/proc/self/exe", fh, &mnt_id, AT_SYMLINK_FOLLOW) != 0) {
    return FailErrno("name_to_handle_at");
  }
  UniqueFd root(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return FailErrno("open /");
  UniqueFd f(open_by_handle_at(root.get(), fh, O_PATH | O_CLOEXEC));
  if (!f.valid()) return FailErrno("open_by_handle_at");
  return Ok();
}

ProbeResult ProbeKcmpEpollTfd() {
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC)), ev(eventfd(0, EFD_CLOEXEC));
  if (!ep.valid() || !ev.valid()) return FailErrno("epoll_create1/eventfd");
  epoll_event e{};
  e.events = EPOLLIN;
  if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, ev.get(), &e) != 0) return FailErrno("epoll_ctl");
  struct {
    uint32_t efd, tfd, toff;
  } slot{static_cast<uint32_t>(ep.get()), static_cast<uint32_t>(ev.get()), 0};
  const long r = syscall(SYS_kcmp, getpid(), getpid(), 7 /* KCMP_EPOLL_TFD */, ev.get(),
                         reinterpret_cast<unsigned long>(&slot));
  if (r < 0) return FailErrno("kcmp(KCMP_EPOLL_TFD)");
  if (r != 0) return Fail("kcmp(KCMP_EPOLL_TFD) does not find the target it was added with");
  return Ok();
}

}  // namespace cf::engine
