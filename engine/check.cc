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
#include "kinds/aio.h"
#include "kinds/cgroup.h"
#include "kinds/hugetlb.h"
#include "kinds/kind.h"
#include "kinds/pidns.h"
#include "kinds/seccomp.h"
#include "kinds/shmem.h"
#include "kinds/timens.h"

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
     "no write tracking: incremental dumps (pre-dump, --prev-images-dir) read every page again and compare "
     "contents",
     ProbeUffdWpAsync},
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
     "MAP_SHARED anonymous memory and memfd mappings cannot be dumped (their object is opened there)",
     ProbeMapFiles},
    {"hugetlb memory", Need::kOptional, nullptr, "MAP_HUGETLB memory and hugetlb memfds cannot be restored",
     kinds::ProbeHugetlb},
    {"AIO ring remap", Need::kOptional, nullptr, "AIO rings cannot be restored at their address", kinds::ProbeAioRemap},
    {"/proc/self/loginuid", Need::kOptional, nullptr, "processes' audit login uids are not saved", ProbeLoginuid},
    {"vmsplice", Need::kOptional, nullptr, "no zero-copy drain: process_vm_readv only", ProbeVmsplice},
    {"PTRACE_O_SUSPEND_SECCOMP", Need::kOptional, nullptr, "processes under seccomp cannot be dumped or restored",
     kinds::ProbeSeccompSuspend},
    {"PTRACE_SECCOMP_GET_FILTER", Need::kOptional, nullptr, "processes with seccomp filters cannot be dumped",
     kinds::ProbeSeccompFilters},
    {"guard regions", Need::kOptional, nullptr,
     "no MADV_GUARD_INSTALL here (Linux 6.13), or the page scan cannot see guard regions: they are lost",
     ProbeGuardRegions},
    {"time namespaces", Need::kOptional, nullptr, "none: processes in a time namespace of their own are refused",
     kinds::ProbeTimeNamespaces},
    {"PID namespaces shown", Need::kOptional, nullptr,
     "a tree in a PID namespace below criu-fast's cannot be told apart: it would come back with other pids",
     kinds::ProbePidNamespaces},
    {"cgroup namespaces", Need::kOptional, nullptr, "none: a process cannot be in a cgroup namespace of its own",
     kinds::ProbeCgroupNamespaces},
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

// CRIU's `check --feature NAME` names (CRIU 4.2), answered for criu-fast:
// what it can do here, by the same probe as the table above where one
// applies. A name with no probe is a capability criu-fast lacks.
struct CriuFeature {
  const char* name;
  const char* probe;  // a row of AllFeatures(), or nullptr: not supported
  const char* why;    // when not supported
};
const CriuFeature kCriuFeatures[] = {
    {"mnt_id", "ptrace seize/interrupt", nullptr},
    {"mem_dirty_track", "userfaultfd WP_ASYNC", nullptr},  // tracked by uffd-wp, not soft-dirty
    {"aio_remap", "AIO ring remap", nullptr},
    {"timerfd", "timerfd TFD_IOC_SET_TICKS", nullptr},
    {"tun", nullptr, "tun devices are not supported"},
    {"tun_ns", nullptr, "tun devices are not supported"},
    {"userns", nullptr, "user namespaces are not supported"},
    {"fdinfo_lock", "ptrace seize/interrupt", nullptr},  // fdinfo shows locks since Linux 4.1
    {"seccomp_suspend", "PTRACE_O_SUSPEND_SECCOMP", nullptr},
    {"seccomp_filters", "PTRACE_SECCOMP_GET_FILTER", nullptr},
    {"loginuid", "/proc/self/loginuid", nullptr},
    {"cgroupns", "cgroup namespaces", nullptr},
    {"autofs", nullptr, "autofs is not supported"},
    {"tcp_half_closed", "TCP_REPAIR", nullptr},
    {"compat_cr", nullptr, "32-bit tasks are not supported"},
    {"uffd", nullptr, "lazy restore is not supported"},
    {"uffd-noncoop", nullptr, "lazy restore is not supported"},
    {"can_map_vdso", "PR_SET_MM_MAP", nullptr},
    {"sk_ns", nullptr, "network namespaces are not supported"},
    {"sk_unix_file", nullptr, "bound unix sockets are not supported yet"},
    {"net_diag_raw", "raw sockets", nullptr},
    {"nsid", nullptr, "network namespaces are not supported"},
    {"link_nsid", nullptr, "network namespaces are not supported"},
    {"kcmp_epoll", "kcmp KCMP_EPOLL_TFD", nullptr},
    // The kernel's time namespaces: a process in one is refused at dump.
    {"timens", "time namespaces", nullptr},
    {"external_net_ns", nullptr, "network namespaces are not supported"},
    {"clone3_set_tid", "clone3 set_tid", nullptr},
    {"newifindex", nullptr, "network devices are not supported"},
    {"nftables", "nftables network lock", nullptr},
    // CRIU's iptables network lock; --network-lock iptables is nftables here.
    {"has_ipt_legacy", "nftables network lock", nullptr},
    {"pidfd_store", nullptr, "pidfd store (RPC) is not supported"},
    // CRIU's probe: the kernel shows a task's pids in every namespace
    // (NSpid). criu-fast reads them to refuse a tree in a PID namespace
    // below its own (it saves no PID namespaces), so that every tree it
    // dumps keeps its pids, thread ids of timers included.
    {"ns_pid", "PID namespaces shown", nullptr},
    {"apparmor_stacking", nullptr, "LSM profiles are not restored"},
    {"network_lock_nftables", "nftables network lock", nullptr},
    {"sockopt_buf_lock", "SO_BUF_LOCK", nullptr},
    {"memfd_hugetlb", "hugetlb memory", nullptr},
    {"move_mount_set_group", nullptr, "mount namespaces are not supported"},
    {"openat2", nullptr, "mount namespaces are not supported"},
    {"get_rseq_conf", "ptrace seize/interrupt", nullptr},
    {"ipv6_freebind", "IPV6_FREEBIND", nullptr},
    {"pagemap_scan", "PAGEMAP_SCAN", nullptr},
    {"timer_cr_ids", "PR_TIMER_CREATE_RESTORE_IDS", nullptr},
    {"overlayfs_maps", nullptr, "mount namespaces are not supported"},
    {"breakpoints", nullptr, "hardware breakpoints are not restored yet"},
    {"pagemap_scan_guard_pages", "guard regions", nullptr},
};

// `check --feature NAME...`: exit 0 when criu-fast supports every one here,
// 1 otherwise or for a name CRIU does not know ("list" lists them).
int CheckFeatures(const std::vector<std::string>& names) {
  int rc = 0;
  const std::vector<Feature> all = AllFeatures();
  for (const std::string& name : names) {
    if (name == "list") {
      for (const CriuFeature& f : kCriuFeatures) printf("%s\n", f.name);
      continue;
    }
    const CriuFeature* found = nullptr;
    for (const CriuFeature& f : kCriuFeatures) {
      if (name == f.name) found = &f;
    }
    if (found == nullptr) {
      fprintf(stderr, "Error: unknown feature %s (check --feature list names them)\n", name.c_str());
      return 1;
    }
    if (found->probe == nullptr) {
      printf("%s is not supported by criu-fast: %s\n", name.c_str(), found->why);
      rc = 1;
      continue;
    }
    for (const Feature& f : all) {
      if (std::string(f.name) != found->probe) continue;
      fflush(stdout);
      const ProbeResult r = f.probe();
      if (r.ok) {
        printf("%s is supported\n", name.c_str());
      } else {
        printf("%s is not supported: %s: %s\n", name.c_str(), f.name, r.why.c_str());
        rc = 1;
      }
    }
  }
  return rc;
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

int RunCheck(const Options& opts) {
  if (!opts.features.empty()) return CheckFeatures(opts.features);
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
  // Which write tracking incremental dumps use (engine/incremental.h).
  const bool uffd = is_ok("userfaultfd WP_ASYNC") && is_ok("PAGEMAP_SCAN");
  printf("incremental dumps track writes with %s\n",
         uffd ? "userfaultfd write-protect (async) and PAGEMAP_SCAN" : "no tracking: content hashes");
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
