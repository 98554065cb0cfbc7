// Deleted directories, FIFOs, device nodes and symlinks (kinds/ghost_node.h).
#include "kinds/ghost_node.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <cerrno>
#include <vector>

namespace cf::kinds {
namespace {

constexpr char kDeleted[] = " (deleted)";

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Makes the node itself at |path|; errno tells why not.
bool MakeNode(const std::string& path, const img::GhostNode& g) {
  const mode_t type = g.mode() & S_IFMT;
  if (type == S_IFDIR) return mkdir(path.c_str(), 0700) == 0;
  if (type == S_IFLNK) return symlink(g.target().c_str(), path.c_str()) == 0;
  if (type == S_IFIFO || type == S_IFCHR || type == S_IFBLK) {
    return mknod(path.c_str(), type | 0600, static_cast<dev_t>(g.rdev())) == 0;
  }
  errno = EINVAL;
  return false;
}

void RemoveName(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno == EISDIR) rmdir(path.c_str());
}

}  // namespace

std::string StripDeleted(const std::string& link) {
  const size_t dl = sizeof(kDeleted) - 1;
  if (link.size() > dl && link.compare(link.size() - dl, dl, kDeleted) == 0) return link.substr(0, link.size() - dl);
  return link;
}

img::GhostNode GhostOf(const struct stat& sb, const std::string& target) {
  img::GhostNode g;
  g.set_mode(sb.st_mode);
  g.set_rdev(sb.st_rdev);
  g.set_target(target);
  g.set_uid(sb.st_uid);
  g.set_gid(sb.st_gid);
  return g;
}

Result<std::string> MakeGhostNode(const std::string& key, const std::string& path, const img::GhostNode& g,
                                  std::map<std::string, std::string>* made) {
  if (auto it = made->find(key); it != made->end()) return it->second;
  // The directories above it that are gone too, made again top down.
  std::vector<std::string> missing;
  struct stat sb;
  for (std::string dir = Dirname(path); dir != "/" && dir != "."; dir = Dirname(dir)) {
    if (lstat(dir.c_str(), &sb) == 0) {
      if (!S_ISDIR(sb.st_mode)) return Error("make deleted " + path + " again: " + dir + " is not a directory", ENOTDIR);
      break;
    }
    missing.push_back(dir);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (mkdir(it->c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("make directory " + *it + " again");
    (*made)[key + ":" + *it] = *it;
  }
  std::string at = path;
  bool ok = MakeNode(at, g);
  if (!ok && errno == EEXIST) {
    // The old name is taken by a new file: a name of our own beside it.
    at = Dirname(path) + "/.criu-fast.ghost-" + std::to_string(std::hash<std::string>{}(key)) + "." +
         std::to_string(getpid());
    ok = MakeNode(at, g);
    // Left by an earlier restore of this same pid that died: the name is ours.
    if (!ok && errno == EEXIST) {
      RemoveName(at);
      ok = MakeNode(at, g);
    }
  }
  if (!ok) return ErrnoStatus("make deleted " + path + " again as " + at);
  if (lstat(at.c_str(), &sb) != 0) return ErrnoStatus("stat " + at);
  (*made)[key] = at;
  if ((sb.st_uid != g.uid() || sb.st_gid != g.gid()) && lchown(at.c_str(), g.uid(), g.gid()) != 0) {
    return ErrnoStatus("chown " + at);
  }
  // Not through the process's umask: the bits it had exactly.
  if (!S_ISLNK(g.mode()) && chmod(at.c_str(), g.mode() & 07777) != 0) return ErrnoStatus("chmod " + at);
  return at;
}

void RemoveRecreated(const std::map<std::string, std::string>& made) {
  std::vector<std::string> dirs;
  for (const auto& [key, path] : made) {
    if (unlink(path.c_str()) != 0 && errno == EISDIR) dirs.push_back(path);
  }
  // A directory's name is longer than its parent's.
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& d : dirs) rmdir(d.c_str());
}

}  // namespace cf::kinds
