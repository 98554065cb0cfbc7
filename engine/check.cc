// `criu-fast check`: probes, one by one, the kernel features criu-fast uses,
// on real objects (see check_probes.h), and prints one line per feature:
//
//   NAME ........................ OK
//   NAME ........................ MISSING (what its absence costs): why the probe failed
//
// A feature is needed by dump, by restore, or is optional (a slower or
// smaller fallback exists). Some needed features can stand in for each other
// (process_vm_readv and /proc/PID/mem both read a target's memory). Exit 0
// when dump and restore can work, else 1 with a last line naming what is
// missing.
#include <sys/utsname.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/check_probes.h"
#include "engine/commands.h"
#include "kinds/kind.h"
#include "kinds/shmem.h"

namespace cf::engine {
namespace {

enum class Need { kOptional, kDump, kRestore };

struct Feature {
  const char* name;
  Need need;
  const char* alternative;  // a feature that can stand in for this one, or nullptr
  const char* cost;         // what a missing one costs
  ProbeResult (*probe)();
};

const Feature kFeatures[] = {
    {"ptrace seize/interrupt", Need::kDump, nullptr, "cannot freeze a process => dump impossible",
     ProbePtraceSeize},
    {"process_vm_readv", Need::kDump, "/proc/PID/mem", "memory is read through /proc/PID/mem, slower",
     ProbeProcessVmReadv},
    {"/proc/PID/mem", Need::kDump, "process_vm_readv", "no fallback when process_vm_readv fails", ProbeProcMem},
    {"PAGEMAP_SCAN", Need::kOptional, nullptr, "fallback: slower /proc/PID/pagemap reads", ProbePagemapScan},
    {"userfaultfd WP_ASYNC", Need::kOptional, nullptr,
     "not used yet (incremental dumps are not implemented); they will need it to track writes", ProbeUffdWpAsync},
    {"clone3 set_tid", Need::kRestore, nullptr, "restore cannot keep PIDs => restore impossible",
     ProbeClone3SetTid},
    {"PR_SET_MM_MAP", Need::kRestore, nullptr,
     "cannot set brk, args, env, auxv of a restored process => restore impossible", ProbePrSetMmMap},
    {"PR_TIMER_CREATE_RESTORE_IDS", Need::kOptional, nullptr,
     "POSIX timers cannot get their ids back: processes with timers are refused at dump", ProbeTimerRestoreIds},
    {"io_uring", Need::kOptional, nullptr, "not used yet: image files are written with write()", ProbeIoUring},
    {"pidfd_open/pidfd_getfd", Need::kOptional, nullptr,
     "pipes, sockets, eventfds, timerfds, epoll instances cannot be dumped; --drain vmsplice cannot take its pipes",
     ProbePidfd},
    {"memfd_create", Need::kOptional, nullptr, "memfd-backed memory and descriptors cannot be restored",
     kinds::ProbeMemfd},
    {"/proc/PID/map_files", Need::kOptional, nullptr,
     "mappings of deleted or unreachable files cannot be dumped", ProbeMapFiles},
    {"vmsplice", Need::kOptional, nullptr, "no zero-copy drain: process_vm_readv only", ProbeVmsplice},
};

// The table above, then what each descriptor kind probes for (optional: a
// missing one refuses that kind only).
std::vector<Feature> AllFeatures() {
  std::vector<Feature> all(std::begin(kFeatures), std::end(kFeatures));
  for (const kinds::FdKind* k : kinds::AllKinds()) {
    for (const kinds::Probe& p : k->Probes()) all.push_back({p.name, Need::kOptional, nullptr, p.cost, p.run});
  }
  return all;
}

constexpr size_t kNameColumn = 30;

std::string Dotted(const char* name) {
  std::string s = std::string(name) + " ";
  while (s.size() < kNameColumn) s += '.';
  return s;
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

int RunCheck(const Options&) {
  utsname u{};
  uname(&u);
  printf("kernel %s %s\n", u.release, u.machine);

  const std::vector<Feature> features = AllFeatures();
  const size_t n = features.size();
  std::vector<bool> ok(n);
  for (size_t i = 0; i < n; ++i) {
    fflush(stdout);  // children fork with an empty stdio buffer; a hung probe shows as the last line
    const Feature& f = features[i];
    const ProbeResult r = f.probe();
    ok[i] = r.ok;
    if (r.ok) {
      printf("%s OK\n", Dotted(f.name).c_str());
    } else {
      printf("%s MISSING (%s): %s\n", Dotted(f.name).c_str(), f.cost, r.why.c_str());
    }
  }

  auto is_ok = [&](const char* name) {
    for (size_t i = 0; i < n; ++i) {
      if (std::string(features[i].name) == name) return static_cast<bool>(ok[i]);
    }
    return false;
  };
  std::vector<std::string> dump_missing, restore_missing;
  for (size_t i = 0; i < n; ++i) {
    const Feature& f = features[i];
    if (ok[i] || f.need == Need::kOptional) continue;
    if (f.alternative && is_ok(f.alternative)) continue;
    std::string what = f.name;
    // Report a pair that can stand in for each other once.
    if (f.alternative) {
      if (std::string(f.name) > f.alternative) continue;
      what += std::string(" and ") + f.alternative;
    }
    (f.need == Need::kDump ? dump_missing : restore_missing).push_back(what);
  }
  if (dump_missing.empty() && restore_missing.empty()) {
    printf("dump and restore can work here\n");
    return 0;
  }
  std::vector<std::string> parts;
  if (!dump_missing.empty()) parts.push_back("dump impossible, missing " + Join(dump_missing, ", "));
  if (!restore_missing.empty()) parts.push_back("restore impossible, missing " + Join(restore_missing, ", "));
  printf("criu-fast cannot work here: %s\n", Join(parts, "; ").c_str());
  fflush(stdout);
  return 1;
}

}  // namespace cf::engine
