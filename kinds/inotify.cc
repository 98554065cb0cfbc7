// Inotify instances: every watch (wd, mask) and a path to its file.
//
// fdinfo names a watched file by inode, device (the kernel's s_dev) and a
// file handle, not by path. The path is found at dump time: for each mount
// of the target with that device (its mountinfo), open_by_handle_at() on the
// mount's root gives the file, and /proc/self/fd/N its path; the path is
// kept when stat() on it finds the same device and inode (so a file reached
// only through another mount or a deleted file is refused, not mistaken).
// Restore adds each watch again by that path (restore/inotify.cc). Events
// already queued are not saved.
//
// Restore: a new one with every watch added again by
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
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "kinds/notify_path.h"
#include "proc/fdinfo_kinds.h"

namespace cf::kinds {
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

ProbeResult ProbeOpenByHandle() {
  std::vector<char> buf(sizeof(file_handle) + MAX_HANDLE_SZ);
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mnt_id = 0;
  if (name_to_handle_at(AT_FDCWD, "/proc/self/exe", fh, &mnt_id, AT_SYMLINK_FOLLOW) != 0) {
    return ProbeFailed("name_to_handle_at", errno);
  }
  UniqueFd root(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ProbeFailed("open /", errno);
  UniqueFd file(open_by_handle_at(root.get(), fh, O_PATH | O_CLOEXEC));
  if (!file.valid()) return ProbeFailed("open_by_handle_at", errno);
  return {true, ""};
}

class Inotify final : public FdKind {
 public:
  const char* name() const override { return "inotify instance"; }
  img::Fd::KindCase field() const override { return img::Fd::kInotify; }
  Scope scope() const override { return Scope::kDescription; }
  bool Recognise(const FdSight& s) const override { return s.link == "anon_inode:inotify"; }

  Status Read(const FdSight& s, const FdInfo& info, DumpContext&, img::Fd* f) const override {
    f->mutable_inotify();  // present even without watches
    ASSIGN_OR_RETURN(std::vector<proc::InotifyWatchInfo> watches, proc::ParseInotifyWatches(info));
    for (const proc::InotifyWatchInfo& w : watches) {
      // The kernel prints its own dev_t: 12 bits of major above 20 of minor.
      const dev_t dev = makedev(w.sdev >> 20, w.sdev & 0xfffff);
      auto path = PathByHandle(s.pid, w.ino, dev, w.fhandle_type, w.fhandle);
      if (!path.ok()) {
        return path.status().WithContext("inotify watch " + std::to_string(w.wd) + " (device " +
                                         std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) + ", inode " +
                                         std::to_string(w.ino) + ")");
      }
      img::InotifyWatch* iw = f->mutable_inotify()->add_watches();
      iw->set_wd(w.wd);
      iw->set_mask(w.mask);
      iw->set_ignored_mask(w.ignored_mask);
      iw->set_dev(dev);
      iw->set_inode(w.ino);
      iw->set_path(*path);
      iw->set_fhandle_type(w.fhandle_type);
      iw->set_fhandle(w.fhandle);
      LOG_DEBUG("files: %s: inotify wd %u on %s, mask %#x", s.Name().c_str(), w.wd, path->c_str(), w.mask);
    }
    return OkStatus();
  }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    UniqueFd ifd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!ifd.valid()) return ErrnoStatus("inotify_init1");
    uint32_t last = 0;
    bool removed = false;
    for (const img::InotifyWatch& w : f->inotify().watches()) {
      RETURN_IF_ERROR(AddWatch(ifd.get(), w, last));
      removed = removed || w.wd() != last + 1;
      last = w.wd();
    }
    if (removed) {  // read away the IN_IGNORED events of the watches removed
      alignas(inotify_event) char buf[4096];
      while (read(ifd.get(), buf, sizeof(buf)) > 0) {
      }
    }
    RETURN_IF_ERROR(SetStatusFlags(ifd.get(), f->flags(), O_NONBLOCK, "inotify instance"));
    (*out)[id] = std::move(ifd);
    return OkStatus();
  }

  std::string Describe(const img::Fd& f) const override {
    std::string out = std::to_string(f.inotify().watches_size()) + " watches";
    for (const img::InotifyWatch& w : f.inotify().watches()) out += ", " + std::to_string(w.wd()) + ":" + w.path();
    return out;
  }

  std::vector<Probe> Probes() const override {
    return {{"open_by_handle_at", "inotify watches cannot be dumped (no path to them)", ProbeOpenByHandle}};
  }
};

}  // namespace

const FdKind& InotifyKind() {
  static const Inotify kind;
  return kind;
}

}  // namespace cf::kinds
