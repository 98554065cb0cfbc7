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

Result<UniqueFd> OpenUserfaultfd(uint64_t features) {
  UniqueFd fd(static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)));
  if (!fd.valid()) return ErrnoStatus("userfaultfd");
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = features;
  if (ioctl(fd.get(), UFFDIO_API, &api) != 0) return ErrnoStatus("userfaultfd: UFFDIO_API");
  return fd;
}

Result<bool> RegisterForCopy(int uffd, uint64_t start, uint64_t end) {
  uffdio_register reg{};
  reg.range.start = start;
  reg.range.len = end - start;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) return false;
  if (reg.ioctls & (uint64_t{1} << _UFFDIO_COPY)) return true;
  RETURN_IF_ERROR(Unregister(uffd, start, end));
  return false;
}

Status Unregister(int uffd, uint64_t start, uint64_t end) {
  uffdio_range r{start, end - start};
  if (ioctl(uffd, UFFDIO_UNREGISTER, &r) != 0) {
    return ErrnoStatus("userfaultfd: unregister " + std::to_string(start) + "-" + std::to_string(end));
  }
  return OkStatus();
}

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
    const bool ok = OpenUserfaultfd(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED).ok();
    if (!ok) LOG_DEBUG("pagemap: async write-protect is not offered here: incremental dumps compare hashes");
    return ok;
  }();
  return supported;
}

}  // namespace cf::pagemap
