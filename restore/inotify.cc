// Restoring an inotify instance: a new one with every watch added again by
// path, under the same watch descriptor.
//
// The kernel hands out watch descriptors in increasing order (a cyclic idr
// starting at 1) and never reuses one until it wraps, so a watch gets its
// old number by adding it, and while the number is below the saved one,
// removing it and adding it again. Watches are restored by increasing wd.
// Removing a watch queues an IN_IGNORED event; those are read away at the
// end. Events that were queued at dump time are not restored.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "common/log.h"
#include "restore/shared_files.h"

namespace cf::restore {
namespace {

// A bound on the add/remove rounds to reach one wd (a wd this high means a
// program that added and removed about as many watches).
constexpr uint32_t kMaxRounds = 1u << 22;

Status AddWatch(int ifd, const img::InotifyWatch& w, uint32_t last_wd) {
  const std::string what = "inotify watch " + std::to_string(w.wd()) + " on " + w.path();
  if (w.wd() <= last_wd) return Error(what + ": watch descriptors out of order");
  uint32_t mask = w.mask();
  struct stat sb;
  if (lstat(w.path().c_str(), &sb) != 0) return ErrnoStatus(what);
  if (S_ISLNK(sb.st_mode)) mask |= IN_DONT_FOLLOW;  // the watch was on the link itself
  if (sb.st_dev != w.dev() || sb.st_ino != w.inode()) {
    LOG_WARN("restore: %s: another file than at dump time", what.c_str());
  }
  for (uint32_t round = 0; round < kMaxRounds; ++round) {
    const int got = inotify_add_watch(ifd, w.path().c_str(), mask);
    if (got < 0) return ErrnoStatus(what + ": inotify_add_watch");
    if (static_cast<uint32_t>(got) == w.wd()) return OkStatus();
    if (static_cast<uint32_t>(got) > w.wd()) {
      return Errorf("%s: the kernel gives watch descriptor %d, past the one wanted", what.c_str(), got);
    }
    if (inotify_rm_watch(ifd, got) != 0) return ErrnoStatus(what + ": inotify_rm_watch");
  }
  return Error(what + ": too many rounds to reach that watch descriptor");
}

}  // namespace

Status CreateInotify(const SharedObject& obj, CreatedFiles* out) {
  const auto& [id, f] = *obj.files.begin();
  UniqueFd ifd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!ifd.valid()) return ErrnoStatus("inotify_init1");
  uint32_t last = 0;
  bool removed = false;
  for (const img::InotifyWatch& w : f->inotify_watches()) {
    RETURN_IF_ERROR(AddWatch(ifd.get(), w, last));
    removed = removed || w.wd() != last + 1;
    last = w.wd();
  }
  if (removed) {  // read away the IN_IGNORED events of the watches removed
    alignas(inotify_event) char buf[4096];
    while (read(ifd.get(), buf, sizeof(buf)) > 0) {
    }
  }
  if (fcntl(ifd.get(), F_SETFL, static_cast<int>(f->flags()) & O_NONBLOCK) != 0) {
    return ErrnoStatus("set the inotify instance's flags");
  }
  (*out)[id] = std::move(ifd);
  return OkStatus();
}

}  // namespace cf::restore
