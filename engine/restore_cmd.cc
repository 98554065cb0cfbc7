#include <sys/stat.h>

#include "common/log.h"
#include "engine/commands.h"
#include "restore/restore.h"

namespace cf::engine {

int RunRestore(const Options& opts) {
  if (!opts.log_file.empty()) {
    const std::string path = opts.log_file[0] == '/' ? opts.log_file : opts.images_dir + "/" + opts.log_file;
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
  int exit_code = 0;
  Status s = restore::Restore(ro, &exit_code);
  if (!s.ok()) {
    LOG_ERROR("%s", s.ToString().c_str());
    return 1;
  }
  return exit_code;
}

}  // namespace cf::engine
