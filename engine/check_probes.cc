// Kernel feature probes for `criu-fast check` (see check_probes.h).
//
// Most probes work on a ProbeChild: a fork of criu-fast that writes a marker
// into a page of its own (g_probe_page, which the parent never touches), says
// it is ready on a pipe and sleeps until killed. Reading the marker back
// proves that we read the child's memory and not our own copy; the written
// page is what PAGEMAP_SCAN must report as present.
#include "engine/check_probes.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <elf.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/io.h"
#include "pagemap/scan.h"
#include "pagemap/uffd_track.h"

namespace cf::engine {
namespace {

// PAGEMAP_SCAN (Linux 6.7 uapi, linux/fs.h); Debian 12's headers predate it.
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct PageRegion {
  uint64_t start, end, categories;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr uint64_t kPageIsPresent = 1u << 3;

// clone3's argument (CLONE_ARGS_SIZE_VER2).
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
static_assert(sizeof(CloneArgs) == 88);
static_assert(sizeof(prctl_mm_map) == 104);

constexpr size_t kPage = 4096;
constexpr uint64_t kChildMarker = 0x6b6365686366632eull;
alignas(kPage) volatile uint64_t g_probe_page[kPage / sizeof(uint64_t)];

ProbeResult Ok() { return {true, ""}; }
ProbeResult Fail(std::string why) { return {false, std::move(why)}; }
ProbeResult FailErrno(const std::string& what, int err = errno) { return Fail(what + ": " + strerror(err)); }

uint64_t ProbeAddr() { return reinterpret_cast<uintptr_t>(&g_probe_page[0]); }

pid_t WaitChild(pid_t pid, int* status) {
  pid_t r;
  do r = waitpid(pid, status, __WALL);
  while (r < 0 && errno == EINTR);
  return r;
}

// A child that sleeps until killed; killed and reaped on destruction.
class ProbeChild {
 public:
  ProbeChild() {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      why_ = std::string("pipe: ") + strerror(errno);
      return;
    }
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls from here on.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      g_probe_page[0] = kChildMarker;
      const char c = 1;
      if (write(p[1], &c, 1) != 1) _exit(1);
      for (;;) pause();
    }
    const int err = errno;
    close(p[1]);
    child_fd_ = p[1];  // still open in the child
    if (pid_ < 0) {
      close(p[0]);
      why_ = std::string("fork: ") + strerror(err);
      return;
    }
    char c = 0;
    ssize_t n;
    do n = read(p[0], &c, 1);
    while (n < 0 && errno == EINTR);
    close(p[0]);
    if (n != 1) why_ = "probe child died before it was ready";
  }
  ~ProbeChild() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status;
      WaitChild(pid_, &status);
    }
  }
  ProbeChild(const ProbeChild&) = delete;
  ProbeChild& operator=(const ProbeChild&) = delete;

  bool ok() const { return why_.empty(); }
  const std::string& why() const { return why_; }
  pid_t pid() const { return pid_; }
  int child_fd() const { return child_fd_; }  // a pipe's write end, open in the child
  std::string proc(const char* what) const { return "/proc/" + std::to_string(pid_) + "/" + what; }

 private:
  pid_t pid_ = -1;
  int child_fd_ = -1;
  std::string why_;
};

// Runs clone3 with set_tid = {tid}; the child exits 0 when it sees the PID it
// asked for. Returns 0, clone3's errno, or -1 when the child got another PID.
int CloneWithTid(uint64_t flags, pid_t tid) {
  CloneArgs args{};
  args.flags = flags;
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uintptr_t>(&tid);
  args.set_tid_size = 1;
  const long r = syscall(SYS_clone3, &args, sizeof(args));
  if (r == 0) _exit(syscall(SYS_getpid) == tid ? 0 : 1);
  if (r < 0) return errno;
  int status = 0;
  if (WaitChild(static_cast<pid_t>(r), &status) < 0) return errno;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

long ReadLong(const char* path, long dflt) {
  auto s = ReadFile(path);
  return s.ok() ? strtol(s->c_str(), nullptr, 10) : dflt;
}

// The mm fields of /proc/self/stat that PR_SET_MM_MAP takes (brk aside).
bool ReadOwnMm(prctl_mm_map* m) {
  auto stat = ReadFile("/proc/self/stat");
  if (!stat.ok()) return false;
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream in(stat->substr(paren + 2));
  std::vector<std::string> f(3);  // f[N] is field N (1-based), from field 3 on
  for (std::string tok; in >> tok;) f.push_back(tok);
  if (f.size() <= 51) return false;
  auto u = [&](int i) { return strtoull(f[i].c_str(), nullptr, 10); };
  m->start_code = u(26);
  m->end_code = u(27);
  m->start_stack = u(28);
  m->start_data = u(45);
  m->end_data = u(46);
  m->start_brk = u(47);
  m->arg_start = u(48);
  m->arg_end = u(49);
  m->env_start = u(50);
  m->env_end = u(51);
  return m->start_code != 0 && m->end_code != 0;
}

}  // namespace

ProbeResult ProbePtraceSeize() {
  ProbeChild c;
  if (!c.ok()) return Fail(c.why());
  if (ptrace(PTRACE_SEIZE, c.pid(), nullptr, nullptr) != 0) return FailErrno("PTRACE_SEIZE");
  if (ptrace(PTRACE_INTERRUPT, c.pid(), nullptr, nullptr) != 0) return FailErrno("PTRACE_INTERRUPT");
  int status = 0;
  if (WaitChild(c.pid(), &status) != c.pid()) return FailErrno("waitpid");
  if (!WIFSTOPPED(status) || (status >> 16) != PTRACE_EVENT_STOP) {
    return Fail("no PTRACE_EVENT_STOP after PTRACE_INTERRUPT (status 0x" + std::to_string(status) + ")");
  }
  user_regs_struct regs{};
  iovec iov{&regs, sizeof(regs)};
  if (ptrace(PTRACE_GETREGSET, c.pid(), NT_PRSTATUS, &iov) != 0) return FailErrno("PTRACE_GETREGSET");
  ptrace(PTRACE_DETACH, c.pid(), nullptr, nullptr);
  return Ok();
}

ProbeResult ProbeProcessVmReadv() {
  ProbeChild c;
  if (!c.ok()) return Fail(c.why());
  uint64_t got = 0;
  iovec local{&got, sizeof(got)};
  iovec remote{reinterpret_cast<void*>(ProbeAddr()), sizeof(got)};
  if (process_vm_readv(c.pid(), &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof(got))) return FailErrno("process_vm_readv");
  if (got != kChildMarker) return Fail("process_vm_readv returned wrong data");
  return Ok();
}

ProbeResult ProbeProcMem() {
  ProbeChild c;
  if (!c.ok()) return Fail(c.why());
  UniqueFd fd(open(c.proc("mem").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return FailErrno("open " + c.proc("mem"));
  uint64_t got = 0;
  if (pread(fd.get(), &got, sizeof(got), static_cast<off_t>(ProbeAddr())) != static_cast<ssize_t>(sizeof(got))) {
    return FailErrno("pread " + c.proc("mem"));
  }
  if (got != kChildMarker) return Fail("/proc/PID/mem returned wrong data");
  return Ok();
}

ProbeResult ProbePagemapScan() {
  ProbeChild c;
  if (!c.ok()) return Fail(c.why());
  UniqueFd fd(open(c.proc("pagemap").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return FailErrno("open " + c.proc("pagemap"));
  PageRegion region{};
  PmScanArg arg{};
  arg.size = sizeof(arg);
  arg.start = ProbeAddr();
  arg.end = ProbeAddr() + kPage;
  arg.vec = reinterpret_cast<uintptr_t>(&region);
  arg.vec_len = 1;
  arg.category_anyof_mask = kPageIsPresent;
  arg.return_mask = kPageIsPresent;
  const int n = ioctl(fd.get(), kPagemapScan, &arg);
  if (n < 0) return FailErrno("PAGEMAP_SCAN ioctl");
  if (n != 1 || region.start != ProbeAddr() || !(region.categories & kPageIsPresent)) {
    return Fail("PAGEMAP_SCAN did not report the child's written page");
  }
  return Ok();
}

ProbeResult ProbeUffdWpAsync() {
  int fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (fd < 0 && errno == EPERM) {
    fd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
  }
  if (fd < 0) return FailErrno("userfaultfd");
  UniqueFd uffd(fd);
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC;
  if (ioctl(uffd.get(), UFFDIO_API, &api) != 0) return FailErrno("UFFDIO_API with WP_ASYNC");
  if (!(api.features & UFFD_FEATURE_WP_ASYNC)) return Fail("UFFDIO_API does not offer WP_ASYNC");
  return Ok();
}

ProbeResult ProbeClone3SetTid() {
  // What restore does: a chosen free PID in our own namespace. Another
  // process may take the PID first (EEXIST): then try another one.
  const long pid_max = ReadLong("/proc/sys/kernel/pid_max", 32768);
  const long last = ReadLong("/proc/sys/kernel/ns_last_pid", 1000);
  for (int i = 0; i < 16; ++i) {
    long cand = last + 1000 + i * 7919L;
    if (pid_max > 400) cand = 300 + cand % (pid_max - 300);
    if (access(("/proc/" + std::to_string(cand)).c_str(), F_OK) == 0) continue;
    const int r = CloneWithTid(0, static_cast<pid_t>(cand));
    if (r == EEXIST) continue;
    if (r == 0) return Ok();
    if (r < 0) return Fail("clone3 child did not get the PID it asked for");
    return FailErrno("clone3 with set_tid", r);
  }
  // No free PID found: PID 1 of a new PID namespace is always free.
  const int r = CloneWithTid(CLONE_NEWPID, 1);
  if (r == 0) return Ok();
  if (r < 0) return Fail("clone3 child did not get the PID it asked for");
  return FailErrno("clone3 with set_tid (new PID namespace)", r);
}

ProbeResult ProbePrSetMmMap() {
  unsigned int size = 0;
  if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) != 0) return FailErrno("prctl PR_SET_MM_MAP_SIZE");
  if (size != sizeof(prctl_mm_map)) {
    return Fail("PR_SET_MM_MAP_SIZE is " + std::to_string(size) + ", expected " +
                std::to_string(sizeof(prctl_mm_map)));
  }
  // Set a child's mm fields to the values it already has (no exe, no auxv).
  prctl_mm_map map{};
  if (!ReadOwnMm(&map)) return Fail("cannot read mm fields from /proc/self/stat");
  map.exe_fd = static_cast<uint32_t>(-1);
  const pid_t pid = fork();
  if (pid == 0) {
    map.brk = static_cast<uint64_t>(syscall(SYS_brk, 0));
    const int r = prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof(map), 0);
    _exit(r == 0 ? 0 : (errno > 0 && errno < 256 ? errno : 255));
  }
  if (pid < 0) return FailErrno("fork");
  int status = 0;
  if (WaitChild(pid, &status) != pid) return FailErrno("waitpid");
  if (!WIFEXITED(status)) return Fail("PR_SET_MM_MAP probe child died");
  if (WEXITSTATUS(status) != 0) return FailErrno("prctl PR_SET_MM_MAP", WEXITSTATUS(status));
  return Ok();
}

ProbeResult ProbeTimerRestoreIds() {
  // What the restorer does: in a child (timers die with it), switch
  // PR_TIMER_CREATE_RESTORE_IDS on and ask timer_create for a chosen id.
  constexpr int kPrTimerCreateRestoreIds = 77, kOn = 1, kOff = 0;
  constexpr int kWantId = 4242, kWrongId = 254;
  const pid_t pid = fork();
  if (pid == 0) {
    if (prctl(kPrTimerCreateRestoreIds, kOn, 0, 0, 0) != 0) _exit(errno > 0 && errno < 250 ? errno : 255);
    sigevent ev{};
    ev.sigev_notify = SIGEV_NONE;
    int id = kWantId;
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id) != 0) _exit(errno > 0 && errno < 250 ? errno : 255);
    itimerspec its{};
    if (id != kWantId || syscall(SYS_timer_gettime, kWantId, &its) != 0) _exit(kWrongId);
    prctl(kPrTimerCreateRestoreIds, kOff, 0, 0, 0);
    _exit(0);
  }
  if (pid < 0) return FailErrno("fork");
  int status = 0;
  if (WaitChild(pid, &status) != pid) return FailErrno("waitpid");
  if (!WIFEXITED(status)) return Fail("PR_TIMER_CREATE_RESTORE_IDS probe child died");
  if (WEXITSTATUS(status) == kWrongId) return Fail("timer_create did not use the id asked for");
  if (WEXITSTATUS(status) != 0) {
    return FailErrno("prctl PR_TIMER_CREATE_RESTORE_IDS + timer_create", WEXITSTATUS(status));
  }
  return Ok();
}

ProbeResult ProbeIoUring() {
  io_uring ring;
  const int r = io_uring_queue_init(4, &ring, 0);
  if (r < 0) return FailErrno("io_uring_queue_init", -r);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    io_uring_queue_exit(&ring);
    return FailErrno("pipe");
  }
  UniqueFd rd(p[0]), wr(p[1]);
  static const char kMsg[8] = "cf-ring";
  ProbeResult res = Ok();
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_write(sqe, wr.get(), kMsg, sizeof(kMsg), 0);
  io_uring_cqe* cqe = nullptr;
  int n = io_uring_submit_and_wait(&ring, 1);
  if (n >= 0) n = io_uring_wait_cqe(&ring, &cqe);
  if (n < 0) {
    res = FailErrno("io_uring submit", -n);
  } else {
    if (cqe->res != static_cast<int>(sizeof(kMsg))) {
      res = cqe->res < 0 ? FailErrno("io_uring WRITE", -cqe->res) : Fail("io_uring WRITE was short");
    }
    io_uring_cqe_seen(&ring, cqe);
  }
  io_uring_queue_exit(&ring);
  char back[sizeof(kMsg)] = {};
  if (res.ok && (read(rd.get(), back, sizeof(back)) != static_cast<ssize_t>(sizeof(back)) || memcmp(back, kMsg, sizeof(kMsg)) != 0)) {
    res = Fail("io_uring WRITE did not reach the pipe");
  }
  return res;
}

ProbeResult ProbePidfd() {
  ProbeChild c;
  if (!c.ok()) return Fail(c.why());
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, c.pid(), 0));
  if (pidfd < 0) return FailErrno("pidfd_open");
  UniqueFd pfd(pidfd);
  UniqueFd fd(static_cast<int>(syscall(SYS_pidfd_getfd, pfd.get(), c.child_fd(), 0)));
  if (!fd.valid()) return FailErrno("pidfd_getfd");
  struct stat sb;
  if (fstat(fd.get(), &sb) != 0 || !S_ISFIFO(sb.st_mode)) return Fail("pidfd_getfd returned the wrong file");
  return Ok();
}

ProbeResult ProbeLoginuid() {
  auto v = ReadFile("/proc/self/loginuid");
  if (!v.ok()) return Fail("no /proc/self/loginuid (a kernel without audit)");
  return Ok();
}

ProbeResult ProbeMapFiles() {
  ProbeChild c;
  if (!c.ok()) return Fail(c.why());
  auto maps = ReadFile(c.proc("maps"));
  if (!maps.ok()) return Fail(maps.status().ToString());
  // The first file mapping (our own executable).
  std::istringstream in(*maps);
  for (std::string line; std::getline(in, line);) {
    const size_t slash = line.find(" /");
    if (slash == std::string::npos) continue;
    const std::string range = line.substr(0, line.find(' '));
    const std::string path = c.proc("map_files/") + range;
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return FailErrno("open " + path);
    return Ok();
  }
  return Fail("no file mapping in " + c.proc("maps"));
}

ProbeResult ProbeGuardRegions() {
  constexpr int kMadvGuardInstall = 102;  // Linux 6.13
  void* p = mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return FailErrno("mmap");
  const uint64_t base = reinterpret_cast<uint64_t>(p);
  ProbeResult r = Ok();
  if (madvise(static_cast<char*>(p) + kPage, kPage, kMadvGuardInstall) != 0) {
    r = FailErrno("madvise(MADV_GUARD_INSTALL)");
  } else if (auto scanner = pagemap::PageScanner::Open(getpid()); !scanner.ok()) {
    r = Fail(scanner.status().ToString());
  } else if (auto guards = scanner->ScanGuards(base, base + 3 * kPage); !guards.ok()) {
    r = Fail(guards.status().ToString());
  } else if (guards->size() != 1 || guards->begin()->start != base + kPage || guards->begin()->pages() != 1) {
    r = Fail("the guard page was not found by the page scan");
  }
  munmap(p, 3 * kPage);
  return r;
}

ProbeResult ProbeVmsplice() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return FailErrno("pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  alignas(kPage) static unsigned char page[kPage];
  for (size_t i = 0; i < kPage; ++i) page[i] = static_cast<unsigned char>(i * 7);
  iovec iov{page, kPage};
  if (vmsplice(wr.get(), &iov, 1, 0) != static_cast<ssize_t>(kPage)) return FailErrno("vmsplice");
  static unsigned char back[kPage];
  size_t got = 0;
  while (got < kPage) {
    const ssize_t n = read(rd.get(), back + got, kPage - got);
    if (n <= 0) return FailErrno("read from the vmspliced pipe");
    got += static_cast<size_t>(n);
  }
  if (memcmp(back, page, kPage) != 0) return Fail("vmspliced page read back differs");
  return Ok();
}

}  // namespace cf::engine
