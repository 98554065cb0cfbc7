// The criu-fast side of a restore.
//
// Stages:
//   1. load     inventory, core and pagemap (checksums verified)
//   2. create   the process with its own PID (clone3 set_tid), waiting for a
//               zombie that still holds the PID; criu-fast traces it at once
//   3. prepare  inside the new process (restore/task.h): session, limits,
//               cwd, premapped and filled memory, descriptors; then it jumps
//               into the restorer blob, which puts memory in place and sets
//               what only the task can set, and stops on int3
//   4. finish   criu-fast reads the restorer's result, unmaps the restorer
//               region, loads registers, xstate and signal mask by ptrace,
//               and detaches: the process runs on where it was frozen
// Any failure kills the new process (PTRACE_O_EXITKILL covers criu-fast
// itself dying), so a failed restore leaves nothing behind.
#include "restore/restore.h"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <thread>

#include "common/fault.h"
#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "common/timer.h"
#include "engine/proc_parse.h"
#include "memdrain/remote_syscall.h"
#include "restore/images.h"
#include "restore/restorer/restorer_abi.h"
#include "restore/task.h"

namespace cf::restore {
namespace {

constexpr int kPidWaitMs = 10000;

struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

const char* StageName(int stage) {
  switch (stage) {
    case CF_RST_STAGE_START: return "start";
    case CF_RST_STAGE_UNMAP: return "unmapping criu-fast";
    case CF_RST_STAGE_MOVE_VMAS: return "moving memory into place";
    case CF_RST_STAGE_VDSO: return "moving the vDSO";
    case CF_RST_STAGE_PROTECT: return "setting protections";
    case CF_RST_STAGE_MM: return "PR_SET_MM_MAP";
    case CF_RST_STAGE_SIGACTIONS: return "sigactions";
    case CF_RST_STAGE_TIMERS: return "itimers";
    case CF_RST_STAGE_THREAD: return "thread state (sigaltstack, rseq)";
    case CF_RST_STAGE_CREDS: return "credentials";
    case CF_RST_STAGE_SIGNALS: return "pending signals";
    default: return "unknown";
  }
}

// clone3 with set_tid = |pid|. A PID still held by a zombie (orphans are
// reaped late here) is waited for; one held by a live process is an error.
Result<pid_t> CloneWithPid(pid_t pid) {
  bool said = false;
  for (int waited = 0;; waited += 20) {
    pid_t want = pid;
    CloneArgs args{};
    args.exit_signal = SIGCHLD;
    args.set_tid = reinterpret_cast<uint64_t>(&want);
    args.set_tid_size = 1;
    long r = syscall(SYS_clone3, &args, sizeof(args));
    if (r >= 0) return static_cast<pid_t>(r);
    if (errno != EEXIST) return ErrnoStatus("clone3 with pid " + std::to_string(pid));
    auto st = engine::ReadStat(pid);
    if (st.ok() && st->state != 'Z' && st->state != 'X') {
      return Errorf("pid %d is in use by a running process (%s): cannot restore", pid, st->comm.c_str());
    }
    if (waited >= kPidWaitMs) return Errorf("pid %d stayed taken for %d ms", pid, kPidWaitMs);
    if (!said) {
      LOG_INFO("restore: waiting for pid %d to be released", pid);
      said = true;
    }
    usleep(20000);
  }
}

// Owns the new process until it runs on its own: kills it unless released.
class NewProcess {
 public:
  explicit NewProcess(pid_t pid) : pid_(pid) {}
  ~NewProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
    }
  }
  pid_t pid() const { return pid_; }
  void Release() { pid_ = -1; }

 private:
  pid_t pid_;
};

Status ReadRemote(pid_t pid, uint64_t addr, void* buf, size_t len) {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) {
    return ErrnoStatus("read restorer result");
  }
  return OkStatus();
}

void ToUserRegs(const img::UserRegs& r, user_regs_struct* o) {
  o->r15 = r.r15(), o->r14 = r.r14(), o->r13 = r.r13(), o->r12 = r.r12(), o->rbp = r.rbp(), o->rbx = r.rbx();
  o->r11 = r.r11(), o->r10 = r.r10(), o->r9 = r.r9(), o->r8 = r.r8(), o->rax = r.rax(), o->rcx = r.rcx();
  o->rdx = r.rdx(), o->rsi = r.rsi(), o->rdi = r.rdi(), o->orig_rax = r.orig_rax(), o->rip = r.rip();
  o->cs = r.cs(), o->eflags = r.eflags(), o->rsp = r.rsp(), o->ss = r.ss(), o->fs_base = r.fs_base();
  o->gs_base = r.gs_base(), o->ds = r.ds(), o->es = r.es(), o->fs = r.fs(), o->gs = r.gs();
}

// Waits for the restorer's int3 and finishes the thread by ptrace.
Status Finish(pid_t pid, const TaskReport& report, const img::Thread& th) {
  int status = 0;
  for (;;) {
    if (waitpid(pid, &status, __WALL) < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("wait for the restorer");
    }
    if (WIFEXITED(status)) return Errorf("restored process exited with %d in the restorer", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return Errorf("restored process was killed by signal %d in the restorer", WTERMSIG(status));
    if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP && (status >> 16) == 0) break;
    if (WIFSTOPPED(status)) {
      siginfo_t si{};
      ptrace(PTRACE_GETSIGINFO, pid, nullptr, &si);
      return Errorf("restorer stopped by signal %d (fault address %p)", WSTOPSIG(status), si.si_addr);
    }
  }
  cf_rst_args result;
  RETURN_IF_ERROR(ReadRemote(pid, report.args, &result, sizeof(result)));
  if (result.stage != CF_RST_STAGE_DONE || result.error != 0) {
    return Error(std::string("restorer failed at ") + StageName(result.stage) + " (address " +
                     std::to_string(result.error_addr) + ")",
                 static_cast<int>(-result.error));
  }
  FAULT_POINT("restore-finish");
  {
    ASSIGN_OR_RETURN(memdrain::RemoteSyscall rs, memdrain::RemoteSyscall::Attach(pid, pid));
    ASSIGN_OR_RETURN(long r, rs.Call(__NR_munmap, report.region, report.region_len));
    if (r != 0) return ErrnoStatus(static_cast<int>(-r), "unmap the restore region");
    RETURN_IF_ERROR(rs.Restore());
  }
  user_regs_struct regs;
  ToUserRegs(th.regs(), &regs);
  if (ptrace(PTRACE_SETREGS, pid, nullptr, &regs) != 0) return ErrnoStatus("set registers");
  std::string xstate = th.xstate();
  if (!xstate.empty()) {
    iovec iov{xstate.data(), xstate.size()};
    if (ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, &iov) != 0) return ErrnoStatus("set xstate");
  }
  uint64_t mask = th.blocked();
  if (ptrace(PTRACE_SETSIGMASK, pid, sizeof(mask), &mask) != 0) return ErrnoStatus("set signal mask");
  return OkStatus();
}

}  // namespace

Status Restore(const RestoreOptions& opts, int* exit_code) {
  const uint64_t start = MonotonicNs();
  ASSIGN_OR_RETURN(ImageSet images, LoadImages(opts.images_dir));
  if (images.processes.size() != 1) {
    return Errorf("the image holds %zu processes: restoring process trees is not supported yet",
                  images.processes.size());
  }
  const ProcessImages& proc = images.processes[0];
  const pid_t pid = proc.core.pid();
  if (proc.core.threads_size() != 1) return Errorf("process %d has %d threads: not supported yet", pid,
                                                   proc.core.threads_size());
  FAULT_POINT("restore-create");

  int go[2], rep[2];
  if (pipe2(go, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  const int jobs = opts.jobs > 0 ? opts.jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  fflush(stdout);
  fflush(stderr);
  const uint64_t loaded = MonotonicNs();
  auto child = CloneWithPid(pid);
  const uint64_t created = MonotonicNs();
  if (!child.ok()) {
    close(go[0]), close(go[1]), close(rep[0]), close(rep[1]);
    return child.status();
  }
  if (*child == 0) {
    close(go[1]);
    close(rep[0]);
    RunTask({&proc, images.dir, jobs, go[0], rep[1]});
  }
  close(go[0]);
  close(rep[1]);
  NewProcess np(*child);
  UniqueFd go_w(go[1]), rep_r(rep[0]);
  if (ptrace(PTRACE_SEIZE, pid, nullptr, reinterpret_cast<void*>(PTRACE_O_EXITKILL)) != 0) {
    return ErrnoStatus("seize the restored process");
  }
  char byte = 'g';
  RETURN_IF_ERROR(WriteAll(go_w.get(), &byte, 1, "go"));

  char tag = 0;
  ASSIGN_OR_RETURN(size_t n, ReadFull(rep_r.get(), &tag, 1, "report"));
  if (n == 0) return Errorf("restored process %d died while preparing", pid);
  if (tag == 'E') {
    char msg[4096];
    ASSIGN_OR_RETURN(size_t m, ReadFull(rep_r.get(), msg, sizeof(msg) - 1, "report"));
    msg[m] = 0;
    return Errorf("restore of process %d: %s", pid, msg);
  }
  TaskReport report;
  ASSIGN_OR_RETURN(n, ReadFull(rep_r.get(), &report, sizeof(report), "report"));
  if (n != sizeof(report)) return Errorf("restored process %d sent a short report", pid);
  const uint64_t reported = MonotonicNs();
  RETURN_IF_ERROR(Finish(pid, report, proc.core.threads(0)).WithContext("restore of process " + std::to_string(pid)));

  if (!opts.pidfile.empty()) {
    const std::string text = std::to_string(pid) + "\n";
    UniqueFd f(open(opts.pidfile.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!f.valid()) return ErrnoStatus("write pidfile " + opts.pidfile);
    RETURN_IF_ERROR(WriteAll(f.get(), text.data(), text.size(), opts.pidfile));
  }
  if (ptrace(PTRACE_DETACH, pid, nullptr, nullptr) != 0) return ErrnoStatus("detach from the restored process");
  np.Release();
  const uint64_t end = MonotonicNs();
  LOG_INFO("restore: process %d runs again (%.3f ms)", pid, static_cast<double>(end - start) / 1e6);
  if (opts.display_stats) {
    auto ms = [](uint64_t ns) { return static_cast<double>(ns) / 1e6; };
    const double fill_gbs = report.fill_ns ? static_cast<double>(report.pages_filled) * 4096.0 /
                                                 static_cast<double>(report.fill_ns) : 0.0;
    printf("Restore statistics:\n");
    printf("  restore time:    %.3f ms\n", ms(end - start));
    printf("  pid wait time:   %.3f ms\n", ms(created - loaded));
    printf("  premap time:     %.3f ms\n", ms(report.premap_ns));
    printf("  fill time:       %.3f ms\n", ms(report.fill_ns));
    printf("  files time:      %.3f ms\n", ms(report.files_ns));
    printf("  finish time:     %.3f ms\n", ms(end - reported));
    printf("  pages restored:  %lu\n", report.pages_filled);
    printf("  fill rate:       %.2f GB/s\n", fill_gbs);
    fflush(stdout);
  }
  *exit_code = 0;
  if (opts.detached) return OkStatus();
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus("wait for the restored process");
  }
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return OkStatus();
}

}  // namespace cf::restore
