// Restoring a signalfd: a new one for the saved signal set. The signals it
// will read are those queued to the process (restored with the process).
#include <fcntl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "restore/shared_files.h"

namespace cf::restore {

Status CreateSignalFd(const SharedObject& obj, CreatedFiles* out) {
  const auto& [id, f] = *obj.files.begin();
  // The raw system call takes the kernel's 8-byte sigset as saved.
  const uint64_t mask = f->signalfd_mask();
  UniqueFd sfd(static_cast<int>(syscall(SYS_signalfd4, -1, &mask, sizeof(mask), SFD_CLOEXEC | SFD_NONBLOCK)));
  if (!sfd.valid()) return ErrnoStatus("signalfd for mask " + std::to_string(mask));
  if (fcntl(sfd.get(), F_SETFL, static_cast<int>(f->flags()) & O_NONBLOCK) != 0) {
    return ErrnoStatus("set the signalfd's flags");
  }
  (*out)[id] = std::move(sfd);
  return OkStatus();
}

}  // namespace cf::restore
