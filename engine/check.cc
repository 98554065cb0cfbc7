// `criu-fast check`: probes, one by one, the kernel features criu-fast uses,
// on real objects (a child process, a pipe, a ring), and says what a missing
// one costs. Exit 0 when dump and restore can work.
#include <fcntl.h>
#include <liburing.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/io.h"
#include "engine/commands.h"
#include "pagemap/scan.h"

namespace cf::engine {
namespace {

#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

struct Probe {
  const char* name;
  bool critical;        // dump or restore cannot work without it
  const char* missing;  // what its absence costs
  std::function<bool()> run;
};

// A child that sleeps until killed; killed and reaped on destruction.
class Sleeper {
 public:
  Sleeper() {
    pid_ = fork();
    if (pid_ == 0) {
      for (;;) pause();
    }
  }
  ~Sleeper() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

bool ProbePtrace() {
  Sleeper s;
  if (s.pid() < 0 || ptrace(PTRACE_SEIZE, s.pid(), nullptr, nullptr) != 0) return false;
  bool ok = ptrace(PTRACE_INTERRUPT, s.pid(), nullptr, nullptr) == 0;
  int status = 0;
  ok = ok && waitpid(s.pid(), &status, __WALL) == s.pid() && WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP;
  ptrace(PTRACE_DETACH, s.pid(), nullptr, nullptr);
  return ok;
}

bool ProbeVmReadv() {
  static volatile uint64_t value = 0x1234567887654321ull;
  Sleeper s;
  uint64_t got = 0;
  iovec local{&got, sizeof(got)};
  iovec remote{const_cast<uint64_t*>(&value), sizeof(value)};
  return s.pid() > 0 && process_vm_readv(s.pid(), &local, 1, &remote, 1, 0) == sizeof(got) && got == value;
}

bool ProbeUffdWpAsync() {
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd < 0) return false;
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC;
  const bool ok = ioctl(fd, UFFDIO_API, &api) == 0 && (api.features & UFFD_FEATURE_WP_ASYNC);
  close(fd);
  return ok;
}

bool ProbeClone3SetTid() {
  struct {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
  } args{};
  pid_t want = 1;  // PID 1 of a new PID namespace
  args.flags = CLONE_NEWPID;
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uint64_t>(&want);
  args.set_tid_size = 1;
  long r = syscall(SYS_clone3, &args, sizeof(args));
  if (r == 0) _exit(getpid() == 1 ? 0 : 1);
  if (r < 0) return false;
  int status = 0;
  waitpid(static_cast<pid_t>(r), &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool ProbeMmMap() {
  unsigned int size = 0;
  return prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) == 0 && size == 104;
}

bool ProbeIoUring() {
  io_uring ring;
  if (io_uring_queue_init(4, &ring, 0) != 0) return false;
  io_uring_queue_exit(&ring);
  return true;
}

bool ProbePidfd() {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  if (pidfd < 0) return false;
  int fd = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, pidfd, 0));
  close(pidfd);
  if (fd < 0) return false;
  close(fd);
  return true;
}

bool ProbeMemfd() {
  int fd = static_cast<int>(syscall(SYS_memfd_create, "cf-check", MFD_CLOEXEC));
  if (fd < 0) return false;
  close(fd);
  return true;
}

bool ProbeMapFiles() {
  auto maps = ReadFile("/proc/self/maps");
  if (!maps.ok()) return false;
  unsigned long start = 0, end = 0;
  // The first mapping is our executable: a file mapping.
  if (sscanf(maps->c_str(), "%lx-%lx", &start, &end) != 2) return false;
  char path[128];
  snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", start, end);
  return ReadLink(path).ok();
}

bool ProbeVmsplice() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return false;
  static char page[4096] __attribute__((aligned(4096))) = {1};
  iovec iov{page, sizeof(page)};
  const bool ok = vmsplice(p[1], &iov, 1, 0) == sizeof(page);
  close(p[0]);
  close(p[1]);
  return ok;
}

}  // namespace

int RunCheck(const Options&) {
  const std::vector<Probe> probes = {
      {"ptrace seize/interrupt", true, "cannot freeze a process: no dump", ProbePtrace},
      {"process_vm_readv", false, "memory is read through /proc/PID/mem, slower", ProbeVmReadv},
      {"PAGEMAP_SCAN", false, "pages are found by reading /proc/PID/pagemap, slower",
       [] { return pagemap::PagemapScanSupported(); }},
      {"userfaultfd WP_ASYNC", false, "incremental dumps fall back to content hashes", ProbeUffdWpAsync},
      {"clone3 set_tid", true, "cannot give a restored process its PID: no restore", ProbeClone3SetTid},
      {"PR_SET_MM_MAP", true, "cannot set mm fields (brk, args, auxv, exe): no restore", ProbeMmMap},
      {"io_uring", false, "image writes use plain write()", ProbeIoUring},
      {"pidfd_open/pidfd_getfd", false, "descriptors of a target are copied by other means", ProbePidfd},
      {"memfd_create", false, "memfd-backed memory cannot be restored", ProbeMemfd},
      {"/proc/PID/map_files", false, "mappings of deleted files cannot be dumped", ProbeMapFiles},
      {"vmsplice", false, "the vmsplice drain is unavailable: process_vm_readv only", ProbeVmsplice},
  };
  utsname u;
  uname(&u);
  printf("kernel %s %s\n", u.release, u.machine);
  std::vector<std::string> missing_critical;
  for (const Probe& p : probes) {
    const bool ok = p.run();
    if (ok) {
      printf("%-26s OK\n", p.name);
    } else {
      printf("%-26s MISSING (%s)\n", p.name, p.missing);
      if (p.critical) missing_critical.push_back(p.name);
    }
  }
  if (!missing_critical.empty()) {
    std::string list;
    for (const auto& m : missing_critical) list += (list.empty() ? "" : ", ") + m;
    printf("dump and restore cannot work here: missing %s\n", list.c_str());
    return 1;
  }
  printf("dump and restore can work here\n");
  return 0;
}

}  // namespace cf::engine
