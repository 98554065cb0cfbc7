// `criu-fast restore`: bringing a checkpointed process back to life.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cf::restore {

struct RestoreOptions {
  std::string images_dir;
  bool detached = false;   // -d: return once the process runs
  bool leave_stopped = false;  // --leave-stopped: every process is left stopped (SIGSTOP)
  std::string pidfile;     // --pidfile: where to write the restored root pid
  int jobs = 0;            // threads that fill memory (0: number of CPUs)
  bool display_stats = false;
  // Where an incremental image's parent path is relative to when the image
  // has no directory of its own (a stream): -D, or the current directory.
  std::string parent_base;
  bool tcp_close = false;  // --tcp-close: TCP connections are restored closed
  // --join-ns net:PATH|PID: the network namespace the tree is restored in
  // (else one made like the dumped tree's, or criu-fast's own).
  std::string join_netns;
  std::string manage_cgroups = "soft";  // --manage-cgroups mode (kinds/cgroup.h)
  // --cgroup-root [CONTROLLER:]/PATH: (controller, path), "" for all others.
  std::vector<std::pair<std::string, std::string>> cgroup_roots;
  // Called once the images are no longer needed (the tree runs on its own):
  // a restore from a stream removes its staged copy here.
  std::function<void()> images_done;
};

// Restores the tree. Without |detached| it waits for the restored root and
// returns its exit status (128 + signal when killed) in *exit_code.
Status Restore(const RestoreOptions& opts, int* exit_code);

}  // namespace cf::restore
