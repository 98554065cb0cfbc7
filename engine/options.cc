#include "engine/options.h"

#include <getopt.h>

#include <cstdlib>
#include <cstring>

namespace cf::engine {
namespace {

enum LongOnly {
  kOptDisplayStats = 1000,
  kOptJobs,
  kOptPidfile,
  kOptPrevImages,
  kOptTrackMem,
  kOptCompress,
  kOptDrain,
  kOptNoPagemapScan,
  kOptStream,
  kOptStreamTo,
  kOptStreamFrom,
  kOptAllowUntrusted,
};

bool ParseInt(const char* s, long lo, long hi, long* out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace

const char* UsageText() {
  return "Usage:\n"
         "  criu-fast dump     -t PID [-D DIR] [options]   checkpoint a process tree\n"
         "  criu-fast dump     -t PID --stream [options]   ... as one stream on stdout (or --stream-to PATH)\n"
         "  criu-fast pre-dump -t PID [-D DIR] [options]   save memory, leave the tree running\n"
         "  criu-fast restore  [-D DIR] [-d] [options]     restore a checkpointed tree\n"
         "  criu-fast restore  --stream [-d] [options]     ... from a stream on stdin (or --stream-from PATH)\n"
         "  criu-fast check                                probe the kernel features used\n"
         "  criu-fast show     DIR|FILE|--stream           print images as JSON\n"
         "\n"
         "Options:\n"
         "  -t, --tree PID            root of the process tree to dump\n"
         "  -D, --images-dir DIR      directory of the image files (default: .)\n"
         "  -o, --log-file FILE       log to FILE (relative to the images directory, or with\n"
         "                            --stream to the current directory)\n"
         "  -v[N], --verbosity[=N]    log level 0..4 (default 2; -v alone: 3)\n"
         "  -R, --leave-running       keep the tree running after dump\n"
         "  -d, --restore-detached    return once the restored tree runs\n"
         "  -j, --shell-job           allow a tree attached to the shell's terminal\n"
         "      --pidfile FILE        write the restored root PID to FILE\n"
         "      --prev-images-dir DIR parent image for an incremental dump\n"
         "      --track-mem           track written pages for the next incremental dump\n"
         "      --display-stats       print timings and page counts\n"
         "      --jobs N              worker threads (default: number of CPUs)\n"
         "      --compress CODEC      page chunk compression: none, lz4, zstd[:LEVEL]\n"
         "      --drain MODE          memory draining: read (process_vm_readv) or vmsplice\n"
         "      --no-pagemap-scan     read /proc/PID/pagemap instead of PAGEMAP_SCAN\n"
         "      --stream              dump to stdout / restore or show from stdin, as one stream\n"
         "      --stream-to PATH      dump: write the stream to PATH (a FIFO or a file)\n"
         "      --stream-from PATH    restore, show: read the stream from PATH\n"
         "      --allow-untrusted-images  restore: take images that users other than root\n"
         "                            (or you) could have written\n"
         "  -h, --help                this text\n";
}

Result<Options> ParseOptions(int argc, char** argv) {
  Options o;
  if (argc < 2) return Error("no command given (try criu-fast --help)");
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") return Error("help");
  if (cmd == "dump") o.command = Command::kDump;
  else if (cmd == "pre-dump") o.command = Command::kPreDump;
  else if (cmd == "restore") o.command = Command::kRestore;
  else if (cmd == "check") o.command = Command::kCheck;
  else if (cmd == "show") o.command = Command::kShow;
  else return Error("unknown command '" + cmd + "' (try criu-fast --help)");

  static const option kLong[] = {
      {"tree", required_argument, nullptr, 't'},
      {"images-dir", required_argument, nullptr, 'D'},
      {"log-file", required_argument, nullptr, 'o'},
      {"verbosity", optional_argument, nullptr, 'v'},
      {"leave-running", no_argument, nullptr, 'R'},
      {"restore-detached", no_argument, nullptr, 'd'},
      {"shell-job", no_argument, nullptr, 'j'},
      {"help", no_argument, nullptr, 'h'},
      {"display-stats", no_argument, nullptr, kOptDisplayStats},
      {"jobs", required_argument, nullptr, kOptJobs},
      {"pidfile", required_argument, nullptr, kOptPidfile},
      {"prev-images-dir", required_argument, nullptr, kOptPrevImages},
      {"track-mem", no_argument, nullptr, kOptTrackMem},
      {"compress", required_argument, nullptr, kOptCompress},
      {"drain", required_argument, nullptr, kOptDrain},
      {"no-pagemap-scan", no_argument, nullptr, kOptNoPagemapScan},
      {"stream", no_argument, nullptr, kOptStream},
      {"stream-to", required_argument, nullptr, kOptStreamTo},
      {"stream-from", required_argument, nullptr, kOptStreamFrom},
      {"allow-untrusted-images", no_argument, nullptr, kOptAllowUntrusted},
      {nullptr, 0, nullptr, 0},
  };
  optind = 2;
  opterr = 0;
  for (;;) {
    int c = getopt_long(argc, argv, ":t:D:o:v::Rdjh", kLong, nullptr);
    if (c == -1) break;
    long v = 0;
    switch (c) {
      case 't':
        if (!ParseInt(optarg, 1, 0x7fffffff, &v)) return Error(std::string("bad PID '") + optarg + "'");
        o.pid = static_cast<pid_t>(v);
        break;
      case 'D': o.images_dir = optarg; break;
      case 'o': o.log_file = optarg; break;
      case 'v':
        if (!optarg) {
          o.verbosity = 3;
        } else if (!ParseInt(optarg, 0, 4, &v)) {
          return Error(std::string("bad verbosity '") + optarg + "' (expected 0..4)");
        } else {
          o.verbosity = static_cast<int>(v);
        }
        break;
      case 'R': o.leave_running = true; break;
      case 'd': o.restore_detached = true; break;
      case 'j': o.shell_job = true; break;
      case 'h': return Error("help");
      case kOptDisplayStats: o.display_stats = true; break;
      case kOptJobs:
        if (!ParseInt(optarg, 1, 1024, &v)) return Error(std::string("bad --jobs '") + optarg + "'");
        o.jobs = static_cast<int>(v);
        break;
      case kOptPidfile: o.pidfile = optarg; break;
      case kOptPrevImages: o.prev_images_dir = optarg; break;
      case kOptTrackMem: o.track_mem = true; break;
      case kOptCompress: o.compress = optarg; break;
      case kOptDrain:
        o.drain = optarg;
        if (o.drain != "read" && o.drain != "vmsplice") {
          return Error("bad --drain '" + o.drain + "' (expected read or vmsplice)");
        }
        break;
      case kOptNoPagemapScan: o.force_pagemap_fallback = true; break;
      case kOptStream: o.stream = true; break;
      case kOptStreamTo:
        o.stream = true;
        o.stream_to = optarg;
        break;
      case kOptStreamFrom:
        o.stream = true;
        o.stream_from = optarg;
        break;
      case kOptAllowUntrusted: o.allow_untrusted_images = true; break;
      case ':':
        return Error(std::string("option ") + argv[optind - 1] + " needs an argument");
      case '?':
      default:
        if (optopt) return Error(std::string("unknown option -") + static_cast<char>(optopt));
        return Error(std::string("unknown option ") + argv[optind - 1]);
    }
  }
  for (int i = optind; i < argc; ++i) o.args.push_back(argv[i]);

  const bool takes_args = o.command == Command::kShow;
  if (!takes_args && !o.args.empty()) return Error("unexpected argument '" + o.args[0] + "'");
  if ((o.command == Command::kDump || o.command == Command::kPreDump) && o.pid == 0) {
    return Error("dump needs -t PID");
  }
  if (o.stream) {
    const bool dump = o.command == Command::kDump;
    if (!dump && o.command != Command::kRestore && o.command != Command::kShow) {
      return Error("--stream works with dump, restore and show only");
    }
    if (!o.stream_to.empty() && !dump) return Error("--stream-to is for dump (restore and show take --stream-from)");
    if (!o.stream_from.empty() && dump) return Error("--stream-from is for restore and show (dump takes --stream-to)");
    if (!o.images_dir.empty()) return Error("-D and --stream exclude each other: a stream has no images directory");
    if (!o.args.empty()) return Error("unexpected argument '" + o.args[0] + "' with --stream");
  }
  if (o.command == Command::kShow && !o.stream && o.args.empty() && o.images_dir.empty()) {
    return Error("show needs an image directory or file");
  }
  if (o.images_dir.empty()) o.images_dir = ".";
  return o;
}

}  // namespace cf::engine
