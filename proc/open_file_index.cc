#include "proc/open_file_index.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace cf::proc {

DescriptionKey KeyOf(const struct stat& sb, const FdInfo& info) {
  return {static_cast<uint64_t>(sb.st_dev), static_cast<uint64_t>(sb.st_ino), info.pos,
          info.flags & ~static_cast<uint32_t>(O_CLOEXEC), info.mnt_id};
}

Result<std::optional<uint32_t>> OpenFileIndex::FindOrAdd(pid_t pid, int fd, const DescriptionKey& key,
                                                         uint32_t value) {
  constexpr int kKcmpFile = 0;
  std::vector<Entry>& sorted = by_key_[key];
  size_t lo = 0, hi = sorted.size();
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    const Entry& e = sorted[mid];
    const long r = syscall(SYS_kcmp, e.pid, pid, kKcmpFile, e.fd, fd);
    if (r < 0) return ErrnoStatus("kcmp of fd " + std::to_string(fd) + " of " + std::to_string(pid));
    if (r == 0) return std::optional<uint32_t>(e.value);
    if (r == 1) {
      lo = mid + 1;  // the one seen is below ours
    } else if (r == 2) {
      hi = mid;
    } else {
      return Error("kcmp cannot order open file descriptions", EINVAL);
    }
  }
  sorted.insert(sorted.begin() + static_cast<std::ptrdiff_t>(lo), Entry{pid, fd, value});
  return std::optional<uint32_t>();
}

}  // namespace cf::proc
