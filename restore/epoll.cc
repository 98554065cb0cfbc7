// Restoring an epoll instance: created empty by the owner of its open file
// description (shared_files.h); its targets are added by the process whose
// fd carries them, once every fd of that process is at its number, with the
// saved events and data. The kernel adds EPOLLERR|EPOLLHUP to every target
// itself, so the saved events (which include them) are valid input.
// Readiness is found again by the kernel when a target is added: a target
// that is ready is reported by the next epoll_wait, also one in EPOLLET
// mode whose edge the program had already seen.
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "restore/shared_files.h"

namespace cf::restore {

Status CreateEpoll(const SharedObject& obj, CreatedFiles* out) {
  const auto& [id, f] = *obj.files.begin();
  UniqueFd efd(epoll_create1(EPOLL_CLOEXEC));
  if (!efd.valid()) return ErrnoStatus("epoll_create1");
  if (fcntl(efd.get(), F_SETFL, static_cast<int>(f->flags()) & O_NONBLOCK) != 0) {
    return ErrnoStatus("set the epoll instance's flags");
  }
  (*out)[id] = std::move(efd);
  return OkStatus();
}

Status AddEpollTargets(const img::Fd& f) {
  for (const img::EpollTarget& t : f.epoll_targets()) {
    epoll_event ev{};
    ev.events = t.events();
    ev.data.u64 = t.data();
    if (epoll_ctl(f.fd(), EPOLL_CTL_ADD, t.tfd(), &ev) != 0) {
      return ErrnoStatus("epoll fd " + std::to_string(f.fd()) + ": add fd " + std::to_string(t.tfd()) +
                         " (events " + std::to_string(t.events()) + ")");
    }
  }
  return OkStatus();
}

}  // namespace cf::restore
