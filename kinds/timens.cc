#include "kinds/timens.h"

#include <sys/stat.h>

#include <cerrno>
#include <string>

namespace cf::kinds {
namespace {

// The inode of namespace file |name| of |proc| ("self" or a pid); 0 when
// the kernel has none.
Result<ino_t> NamespaceOf(const std::string& proc, const char* name) {
  struct stat sb;
  const std::string path = "/proc/" + proc + "/ns/" + name;
  if (stat(path.c_str(), &sb) != 0) {
    if (errno == ENOENT && proc == "self") return ino_t{0};
    return ErrnoStatus("stat " + path);
  }
  return sb.st_ino;
}

}  // namespace

Status RefuseTimeNamespaces(const std::vector<pid_t>& pids) {
  ASSIGN_OR_RETURN(ino_t ours, NamespaceOf("self", "time"));
  if (ours == 0) return OkStatus();
  for (pid_t pid : pids) {
    const std::string p = std::to_string(pid);
    ASSIGN_OR_RETURN(ino_t own, NamespaceOf(p, "time"));
    ASSIGN_OR_RETURN(ino_t kids, NamespaceOf(p, "time_for_children"));
    if (own != ours) {
      return Errorf("process %d lives in a time namespace of its own: time namespaces are not supported", pid);
    }
    if (kids != ours) {
      return Errorf("process %d makes its children in a time namespace of their own (unshare CLONE_NEWTIME): "
                    "time namespaces are not supported",
                    pid);
    }
  }
  return OkStatus();
}

ProbeResult ProbeTimeNamespaces() {
  struct stat sb;
  if (stat("/proc/self/ns/time", &sb) != 0) return ProbeFailed("/proc/self/ns/time", errno);
  return {true, ""};
}

}  // namespace cf::kinds
