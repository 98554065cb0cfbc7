// Restoring an eventfd: a new one in the saved mode, its counter written in
// (eventfd() takes only 32 bits of initial value), then the file flags.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "restore/shared_files.h"

namespace cf::restore {

Status CreateEventFd(const SharedObject& obj, CreatedFiles* out) {
  const auto& [id, f] = *obj.files.begin();
  UniqueFd efd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | (f->eventfd_semaphore() ? EFD_SEMAPHORE : 0)));
  if (!efd.valid()) return ErrnoStatus("eventfd");
  const uint64_t count = f->eventfd_count();
  if (count != 0 && write(efd.get(), &count, sizeof(count)) != static_cast<ssize_t>(sizeof(count))) {
    return ErrnoStatus("set the eventfd counter to " + std::to_string(count));
  }
  if (fcntl(efd.get(), F_SETFL, static_cast<int>(f->flags()) & O_NONBLOCK) != 0) {
    return ErrnoStatus("set the eventfd's flags");
  }
  (*out)[id] = std::move(efd);
  return OkStatus();
}

}  // namespace cf::restore
