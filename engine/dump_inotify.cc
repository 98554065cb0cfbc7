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
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <vector>

#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "proc/fdinfo_kinds.h"
#include "engine/shared_files.h"

namespace cf::engine {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Mount points of |pid| whose device is |dev|.
Result<std::vector<std::string>> MountsOf(pid_t pid, dev_t dev) {
  ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/" + std::to_string(pid) + "/mountinfo"));
  std::vector<std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream w(line);
    std::string id, parent, majmin, root, point;
    if (!(w >> id >> parent >> majmin >> root >> point)) continue;
    unsigned maj = 0, min = 0;
    if (sscanf(majmin.c_str(), "%u:%u", &maj, &min) != 2 || makedev(maj, min) != dev) continue;
    out.push_back(Unescape(point));
  }
  return out;
}

// A path, in our mount namespace, to the file of |w|, seen from |pid|.
Result<std::string> WatchPath(pid_t pid, const InotifyWatchInfo& w, dev_t dev) {
  if (w.fhandle.empty()) return Error("the kernel gave no file handle for it");
  ASSIGN_OR_RETURN(std::vector<std::string> mounts, MountsOf(pid, dev));
  std::vector<char> buf(sizeof(file_handle) + w.fhandle.size());
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  fh->handle_bytes = static_cast<unsigned>(w.fhandle.size());
  fh->handle_type = w.fhandle_type;
  memcpy(fh->f_handle, w.fhandle.data(), w.fhandle.size());
  const std::string root = "/proc/" + std::to_string(pid) + "/root";
  for (const std::string& point : mounts) {
    // open_by_handle_at() refuses an O_PATH descriptor for the mount (EBADF).
    UniqueFd mnt(open((root + point).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!mnt.valid()) continue;
    UniqueFd file(open_by_handle_at(mnt.get(), fh, O_PATH | O_CLOEXEC));
    if (!file.valid()) continue;
    auto path = ReadLink("/proc/self/fd/" + std::to_string(file.get()));
    if (!path.ok() || path->empty() || (*path)[0] != '/') continue;
    struct stat sb;
    if (lstat(path->c_str(), &sb) == 0 && sb.st_dev == dev && sb.st_ino == w.ino) return *path;
  }
  return Error("no path leads to it (deleted, or reachable through no mount of the process)");
}

}  // namespace

Status ReadInotify(pid_t pid, int fd, const FdInfo& info, img::Fd* out) {
  ASSIGN_OR_RETURN(std::vector<InotifyWatchInfo> watches, ParseInotifyWatches(info));
  for (const InotifyWatchInfo& w : watches) {
    // The kernel prints its own dev_t: 12 bits of major above 20 of minor.
    const dev_t dev = makedev(w.sdev >> 20, w.sdev & 0xfffff);
    auto path = WatchPath(pid, w, dev);
    if (!path.ok()) {
      return path.status().WithContext("inotify watch " + std::to_string(w.wd) + " (device " +
                                       std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) + ", inode " +
                                       std::to_string(w.ino) + ")");
    }
    img::InotifyWatch* iw = out->add_inotify_watches();
    iw->set_wd(w.wd);
    iw->set_mask(w.mask);
    iw->set_ignored_mask(w.ignored_mask);
    iw->set_dev(dev);
    iw->set_inode(w.ino);
    iw->set_path(*path);
    iw->set_fhandle_type(w.fhandle_type);
    iw->set_fhandle(w.fhandle);
    LOG_DEBUG("files: process %d fd %d: inotify wd %u on %s, mask %#x", pid, fd, w.wd, path->c_str(), w.mask);
  }
  return OkStatus();
}

}  // namespace cf::engine
