// `criu-fast restore`: from an images directory, or with --stream from one
// stream on stdin or --stream-from PATH. A stream is first unpacked into a
// private in-memory directory and checked up to its trailer (streams/
// stream_stage.h): no process is created from a stream that is cut, corrupt
// or incomplete. The directory goes once the tree runs.
#include <sys/stat.h>

#include <optional>

#include "common/log.h"
#include "engine/commands.h"
#include "engine/stream_input.h"
#include "restore/restore.h"
#include "streams/image_trust.h"

namespace cf::engine {

int RunRestore(const Options& opts) {
  if (!opts.log_file.empty()) {
    const bool rel_dir = opts.log_file[0] != '/' && !opts.stream;  // a stream has no directory: relative to cwd
    const std::string path = rel_dir ? opts.images_dir + "/" + opts.log_file : opts.log_file;
    if (!SetLogFile(path)) {
      LOG_ERROR("cannot open log file %s: %m", path.c_str());
      return 1;
    }
  }
  restore::RestoreOptions ro;
  ro.images_dir = opts.images_dir;
  ro.detached = opts.restore_detached;
  ro.pidfile = opts.pidfile;
  ro.jobs = opts.jobs;
  ro.display_stats = opts.display_stats;
  if (!opts.allow_untrusted_images && (!opts.stream || !opts.stream_from.empty())) {
    Status t = streams::CheckImagesTrusted(opts.stream ? opts.stream_from : opts.images_dir);
    if (!t.ok()) {
      LOG_ERROR("restore: %s", t.ToString().c_str());
      return 1;
    }
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
    ro.images_done = [&staged] { staged->Remove(); };
  }
  int exit_code = 0;
  Status s = restore::Restore(ro, &exit_code);
  if (!s.ok()) {
    LOG_ERROR("%s", s.ToString().c_str());
    return 1;
  }
  return exit_code;
}

}  // namespace cf::engine
