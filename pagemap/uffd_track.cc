#include "pagemap/uffd_track.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.h"
#include "pagemap/scan.h"

namespace cf::pagemap {

Status EnableWriteTracking(int uffd) {
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (ioctl(uffd, UFFDIO_API, &api) != 0) return ErrnoStatus("userfaultfd: UFFDIO_API (async write-protect)");
  return OkStatus();
}

Result<bool> RegisterForTracking(int uffd, uint64_t start, uint64_t end) {
  uffdio_register reg{};
  reg.range.start = start;
  reg.range.len = end - start;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) == 0) return true;
  if (errno == EBUSY || errno == EINVAL || errno == EPERM) return false;
  return ErrnoStatus(errno, "userfaultfd: register " + std::to_string(start) + "-" + std::to_string(end));
}

bool WriteTrackingSupported() {
  static const bool supported = [] {
    if (!PagemapScanSupported()) return false;
    int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
    if (fd < 0) return false;
    UniqueFd uffd(fd);
    const bool ok = EnableWriteTracking(fd).ok();
    if (!ok) LOG_DEBUG("pagemap: async write-protect is not offered here: incremental dumps compare hashes");
    return ok;
  }();
  return supported;
}

}  // namespace cf::pagemap
