// Signalfds: the set of signals they read (fdinfo "sigmask", the kernel's
// sigset: signal n is bit n-1). What is queued belongs to the process's
// signal queues, which are dumped with the process; a signalfd holds none.
#include "common/log.h"
#include "proc/fdinfo_kinds.h"
#include "engine/shared_files.h"

namespace cf::engine {

Status ReadSignalFd(pid_t pid, int fd, const FdInfo& info, img::Fd* out) {
  ASSIGN_OR_RETURN(uint64_t mask, ParseSignalFdMask(info));
  out->set_signalfd_mask(mask);
  LOG_DEBUG("files: process %d fd %d: signalfd for mask %#lx", pid, fd, mask);
  return OkStatus();
}

}  // namespace cf::engine
