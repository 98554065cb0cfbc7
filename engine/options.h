// Command-line options, following upstream CRIU's flags where it has them.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace cf::engine {

enum class Command { kNone, kDump, kPreDump, kRestore, kCheck, kShow };

struct Options {
  Command command = Command::kNone;
  pid_t pid = 0;                 // -t/--tree
  std::string images_dir;        // -D/--images-dir (default ".")
  std::string log_file;          // -o/--log-file (relative to images_dir; with --stream, to the cwd)
  int verbosity = 2;             // -v[N]
  bool leave_running = false;    // -R/--leave-running
  bool display_stats = false;    // --display-stats
  int jobs = 0;                  // --jobs N (0: number of CPUs)
  bool restore_detached = false; // -d/--restore-detached
  bool shell_job = false;        // -j/--shell-job
  std::string pidfile;           // --pidfile
  std::string prev_images_dir;   // --prev-images-dir
  bool track_mem = false;        // --track-mem
  std::string compress = "none"; // --compress none|lz4|zstd[:N]
  std::string drain = "read";    // --drain read|vmsplice
  bool force_pagemap_fallback = false;  // --no-pagemap-scan
  bool stream = false;           // --stream: one image stream (stdout/stdin) instead of -D
  std::string stream_to;         // --stream-to PATH (dump; implies --stream)
  std::string stream_from;       // --stream-from PATH (restore, show; implies --stream)
  bool allow_untrusted_images = false;  // --allow-untrusted-images (streams/image_trust.h)
  std::vector<std::string> args; // positional arguments (show PATH...)
};

// Parses argv. --help/-h and usage errors come back as errors with the
// message to print (help text for --help, with err() == 0 and message "help").
Result<Options> ParseOptions(int argc, char** argv);

// The usage text printed by --help.
const char* UsageText();

}  // namespace cf::engine
