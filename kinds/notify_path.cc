#include "kinds/notify_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstring>
#include <sstream>
#include <vector>

#include "common/fd.h"
#include "common/io.h"

namespace cf::kinds {
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

// Mount points of |pid| whose device is |dev| (any device when |id| is set:
// then only mount |id|).
Result<std::vector<std::string>> MountsOf(pid_t pid, dev_t dev, uint32_t id = 0) {
  ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/" + std::to_string(pid) + "/mountinfo"));
  std::vector<std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream w(line);
    std::string mid, parent, majmin, root, point;
    if (!(w >> mid >> parent >> majmin >> root >> point)) continue;
    if (id != 0) {
      if (mid == std::to_string(id)) out.push_back(Unescape(point));
      continue;
    }
    unsigned maj = 0, min = 0;
    if (sscanf(majmin.c_str(), "%u:%u", &maj, &min) != 2 || makedev(maj, min) != dev) continue;
    out.push_back(Unescape(point));
  }
  return out;
}

}  // namespace

Result<std::string> PathByHandle(pid_t pid, uint64_t ino, dev_t dev, int32_t type, const std::string& handle) {
  if (handle.empty()) return Error("the kernel gave no file handle for it");
  ASSIGN_OR_RETURN(std::vector<std::string> mounts, MountsOf(pid, dev));
  std::vector<char> buf(sizeof(file_handle) + handle.size());
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  fh->handle_bytes = static_cast<unsigned>(handle.size());
  fh->handle_type = type;
  memcpy(fh->f_handle, handle.data(), handle.size());
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
    if (lstat(path->c_str(), &sb) == 0 && sb.st_dev == dev && sb.st_ino == ino) return *path;
  }
  return Error("no path leads to it (deleted, or reachable through no mount of the process)");
}

Result<std::string> MountPoint(pid_t pid, uint32_t mnt_id) {
  ASSIGN_OR_RETURN(std::vector<std::string> points, MountsOf(pid, 0, mnt_id));
  if (points.empty()) return Errorf("mount %u is not in the mountinfo of process %d", mnt_id, pid);
  return points.front();  // the tree shares criu-fast's mount namespace
}

}  // namespace cf::kinds
