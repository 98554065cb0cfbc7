// `criu-fast restore`: from an images directory, or with --stream from one
// stream on stdin or --stream-from PATH. A stream is first unpacked into a
// private in-memory directory and checked up to its trailer (streams/
// stream_stage.h): no process is created from a stream that is cut, corrupt
// or incomplete. The directory goes once the tree runs.
#include <sys/stat.h>
#include <unistd.h>

#include <optional>

#include "common/log.h"
#include "engine/commands.h"
#include "engine/malloc_choice.h"
#include "engine/stream_input.h"
#include "restore/restore.h"
#include "streams/image_trust.h"

namespace cf::engine {
namespace {

std::string AbsolutePath(const std::string& dir) {
  if (!dir.empty() && dir[0] == '/') return dir;
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return dir;
  return dir == "." ? std::string(cwd) : std::string(cwd) + "/" + dir;
}

}  // namespace

int RunRestore(const Options& opts) {
  if (!opts.log_file.empty()) {
    const bool rel_dir = opts.log_file[0] != '/' && !opts.stream;  // a stream has no directory: relative to cwd
    const std::string path = rel_dir ? opts.InWorkDir(opts.log_file) : opts.log_file;
    if (!SetLogFile(path)) {
      LOG_ERROR("cannot open log file %s: %m", path.c_str());
      return 1;
    }
  }
  for (const std::string& n : opts.no_effect) LOG_INFO("option %s: no effect here", n.c_str());
  LOG_DEBUG("restore: jemalloc's huge pages: %s (engine/malloc_choice.h)", MallocThpMode());
  restore::RestoreOptions ro;
  // Absolute: the restored processes change directory before they open
  // their images (ghost files), and a relative -D would then miss them.
  ro.images_dir = AbsolutePath(opts.images_dir);
  ro.detached = opts.restore_detached;
  ro.leave_stopped = opts.leave_stopped;
  ro.pidfile = opts.stream ? opts.pidfile : opts.InWorkDir(opts.pidfile);
  ro.jobs = opts.jobs;
  ro.display_stats = opts.display_stats;
  ro.tcp_close = opts.tcp_close;
  if (!opts.join_ns.empty()) ro.join_netns = opts.join_ns.front();
  if (!opts.manage_cgroups.empty()) ro.manage_cgroups = opts.manage_cgroups;
  ro.cgroup_roots = opts.cgroup_roots;
  if (!opts.allow_untrusted_images && (!opts.stream || !opts.stream_from.empty())) {
    Status t = streams::CheckImagesTrusted(opts.stream ? opts.stream_from : opts.images_dir);
    if (!t.ok()) {
      LOG_ERROR("restore: %s", t.ToString().c_str());
      return 1;
    }
    streams::SetImageOwnerCheck(true);
  }
  std::optional<streams::StagedImage> staged;
  if (opts.stream) {
    auto st = StageStream(opts);
    if (!st.ok()) {
      LOG_ERROR("restore: %s (nothing restored)", st.status().ToString().c_str());
      return 1;
    }
    staged.emplace(std::move(*st));
    if (!staged->summary().complete) {
      LOG_ERROR("restore: %s: the stream ended before its trailer: the dump did not finish (nothing restored)",
                staged->name().c_str());
      return 1;
    }
    ro.images_dir = staged->dir();
    // An increment's parent is a directory: a stream's names it relative to
    // the current directory of the dump (or absolute).
    ro.parent_base = AbsolutePath(".");
  }
  // Once the tree runs: the staged stream goes, and --status-fd hears it
  // (one byte, then closed, as CRIU does).
  ro.images_done = [&staged, fd = opts.status_fd] {
    if (staged) staged->Remove();
    if (fd >= 0) {
      const char ready = 0;
      if (write(fd, &ready, 1) != 1) LOG_WARN("restore: --status-fd %d: %m", fd);
      close(fd);
    }
  };
  int exit_code = 0;
  Status s = restore::Restore(ro, &exit_code);
  if (!s.ok()) {
    LOG_ERROR("%s", s.ToString().c_str());
    return 1;
  }
  return exit_code;
}

}  // namespace cf::engine
