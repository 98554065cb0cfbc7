// Inotify instances: every watch (wd, mask) and a path to its file.
//
// fdinfo names a watched file by inode, device (the kernel's s_dev) and a
// file handle, not by path. The path is found at dump time: for each mount
// of the target with that device (its mountinfo), open_by_handle_at() on the
// mount's root gives the file, and /proc/self/fd/N its path; the path is
// kept when stat() on it finds the same device and inode (so a file reached
// only through another mount is refused, not mistaken). Events already
// queued are not saved.
//
// A watched file that was deleted while the process holds it open has no
// path: its watch is saved with an empty path. Its contents are saved with
// that descriptor (a ghost file, kinds/regular_file.cc), which the restored
// process recreates while it places its descriptors; the watch is added on
// the recreated file then (AfterPlacement), before the file is unlinked
// again, and so are the watches after it, to keep their order.
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
#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "kinds/kind.h"
#include "kinds/notify_path.h"
#include "proc/fdinfo_kinds.h"
#include "proc/proc_parse.h"

namespace cf::kinds {
namespace {

// A bound on the add/remove rounds to reach one wd (a wd this high means a
// program that added and removed about as many watches).
constexpr uint32_t kMaxRounds = 1u << 22;

// |deleted|: w.path() is where the deleted file was made again (maybe a
// /proc/self/fd/N link, followed).
Status AddWatch(int ifd, const img::InotifyWatch& w, uint32_t last_wd, bool deleted = false) {
  const std::string what = "inotify watch " + std::to_string(w.wd()) + " on " + w.path();
  if (w.wd() <= last_wd) return Error(what + ": watch descriptors out of order");
  uint32_t mask = w.mask();
  struct stat sb;
  if (lstat(w.path().c_str(), &sb) != 0) return ErrnoStatus(what);
  if (S_ISLNK(sb.st_mode) && !deleted) mask |= IN_DONT_FOLLOW;  // the watch was on the link itself
  if (!deleted && (sb.st_dev != w.dev() || sb.st_ino != w.inode())) {
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

// Whether |pid| holds a descriptor of the deleted file (|dev|, |ino|).
bool HoldsDeleted(pid_t pid, dev_t dev, uint64_t ino) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (!d) return false;
  while (dirent* e = readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    struct stat sb;
    const std::string fd = dir + "/" + e->d_name;
    if (stat(fd.c_str(), &sb) == 0 && sb.st_dev == dev && sb.st_ino == ino && sb.st_nlink == 0 &&
        S_ISREG(sb.st_mode)) {
      return true;
    }
  }
  return false;
}

// The ghost image a deleted watched file's contents are in (named by
// kinds/regular_file.cc).
std::string GhostOf(const img::InotifyWatch& w) {
  return "ghost-" + std::to_string(w.dev()) + "-" + std::to_string(w.inode()) + ".img";
}

// The first watch added after the descriptors are placed: the first one on
// a deleted file (watches_size() when none is).
int FirstDeferred(const img::Fd& f) {
  for (int i = 0; i < f.inotify().watches_size(); ++i) {
    if (f.inotify().watches(i).path().empty()) return i;
  }
  return f.inotify().watches_size();
}

// Adds watches [from, end) of |f| to |ifd|, the deleted files' at their
// recreated paths (|recreated|, null at creation: none is deferred then).
Status AddWatches(int ifd, const img::Fd& f, int from, int end, uint32_t last,
                  const std::map<std::string, std::string>* recreated) {
  bool removed = false;
  for (int i = from; i < end; ++i) {
    img::InotifyWatch w = f.inotify().watches(i);
    const bool deleted = w.path().empty();
    if (deleted) {
      const std::string* made = nullptr;
      if (recreated) {
        auto it = recreated->find(GhostOf(w));
        if (it != recreated->end()) made = &it->second;
      }
      if (!made) {
        return Errorf("inotify watch %u on a deleted file (inode %lu): this process does not hold the file", w.wd(),
                      static_cast<unsigned long>(w.inode()));
      }
      w.set_path(*made);
    }
    RETURN_IF_ERROR(AddWatch(ifd, w, last, deleted));
    removed = removed || w.wd() != last + 1;
    last = w.wd();
  }
  if (removed) {  // read away the IN_IGNORED events of the watches removed
    alignas(inotify_event) char buf[4096];
    while (read(ifd, buf, sizeof(buf)) > 0) {
    }
  }
  return OkStatus();
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
      if (!path.ok() && HoldsDeleted(s.pid, dev, w.ino)) path = std::string();
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
      LOG_DEBUG("files: %s: inotify wd %u on %s, mask %#x", s.Name().c_str(), w.wd,
                path->empty() ? "a deleted file" : path->c_str(), w.mask);
    }
    return OkStatus();
  }

  Status Create(const SharedObject& obj, RestoreContext&, CreatedFiles* out) const override {
    const auto& [id, f] = *obj.files.begin();
    UniqueFd ifd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!ifd.valid()) return ErrnoStatus("inotify_init1");
    RETURN_IF_ERROR(AddWatches(ifd.get(), *f, 0, FirstDeferred(*f), 0, nullptr));
    RETURN_IF_ERROR(SetStatusFlags(ifd.get(), f->flags(), O_NONBLOCK, "inotify instance"));
    (*out)[id] = std::move(ifd);
    return OkStatus();
  }

  // The watches from the first deleted file on, once: by the first fd of
  // the instance placed in a process that holds the deleted file.
  Status AfterPlacement(const img::Fd& f, RestoreContext& ctx) const override {
    const int first = FirstDeferred(f);
    if (first == f.inotify().watches_size()) return OkStatus();
    ASSIGN_OR_RETURN(proc::FdInfo info, proc::ReadFdInfo(getpid(), f.fd()));
    ASSIGN_OR_RETURN(std::vector<proc::InotifyWatchInfo> now, proc::ParseInotifyWatches(info));
    uint32_t last = first > 0 ? f.inotify().watches(first - 1).wd() : 0;
    for (const proc::InotifyWatchInfo& w : now) {
      if (w.wd > last) return OkStatus();  // added through another fd of it
    }
    return AddWatches(f.fd(), f, first, f.inotify().watches_size(), last, ctx.recreated);
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
