// CRIU's command line, option by option. Every option CRIU 4.2 accepts is in
// kOptions with what it does here:
//   - implemented: it means what it means to CRIU;
//   - no effect: accepted, because ignoring it cannot change the result
//     here (logging details, features criu-fast has no counterpart for that
//     would only matter for objects criu-fast refuses loudly anyway, "off"
//     switches of things criu-fast does not do); each is logged at dump or
//     restore with the reason;
//   - refused: the command fails with a message naming the option, because
//     ignoring it could change the result (namespaces, cgroups, external
//     resources, page servers, ...).
// CRIU's boolean options also take a --no- form. Options come first from
// CRIU's config files (each line: an option without its dashes, then its
// argument), then from the command line, which wins.
#include "engine/options.h"

#include <getopt.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace cf::engine {
namespace {

enum class Act {
  kTree, kImagesDir, kWorkDir, kLogFile, kVerbosity, kLeaveRunning, kLeaveStopped, kDetached, kShellJob, kFileLocks, kExtUnixSk, kLinkRemap,
  kPidfile,
  kPrevImages, kTrackMem, kDedup, kLive, kIterative, kGhostLimit, kStatusFd, kTimeout, kFeature, kDisplayStats, kClose,
  kRoot, kPreDumpMode, kManageCgroups, kCgroupRoot, kTcpEstablished, kSkipInFlight, kTcpClose, kNetworkLock,
  kJoinNs, kVersion, kHelp, kConfigFile, kNoEffect, kRefused,
  // criu-fast's own (long only)
  kJobs, kCompress, kDrain, kNoPagemapScan, kStream, kStreamTo, kStreamFrom, kAllowUntrusted,
};

struct OptDef {
  const char* name;
  int has_arg;      // no_argument, required_argument, optional_argument
  char short_name;  // 0: long only
  bool boolean;     // CRIU's BOOL_OPT: also --no-NAME
  Act act;
  const char* why;  // kNoEffect, kRefused: the reason
};

constexpr const char* kNotNamespaces = "criu-fast restores into the caller's namespaces";
constexpr const char* kNotCgroups = "not supported yet";

const OptDef kOptions[] = {
    {"tree", required_argument, 't', false, Act::kTree, nullptr},
    {"leave-stopped", no_argument, 's', false, Act::kLeaveStopped, nullptr},
    {"leave-running", no_argument, 'R', false, Act::kLeaveRunning, nullptr},
    {"restore-detached", no_argument, 'd', true, Act::kDetached, nullptr},
    {"restore-sibling", no_argument, 'S', true, Act::kRefused, "restoring as a sibling is not supported yet"},
    {"daemon", no_argument, 0, true, Act::kDetached, nullptr},
    {"images-dir", required_argument, 'D', false, Act::kImagesDir, nullptr},
    {"work-dir", required_argument, 'W', false, Act::kWorkDir, nullptr},
    {"log-file", required_argument, 'o', false, Act::kLogFile, nullptr},
    {"join-ns", required_argument, 'J', false, Act::kJoinNs, nullptr},
    {"root", required_argument, 'r', false, Act::kRoot, nullptr},
    {"ext-unix-sk", optional_argument, 'x', false, Act::kExtUnixSk, nullptr},
    {"help", no_argument, 'h', false, Act::kHelp, nullptr},
    {"tcp-established", no_argument, 0, true, Act::kTcpEstablished, nullptr},
    {"close", required_argument, 0, false, Act::kClose, nullptr},
    {"log-pid", no_argument, 0, true, Act::kNoEffect, "criu-fast writes one log"},
    {"version", no_argument, 'V', false, Act::kVersion, nullptr},
    {"evasive-devices", no_argument, 0, true, Act::kNoEffect,
     "devices are reopened by their path, as without it when the path is there"},
    {"pidfile", required_argument, 0, false, Act::kPidfile, nullptr},
    {"veth-pair", required_argument, 0, false, Act::kRefused, kNotNamespaces},
    {"action-script", required_argument, 0, false, Act::kRefused, "action scripts are not supported yet"},
    {"link-remap", no_argument, 0, true, Act::kLinkRemap, nullptr},
    {"shell-job", no_argument, 'j', true, Act::kShellJob, nullptr},
    {"file-locks", no_argument, 'l', true, Act::kFileLocks, nullptr},
    {"page-server", no_argument, 0, true, Act::kRefused, "page servers are not supported"},
    {"address", required_argument, 0, false, Act::kRefused, "page servers are not supported"},
    {"port", required_argument, 0, false, Act::kRefused, "page servers are not supported"},
    {"prev-images-dir", required_argument, 0, false, Act::kPrevImages, nullptr},
    {"ms", no_argument, 0, false, Act::kRefused, "--ms is deprecated in CRIU too"},
    {"track-mem", no_argument, 0, true, Act::kTrackMem, nullptr},
    {"dedup", no_argument, 0, true, Act::kDedup, nullptr},
    {"auto-dedup", no_argument, 0, true, Act::kNoEffect,
     "parent images are not changed: pages an increment replaced stay in its parent (criu-fast merge bounds a chain)"},
    {"libdir", required_argument, 'L', false, Act::kRefused, "CRIU plugins are not loaded by criu-fast"},
    {"cpu-cap", optional_argument, 0, false, Act::kNoEffect,
     "criu-fast does not compare CPU features; restore where the image was made"},
    {"force-irmap", no_argument, 0, true, Act::kNoEffect,
     "inotify watches are always resolved to paths at dump"},
    {"ext-mount-map", required_argument, 'M', false, Act::kRefused, kNotNamespaces},
    {"exec-cmd", no_argument, 0, false, Act::kRefused, "--exec-cmd is not supported yet"},
    {"manage-cgroups", optional_argument, 0, false, Act::kManageCgroups, nullptr},
    {"cgroup-root", required_argument, 0, false, Act::kCgroupRoot, nullptr},
    {"inherit-fd", required_argument, 0, false, Act::kRefused, "--inherit-fd is not supported yet"},
    {"feature", required_argument, 0, false, Act::kFeature, nullptr},
    {"skip-mnt", required_argument, 0, false, Act::kRefused, kNotNamespaces},
    {"enable-fs", required_argument, 0, false, Act::kRefused, kNotNamespaces},
    {"enable-external-sharing", no_argument, 0, false, Act::kRefused, kNotNamespaces},
    {"enable-external-masters", no_argument, 0, false, Act::kRefused, kNotNamespaces},
    {"freeze-cgroup", required_argument, 0, false, Act::kRefused, kNotCgroups},
    {"ghost-limit", required_argument, 0, false, Act::kGhostLimit, nullptr},
    {"irmap-scan-path", required_argument, 0, false, Act::kNoEffect,
     "inotify watches are resolved from the kernel's file handles"},
    {"lsm-profile", required_argument, 0, false, Act::kRefused, "LSM profiles are not restored"},
    {"timeout", required_argument, 0, false, Act::kTimeout, nullptr},
    {"external", required_argument, 0, false, Act::kRefused, "external resources are not supported yet"},
    {"empty-ns", required_argument, 0, false, Act::kRefused, kNotNamespaces},
    {"lazy-pages", no_argument, 0, false, Act::kRefused, "lazy restore is not supported"},
    {"extra", no_argument, 0, true, Act::kNoEffect, "check probes every feature criu-fast uses"},
    {"experimental", no_argument, 0, true, Act::kNoEffect, "check probes every feature criu-fast uses"},
    {"all", no_argument, 0, false, Act::kNoEffect, "check probes every feature criu-fast uses"},
    {"cgroup-props", required_argument, 0, false, Act::kRefused, kNotCgroups},
    {"cgroup-props-file", required_argument, 0, false, Act::kRefused, kNotCgroups},
    {"cgroup-dump-controller", required_argument, 0, false, Act::kRefused, kNotCgroups},
    {"skip-in-flight", no_argument, 0, true, Act::kSkipInFlight, nullptr},
    {"deprecated", no_argument, 0, true, Act::kNoEffect, "nothing deprecated is used"},
    {"display-stats", no_argument, 0, true, Act::kDisplayStats, nullptr},
    {"weak-sysctls", no_argument, 0, true, Act::kNoEffect, "no sysctls are restored"},
    {"status-fd", required_argument, 0, false, Act::kStatusFd, nullptr},
    {"tcp-close", no_argument, 0, true, Act::kTcpClose, nullptr},
    {"verbosity", optional_argument, 'v', false, Act::kVerbosity, nullptr},
    {"ps-socket", required_argument, 0, false, Act::kRefused, "page servers are not supported"},
    {"config", required_argument, 0, false, Act::kConfigFile, nullptr},
    {"no-default-config", no_argument, 0, false, Act::kConfigFile, nullptr},
    {"tls-cacert", required_argument, 0, false, Act::kRefused, "page servers are not supported"},
    {"tls-cacrl", required_argument, 0, false, Act::kRefused, "page servers are not supported"},
    {"tls-cert", required_argument, 0, false, Act::kRefused, "page servers are not supported"},
    {"tls-key", required_argument, 0, false, Act::kRefused, "page servers are not supported"},
    {"tls", no_argument, 0, true, Act::kRefused, "page servers are not supported"},
    {"tls-no-cn-verify", no_argument, 0, false, Act::kRefused, "page servers are not supported"},
    {"cgroup-yard", required_argument, 0, false, Act::kRefused, kNotCgroups},
    {"pre-dump-mode", required_argument, 0, false, Act::kPreDumpMode, nullptr},
    {"file-validation", required_argument, 0, false, Act::kNoEffect,
     "restore checks each reopened file's device and inode and warns when they differ"},
    {"skip-file-rwx-check", no_argument, 0, true, Act::kNoEffect, "files are reopened with their saved flags"},
    {"lsm-mount-context", required_argument, 0, false, Act::kRefused, kNotNamespaces},
    {"network-lock", required_argument, 0, false, Act::kNetworkLock, nullptr},
    {"mntns-compat-mode", no_argument, 0, true, Act::kNoEffect, "mount namespaces are not restored"},
    {"unprivileged", no_argument, 0, true, Act::kRefused, "criu-fast runs as root"},
    {"ghost-fiemap", no_argument, 0, true, Act::kNoEffect, "ghost images store the contents as they read"},
    {"allow-uprobes", no_argument, 0, true, Act::kNoEffect, "uprobes are not touched"},
    // criu-fast's own options (long only).
    {"jobs", required_argument, 0, false, Act::kJobs, nullptr},
    {"compress", required_argument, 0, false, Act::kCompress, nullptr},
    {"drain", required_argument, 0, false, Act::kDrain, nullptr},
    {"no-pagemap-scan", no_argument, 0, false, Act::kNoPagemapScan, nullptr},
    {"live", no_argument, 0, false, Act::kLive, nullptr},
    {"iterative", optional_argument, 0, false, Act::kIterative, nullptr},
    {"stream", no_argument, 0, false, Act::kStream, nullptr},
    {"stream-to", required_argument, 0, false, Act::kStreamTo, nullptr},
    {"stream-from", required_argument, 0, false, Act::kStreamFrom, nullptr},
    {"allow-untrusted-images", no_argument, 0, false, Act::kAllowUntrusted, nullptr},
};
constexpr int kNumOptions = sizeof(kOptions) / sizeof(kOptions[0]);
constexpr int kNoFlag = 0x4000;   // getopt value of a --no-NAME form
constexpr int kLongBase = 0x1000; // getopt value of option i: kLongBase + i

bool ParseInt(const char* s, long lo, long hi, long* out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// A size with an optional K, M or G, as CRIU's --ghost-limit takes it.
bool ParseSize(const char* s, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return false;
  uint64_t mult = 1;
  if (*end == 'K' || *end == 'k') mult = 1ull << 10;
  else if (*end == 'M' || *end == 'm') mult = 1ull << 20;
  else if (*end == 'G' || *end == 'g') mult = 1ull << 30;
  else if (*end != '\0') return false;
  if (mult != 1 && end[1] != '\0') return false;
  *out = v * mult;
  return true;
}

// -v, -vv..., -vN, --verbosity[=N], and CRIU's single-dash -verbosity=N
// (getopt reads it as -v with "erbosity=N").
Status ParseVerbosity(const char* arg, int* level) {
  if (arg == nullptr) {
    ++*level;
  } else if (arg[0] == 'v' && strspn(arg, "v") == strlen(arg)) {
    *level += static_cast<int>(strlen(arg)) + 1;
  } else {
    const char* num = strncmp(arg, "erbosity=", 9) == 0 ? arg + 9 : arg;
    long v = 0;
    if (!ParseInt(num, 0, 1000, &v)) return Error(std::string("bad verbosity '") + arg + "' (expected a number)");
    *level = static_cast<int>(v);
  }
  *level = std::min(*level, 4);
  return OkStatus();
}

// The words of a CRIU config file: each line is an option name without
// its dashes, then its argument if any; '#' starts a comment; "..." keeps
// spaces.
Result<std::vector<std::string>> ReadConfig(const std::string& path, bool must_exist) {
  std::ifstream in(path);
  if (!in) {
    if (must_exist) return ErrnoStatus("config file " + path);
    return std::vector<std::string>{};
  }
  std::vector<std::string> words;
  std::string line;
  while (std::getline(in, line)) {
    bool first = true;
    for (size_t i = 0; i < line.size();) {
      if (isspace(static_cast<unsigned char>(line[i]))) {
        ++i;
        continue;
      }
      if (line[i] == '#') break;
      std::string w;
      if (line[i] == '"') {
        const size_t close = line.find('"', i + 1);
        if (close == std::string::npos) return Error(path + ": unterminated quote");
        w = line.substr(i + 1, close - i - 1);
        i = close + 1;
      } else {
        const size_t e = line.find_first_of(" \t\r", i);
        w = line.substr(i, e == std::string::npos ? std::string::npos : e - i);
        i = e == std::string::npos ? line.size() : e;
      }
      words.push_back(first ? "--" + w : w);
      first = false;
    }
  }
  return words;
}

// The config files CRIU reads, in its order, given the command line.
Result<std::vector<std::string>> ConfigWords(int argc, char** argv) {
  bool no_default = false;
  std::string cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-default-config") {
      no_default = true;
    } else if (a == "--config" && i + 1 < argc) {
      cfg = argv[i + 1];
      no_default = true;
    } else if (a.rfind("--config=", 0) == 0) {
      cfg = a.substr(9);
      no_default = true;
    }
  }
  std::vector<std::string> words;
  auto add = [&](const std::string& path, bool must) -> Status {
    ASSIGN_OR_RETURN(std::vector<std::string> w, ReadConfig(path, must));
    words.insert(words.end(), w.begin(), w.end());
    return OkStatus();
  };
  if (!no_default) {
    RETURN_IF_ERROR(add("/etc/criu/default.conf", false));
    if (const char* home = getenv("HOME")) RETURN_IF_ERROR(add(std::string(home) + "/.criu/default.conf", false));
  }
  if (const char* env = getenv("CRIU_CONFIG_FILE"); env && *env) RETURN_IF_ERROR(add(env, true));
  if (!cfg.empty()) RETURN_IF_ERROR(add(cfg, true));
  return words;
}

Status Apply(const OptDef& d, bool negated, const char* arg, Options* o) {
  const std::string name = std::string("--") + (negated ? "no-" : "") + d.name;
  long v = 0;
  switch (d.act) {
    case Act::kTree:
      if (!ParseInt(arg, 1, 0x7fffffff, &v)) return Error(std::string("bad PID '") + arg + "'");
      o->pid = static_cast<pid_t>(v);
      break;
    case Act::kImagesDir: o->images_dir = arg; break;
    case Act::kWorkDir: o->work_dir = arg; break;
    case Act::kLogFile: o->log_file = arg; break;
    case Act::kVerbosity: return ParseVerbosity(arg, &o->verbosity);
    // CRIU's -R and -s set one final state: the last one given wins.
    case Act::kLeaveRunning:
      o->leave_running = true;
      o->leave_stopped = false;
      break;
    case Act::kLeaveStopped:
      o->leave_running = true;
      o->leave_stopped = true;
      break;
    case Act::kDetached: o->restore_detached = !negated; break;
    case Act::kShellJob: o->shell_job = !negated; break;
    case Act::kFileLocks: o->file_locks = !negated; break;
    case Act::kLinkRemap: o->link_remap = !negated; break;
    case Act::kExtUnixSk:
      // CRIU's meaning: datagram sockets connected to a socket outside the
      // tree are dumped and connected again by name at restore; an argument
      // names the socket inodes allowed ("ino[,ino...]"), none allows all.
      o->ext_unix_sk = !negated;
      if (arg && *arg) {
        std::string list = arg;
        for (size_t pos = 0; pos <= list.size();) {
          size_t end = list.find(',', pos);
          if (end == std::string::npos) end = list.size();
          long ino = 0;
          const std::string one = list.substr(pos, end - pos);
          if (!ParseInt(one.c_str(), 1, 0x7fffffffffffffffL, &ino)) {
            return Error(std::string("bad --ext-unix-sk '") + arg + "'");
          }
          o->ext_unix_sk_ids.push_back(static_cast<uint64_t>(ino));
          pos = end + 1;
        }
      }
      break;
    case Act::kPidfile: o->pidfile = arg; break;
    case Act::kPrevImages: o->prev_images_dir = arg; break;
    case Act::kTrackMem: o->track_mem = !negated; break;
    case Act::kDedup: o->dedup = negated ? 0 : 1; break;
    case Act::kDisplayStats: o->display_stats = !negated; break;
    case Act::kGhostLimit:
      if (!ParseSize(arg, &o->ghost_limit)) return Error(std::string("bad --ghost-limit '") + arg + "'");
      break;
    case Act::kStatusFd:
      if (!ParseInt(arg, 0, 1 << 20, &v)) return Error(std::string("bad --status-fd '") + arg + "'");
      o->status_fd = static_cast<int>(v);
      break;
    case Act::kTimeout:
      if (!ParseInt(arg, 0, 1 << 30, &v)) return Error(std::string("bad --timeout '") + arg + "'");
      o->timeout = static_cast<int>(v);
      break;
    case Act::kFeature: o->features.push_back(arg); break;
    case Act::kClose:
      if (!ParseInt(arg, 0, 1 << 20, &v)) return Error(std::string("bad --close '") + arg + "'");
      close(static_cast<int>(v));  // as CRIU: a descriptor the caller wants gone
      break;
    case Act::kRoot:
      if (std::string(arg) != "/") return Error("--root " + std::string(arg) + ": restoring into another root is not supported yet");
      break;
    case Act::kPreDumpMode:
      if (std::string(arg) != "splice" && std::string(arg) != "read") {
        return Error(std::string("bad --pre-dump-mode '") + arg + "' (expected splice or read)");
      }
      // Both come to the same here: the tree runs on while its pages are
      // read (engine/incremental.h).
      o->no_effect.push_back(name + ": pre-dump pages are always read after the tree is released");
      break;
    case Act::kManageCgroups: {
      static const char* const kModes[] = {"none", "props", "soft", "full", "strict", "ignore"};
      bool known = arg == nullptr;
      for (const char* m : kModes) known = known || strcmp(arg, m) == 0;
      if (!known) return Error(std::string("bad --manage-cgroups mode '") + arg + "'");
      o->manage_cgroups = arg ? arg : "soft";
      break;
    }
    case Act::kJoinNs: o->join_ns.push_back(arg); break;
    case Act::kCgroupRoot: {
      // "[CONTROLLER:]/PATH": a path alone is the root of every hierarchy
      // not named by another --cgroup-root.
      const std::string a = arg;
      const size_t colon = a[0] == '/' ? std::string::npos : a.find(':');
      const std::string ctl = colon == std::string::npos ? "" : a.substr(0, colon);
      const std::string path = colon == std::string::npos ? a : a.substr(colon + 1);
      if (path.empty() || path[0] != '/' || (colon != std::string::npos && ctl.empty())) {
        return Error("bad --cgroup-root '" + a + "' (expected [CONTROLLER:]/PATH)");
      }
      o->cgroup_roots.emplace_back(ctl, path);
      break;
    }
    case Act::kTcpEstablished: o->tcp_established = !negated; break;
    case Act::kSkipInFlight: o->skip_in_flight = !negated; break;
    case Act::kTcpClose:
      o->tcp_close = !negated;
      break;
    case Act::kNetworkLock:
      // Both of CRIU's rule-based modes are nftables rules here (iptables
      // on current distributions is nftables underneath).
      if (strcmp(arg, "iptables") == 0 || strcmp(arg, "nftables") == 0) {
        o->network_lock = true;
      } else if (strcmp(arg, "skip") == 0) {
        o->network_lock = false;
      } else {
        return Error(std::string("bad --network-lock '") + arg + "' (expected iptables, nftables or skip)");
      }
      break;
    case Act::kVersion: return Error("version", 0);
    case Act::kHelp: return Error("help", 0);
    case Act::kConfigFile: break;  // read before parsing
    case Act::kNoEffect: o->no_effect.push_back(name + ": " + d.why); break;
    case Act::kRefused:
      if (negated) {  // turning off what criu-fast does not do
        o->no_effect.push_back(name);
        break;
      }
      return Error("option " + name + " is not supported by criu-fast: " + d.why);
    case Act::kJobs:
      if (!ParseInt(arg, 1, 1024, &v)) return Error(std::string("bad --jobs '") + arg + "'");
      o->jobs = static_cast<int>(v);
      break;
    case Act::kCompress: o->compress = arg; break;
    case Act::kDrain:
      o->drain = arg;
      if (o->drain != "read" && o->drain != "vmsplice") {
        return Error("bad --drain '" + o->drain + "' (expected read or vmsplice)");
      }
      break;
    case Act::kNoPagemapScan: o->force_pagemap_fallback = true; break;
    case Act::kLive: o->live = true; break;
    case Act::kIterative:
      v = 6;
      if (arg && *arg && !ParseInt(arg, 1, 100, &v)) return Error(std::string("bad --iterative '") + arg + "'");
      o->iterative = static_cast<int>(v);
      break;
    case Act::kStream: o->stream = true; break;
    case Act::kStreamTo:
      o->stream = true;
      o->stream_to = arg;
      break;
    case Act::kStreamFrom:
      o->stream = true;
      o->stream_from = arg;
      break;
    case Act::kAllowUntrusted: o->allow_untrusted_images = true; break;
  }
  return OkStatus();
}

Result<Command> ParseCommand(const std::string& cmd) {
  if (cmd == "dump") return Command::kDump;
  if (cmd == "pre-dump") return Command::kPreDump;
  if (cmd == "restore") return Command::kRestore;
  if (cmd == "check") return Command::kCheck;
  if (cmd == "show") return Command::kShow;
  if (cmd == "merge") return Command::kMerge;
  if (cmd == "help") return Error("help", 0);
  return Error("unknown command '" + cmd + "' (try criu-fast --help)");
}

}  // namespace

std::string Options::InWorkDir(const std::string& path) const {
  if (path.empty() || path[0] == '/') return path;
  return (work_dir.empty() ? images_dir : work_dir) + "/" + path;
}

const char* UsageText() {
  return "Usage:\n"
         "  criu-fast dump     -t PID [-D DIR] [options]   checkpoint a process tree\n"
         "  criu-fast dump     -t PID --stream [options]   ... as one stream on stdout (or --stream-to PATH)\n"
         "  criu-fast pre-dump -t PID [-D DIR] [options]   save memory, leave the tree running\n"
         "  criu-fast restore  [-D DIR] [-d] [options]     restore a checkpointed tree\n"
         "  criu-fast restore  --stream [-d] [options]     ... from a stream on stdin (or --stream-from PATH)\n"
         "  criu-fast check    [--feature NAME]            probe the kernel features used\n"
         "  criu-fast show     DIR|FILE|--stream           print images as JSON\n"
         "  criu-fast merge    -D DIR OUT                  an image and its parents as one new image in OUT\n"
         "\n"
         "Options (CRIU's, with the same meaning; the others CRIU accepts are taken\n"
         "when they cannot change the result, refused with the reason otherwise):\n"
         "  -t, --tree PID            root of the process tree to dump\n"
         "  -D, --images-dir DIR      directory of the image files (default: .)\n"
         "  -W, --work-dir DIR        where relative log and pid files go (default: -D)\n"
         "  -o, --log-file FILE       log to FILE (relative to the work directory, or with\n"
         "                            --stream to the current directory)\n"
         "  -v[N], --verbosity[=N]    log level 0..4 (default 2; each -v adds one)\n"
         "  -R, --leave-running       keep the tree running after dump\n"
         "  -s, --leave-stopped       leave the tree stopped (SIGSTOP) after dump or restore\n"
         "  -d, --restore-detached    return once the restored tree runs\n"
         "  -j, --shell-job           allow a tree attached to the shell's terminal\n"
         "      --pidfile FILE        write the restored root PID to FILE\n"
         "      --status-fd FD        restore: write one byte to FD once the tree runs\n"
         "      --ghost-limit SIZE    largest deleted-but-open file to save (default 1G)\n"
         "      --prev-images-dir DIR parent image (relative to -D): unchanged pages refer to it\n"
         "      --track-mem           leave write tracking armed for the next increment (with -R)\n"
         "      --[no-]dedup          dump: store pages equal to one stored already as references (default off;\n"
         "                            not where the tree is not frozen throughout)\n"
         "      --display-stats       print timings and page counts\n"
         "      --config FILE         read options from FILE (and no default config file)\n"
         "      --no-default-config   skip /etc/criu/default.conf and ~/.criu/default.conf\n"
         "  -V, --version             print the version\n"
         "\n"
         "criu-fast's own options:\n"
         "      --jobs N              worker threads (default: number of CPUs)\n"
         "      --compress CODEC      page chunk compression: zstd[:LEVEL] (default, level 1), lz4, none\n"
         "      --drain MODE          memory draining: read (process_vm_readv) or vmsplice\n"
         "      --no-pagemap-scan     read /proc/PID/pagemap instead of PAGEMAP_SCAN\n"
         "      --live                dump -R: frozen only to collect and write-protect memory;\n"
         "                            pages are saved while the tree runs (a page written first\n"
         "                            is copied out first: the image is the memory at the freeze)\n"
         "      --iterative[=N]       dump: pre-dump rounds into DIR/pre-1.. while the dirty set\n"
         "                            shrinks (at most N, default 6), then the final dump into DIR\n"
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
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return Error("help", 0);
  }
  ASSIGN_OR_RETURN(std::vector<std::string> config, ConfigWords(argc, argv));

  // getopt's tables: each option, and the --no- form of CRIU's booleans.
  std::vector<option> longs;
  std::string shorts = ":";
  for (int i = 0; i < kNumOptions; ++i) {
    const OptDef& d = kOptions[i];
    longs.push_back({d.name, d.has_arg, nullptr, kLongBase + i});
    if (d.boolean) {
      static std::vector<std::string> no_names(kNumOptions);
      no_names[i] = std::string("no-") + d.name;
      longs.push_back({no_names[i].c_str(), no_argument, nullptr, kNoFlag | (kLongBase + i)});
    }
    if (d.short_name) {
      shorts += d.short_name;
      if (d.has_arg == required_argument) shorts += ':';
      if (d.has_arg == optional_argument) shorts += "::";
    }
  }
  longs.push_back({nullptr, 0, nullptr, 0});

  // Config words first, then the command line. In a config file an option
  // with an optional argument ("verbosity 4") takes the word after it.
  std::vector<std::string> words = {argv[0]};
  for (size_t i = 0; i < config.size(); ++i) {
    std::string w = config[i];
    for (const OptDef& d : kOptions) {
      if (d.has_arg == optional_argument && w == std::string("--") + d.name && i + 1 < config.size() &&
          config[i + 1].rfind("-", 0) != 0) {
        w += "=" + config[++i];
        break;
      }
    }
    words.push_back(std::move(w));
  }
  for (int i = 1; i < argc; ++i) words.push_back(argv[i]);
  std::vector<char*> args;
  for (std::string& w : words) args.push_back(w.data());
  args.push_back(nullptr);
  const int n = static_cast<int>(words.size());

  optind = 0;  // a full reset of getopt's state
  opterr = 0;
  for (;;) {
    const int c = getopt_long(n, args.data(), shorts.c_str(), longs.data(), nullptr);
    if (c == -1) break;
    if (c == ':') return Error(std::string("option ") + args[optind - 1] + " needs an argument");
    if (c == '?') {
      if (optopt && optopt < 128) return Error(std::string("unknown option -") + static_cast<char>(optopt));
      return Error(std::string("unknown option ") + args[optind - 1]);
    }
    int index = -1;
    bool negated = false;
    if (c >= kLongBase) {
      negated = (c & kNoFlag) != 0;
      index = (c & ~kNoFlag) - kLongBase;
    } else {
      for (int i = 0; i < kNumOptions; ++i) {
        if (kOptions[i].short_name == c) index = i;
      }
    }
    if (index < 0 || index >= kNumOptions) return Error("unknown option");
    RETURN_IF_ERROR(Apply(kOptions[index], negated, optarg, &o));
  }
  std::vector<std::string> positional(args.begin() + optind, args.begin() + n);
  if (positional.empty()) return Error("no command given (try criu-fast --help)");
  ASSIGN_OR_RETURN(o.command, ParseCommand(positional[0]));
  o.args.assign(positional.begin() + 1, positional.end());

  const bool takes_args = o.command == Command::kShow || o.command == Command::kMerge;
  if (!takes_args && !o.args.empty()) return Error("unexpected argument '" + o.args[0] + "'");
  if (o.command == Command::kMerge && o.args.size() != 1) return Error("merge needs one output directory: merge -D DIR OUT");
  if ((o.command == Command::kDump || o.command == Command::kPreDump) && o.pid == 0) {
    return Error("dump needs -t PID");
  }
  if (!o.features.empty() && o.command != Command::kCheck) return Error("--feature is for check");
  for (const std::string& ns : o.join_ns) {
    if (o.command != Command::kRestore) return Error("option --join-ns is not supported at dump: a restore option");
    if (ns.rfind("net:", 0) != 0) {
      return Error("option --join-ns " + ns +
                   " is not supported by criu-fast: only a network namespace (net:PATH or net:PID)");
    }
  }
  if (o.join_ns.size() > 1) return Error("option --join-ns is not supported twice");
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
