#include "kinds/pidns.h"

#include <sys/stat.h>

#include <cerrno>
#include <string>

#include "common/io.h"

namespace cf::kinds {
namespace {

Result<ino_t> PidNamespaceOf(const std::string& proc, const char* name) {
  struct stat sb;
  const std::string path = "/proc/" + proc + "/ns/" + name;
  if (stat(path.c_str(), &sb) != 0) return ErrnoStatus("stat " + path);
  return sb.st_ino;
}

}  // namespace

Status RefusePidNamespaces(const std::vector<pid_t>& pids) {
  ASSIGN_OR_RETURN(ino_t ours, PidNamespaceOf("self", "pid"));
  for (pid_t pid : pids) {
    const std::string p = std::to_string(pid);
    ASSIGN_OR_RETURN(ino_t own, PidNamespaceOf(p, "pid"));
    if (own != ours) {
      return Errorf("process %d lives in a PID namespace below criu-fast's: PID namespaces are not supported", pid);
    }
    ASSIGN_OR_RETURN(ino_t kids, PidNamespaceOf(p, "pid_for_children"));
    if (kids != ours) {
      return Errorf("process %d makes its children in a PID namespace of their own (unshare CLONE_NEWPID): "
                    "PID namespaces are not supported",
                    pid);
    }
  }
  return OkStatus();
}

ProbeResult ProbePidNamespaces() {
  struct stat sb;
  if (stat("/proc/self/ns/pid", &sb) != 0) return ProbeFailed("/proc/self/ns/pid", errno);
  auto status = ReadFile("/proc/self/status");
  if (!status.ok()) return ProbeFailed("/proc/self/status", EIO);
  if (status->find("\nNSpid:") == std::string::npos) return {false, "no NSpid line in /proc/self/status"};
  return {true, ""};
}

}  // namespace cf::kinds
