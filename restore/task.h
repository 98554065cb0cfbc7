// The part of a restore that runs inside the new process, before the
// restorer blob: session, descriptors, cwd, limits, and memory. It ends by
// jumping into the blob and never returns; errors go back to criu-fast as a
// message on |err_fd| followed by _exit(1).
#pragma once

#include <cstdint>
#include <string>

#include "restore/images.h"

namespace cf::restore {

// Where the restorer's args block sits, sent to criu-fast before the jump so
// it can read the restorer's result and unmap the region afterwards.
struct TaskReport {
  uint64_t region;
  uint64_t region_len;
  uint64_t args;
  uint64_t premap_ns;  // stage times inside the new process
  uint64_t fill_ns;
  uint64_t files_ns;
  uint64_t pages_filled;
};

struct TaskContext {
  const ProcessImages* images;
  std::string dir;
  int jobs;
  int go_fd;      // read end: criu-fast says go once it traces us
  int report_fd;  // write end: TaskReport, or an error message
};

[[noreturn]] void RunTask(TaskContext ctx);

}  // namespace cf::restore
