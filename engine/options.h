// Command-line options. criu-fast takes upstream CRIU's command line (its
// options, their long and short forms, `--opt=value` and `--opt value`,
// `--no-opt` for its boolean options, the command anywhere among the options,
// config files) so CRIU's users and tools run it unchanged; see
// engine/options.cc for what each CRIU option does here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cf::engine {

enum class Command { kNone, kDump, kPreDump, kRestore, kCheck, kShow, kMerge };

struct Options {
  Command command = Command::kNone;
  pid_t pid = 0;                 // -t/--tree
  std::string images_dir;        // -D/--images-dir (default ".")
  std::string work_dir;          // -W/--work-dir (default: the images directory)
  std::string log_file;          // -o/--log-file (relative to the work directory; with --stream, to the cwd)
  int verbosity = 2;             // -v[N], --verbosity[=N], -vvv
  bool leave_running = false;    // -R/--leave-running, or -s: the dumped tree survives the dump
  bool leave_stopped = false;    // -s/--leave-stopped: the tree is left stopped (SIGSTOP) after dump or restore
  bool display_stats = false;    // --display-stats
  int jobs = 0;                  // --jobs N (0: number of CPUs)
  bool restore_detached = false; // -d/--restore-detached/--daemon
  bool shell_job = false;        // -j/--shell-job
  bool file_locks = false;       // -l/--file-locks: save held file locks (else refused)
  // --link-remap: a file opened by a name since removed, with another hard
  // link left, gets a name of criu-fast's at dump (kinds/regular_file.cc).
  bool link_remap = false;
  bool tcp_established = false;  // --tcp-established: save established TCP connections (else refused)
  bool skip_in_flight = false;   // --skip-in-flight: drop connections not accepted yet
  bool tcp_close = false;        // --tcp-close: connections saved (dump) or restored closed
  bool network_lock = true;      // --network-lock iptables|nftables (true) or skip
  std::vector<std::string> join_ns;  // --join-ns: restore only, net:PATH or net:PID
  bool ext_unix_sk = false;      // -x/--ext-unix-sk: datagram sockets connected outside the tree are dumped
  std::vector<uint64_t> ext_unix_sk_ids;  // --ext-unix-sk=ino,...: only these (empty: all)
  std::string pidfile;           // --pidfile (relative to the work directory)
  std::string prev_images_dir;   // --prev-images-dir
  bool track_mem = false;        // --track-mem
  int iterative = 0;             // dump --iterative[=N]: up to N pre-dump rounds first (engine/iterative.cc)
  bool live = false;             // dump --live: frozen only to collect and write-protect (engine/live.h)
  std::string manage_cgroups;    // --manage-cgroups[=MODE]: the mode (soft when none is named); "": not given
  // --cgroup-root [CONTROLLER:]/PATH, each given: (controller, path), "" for
  // the one without a controller (kinds/cgroup.h).
  std::vector<std::pair<std::string, std::string>> cgroup_roots;
  uint64_t ghost_limit = 1ull << 20;  // --ghost-limit SIZE[K|M|G]: most data of one deleted file saved (CRIU's 1M)
  int status_fd = -1;            // --status-fd FD: restore writes one byte there once the tree runs
  int timeout = 10;              // --timeout S: how long a seized thread may take to stop (0: no limit)
  std::vector<std::string> features;  // check --feature NAME...
  std::string compress = "zstd"; // --compress none|lz4|zstd[:N] (default zstd, level 1: README "Measured")
  std::string drain = "read";    // --drain read|vmsplice
  bool force_pagemap_fallback = false;  // --no-pagemap-scan
  int dedup = -1;                // --dedup (1) / --no-dedup (0); -1: the default, off (sched/dedup.h)
  bool stream = false;           // --stream: one image stream (stdout/stdin) instead of -D
  std::string stream_to;         // --stream-to PATH (dump; implies --stream)
  std::string stream_from;       // --stream-from PATH (restore, show; implies --stream)
  bool allow_untrusted_images = false;  // --allow-untrusted-images (streams/image_trust.h)
  std::vector<std::string> args; // positional arguments after the command (show PATH...)
  // CRIU options that were given and have no effect here (see options.cc),
  // for the log.
  std::vector<std::string> no_effect;

  // |path| relative to the work directory, unless absolute.
  std::string InWorkDir(const std::string& path) const;
};

// Parses argv the way CRIU does, after CRIU's config files (unless
// --no-default-config or --config FILE): /etc/criu/default.conf,
// $HOME/.criu/default.conf, $CRIU_CONFIG_FILE, --config FILE. --help/-h
// comes back as an error with err() == 0 and message "help", --version/-V
// with message "version"; usage errors as errors with the message to print.
Result<Options> ParseOptions(int argc, char** argv);

// The usage text printed by --help.
const char* UsageText();

}  // namespace cf::engine
