// Epoll instances: the files they watch, with events and data.
//
// fdinfo lists each target by the fd number it was added with (tfd), but
// that number may since have been closed or reused for another file, and
// restore can only add a target through an fd that holds its file. So each
// target is checked with kcmp(KCMP_EPOLL_TFD): fd tfd of the process must be
// the very file the instance watches under that number. The kernel may
// watch the same number twice (two files, the first closed since); |toff|
// tells kcmp which of them, counted in the order fdinfo prints them.
// An epoll instance shared by several processes is checked in each until
// one has every target (engine/shared_files.cc); that one re-adds them.
#include <sys/syscall.h>
#include <unistd.h>

#include <map>

#include "common/io.h"
#include "proc/fdinfo_kinds.h"
#include "engine/shared_files.h"

namespace cf::engine {
namespace {

constexpr int kKcmpEpollTfd = 7;

struct KcmpEpollSlot {  // struct kcmp_epoll_slot
  uint32_t efd;
  uint32_t tfd;
  uint32_t toff;
};

}  // namespace

Status CheckEpollTargets(pid_t pid, int efd, const std::vector<EpollTargetInfo>& targets) {
  std::map<int32_t, uint32_t> seen;  // tfd -> entries with that number so far
  for (const EpollTargetInfo& t : targets) {
    const std::string what = "it watches fd " + std::to_string(t.tfd);
    KcmpEpollSlot slot{static_cast<uint32_t>(efd), static_cast<uint32_t>(t.tfd), seen[t.tfd]++};
    const long r = syscall(SYS_kcmp, pid, pid, kKcmpEpollTfd, t.tfd, reinterpret_cast<unsigned long>(&slot));
    if (r < 0 && errno == EBADF) return Error(what + ", which is closed (its file lives on elsewhere)");
    if (r < 0) return ErrnoStatus(what + ": kcmp(KCMP_EPOLL_TFD)");
    if (r != 0) return Error(what + ", which now holds another file than the one watched");
    auto link = ReadLink("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(t.tfd));
    if (link.ok() && *link == "anon_inode:[eventpoll]") {
      return Error(what + ", another epoll instance (nested epoll)");
    }
  }
  return OkStatus();
}

}  // namespace cf::engine
