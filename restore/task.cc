#include "restore/task.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <set>
#include <string>

#include "common/fault.h"
#include "common/io.h"
#include "common/log.h"
#include "common/timer.h"
#include "kinds/kind.h"
#include "restore/clone.h"
#include "restore/files.h"
#include "restore/memory.h"
#include "blobs/restorer/restorer_abi.h"

// glibc's rseq registration of this thread (glibc >= 2.35).
extern "C" {
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

namespace cf::restore {
namespace {

constexpr uint32_t kRseqSig = 0x53053053;
constexpr uint64_t kTaskSize = 0x7ffffffff000;

static_assert(sizeof(cf_rst_mm_map) == 104, "PR_SET_MM_MAP expects 104 bytes");
static_assert(sizeof(cf_rst_posix_timer) == 64, "ABI: cf_rst_posix_timer");
static_assert(sizeof(cf_rst_thread) % 8 == 0, "the timers array after the threads stays aligned");

// Session and process group. A process inherits both from its parent, so
// only a leader (or a member of a group led by another process of the tree,
// which may not exist yet: retried, bounded) has something to do.
Status RestoreSession(const img::Process& core) {
  if (core.sid() == core.pid()) {
    if (setsid() < 0) return ErrnoStatus("setsid");
    return OkStatus();
  }
  if (getsid(0) != core.sid()) {
    return Errorf("process %d was in session %d, which its parent did not pass on: not supported", core.pid(),
                  core.sid());
  }
  if (getpgid(0) == core.pgid()) return OkStatus();
  for (int i = 0;; ++i) {
    if (setpgid(0, core.pgid()) == 0) return OkStatus();
    if (errno != EPERM || i == 2000) return ErrnoStatus("join process group " + std::to_string(core.pgid()));
    usleep(1000);
  }
}

// Creates the children of this process, each with its PID, each going on
// with its own restore. They inherit the message pipe.
Status CreateChildren(const TaskContext& ctx) {
  const img::Process& core = ctx.images->processes[ctx.index].core;
  for (size_t i = 0; i < ctx.images->processes.size(); ++i) {
    const img::Process& c = ctx.images->processes[i].core;
    if (i == ctx.index || c.ppid() != core.pid()) continue;
    ASSIGN_OR_RETURN(pid_t pid, CloneWithPid(c.pid()));
    if (pid == 0) {
      TaskContext child = ctx;
      child.index = i;
      child.go_fd = -1;
      RunTask(child);
    }
  }
  return OkStatus();
}

Status RestoreLimits(const img::Process& core) {
  for (const img::Rlimit& l : core.rlimits()) {
    const auto res = static_cast<__rlimit_resource>(l.resource());
    struct rlimit want{l.cur(), l.max()};
    if (setrlimit(res, &want) == 0) continue;
    // Without CAP_SYS_RESOURCE a hard limit cannot grow: keep ours.
    struct rlimit have;
    if (getrlimit(res, &have) != 0) return ErrnoStatus("getrlimit");
    want.rlim_max = have.rlim_max;
    want.rlim_cur = std::min(want.rlim_cur, want.rlim_max);
    if (setrlimit(res, &want) != 0) return ErrnoStatus("setrlimit " + std::to_string(l.resource()));
    LOG_WARN("restore: rlimit %u: hard limit %lu cannot be restored, kept %lu", l.resource(), l.max(),
             have.rlim_max);
  }
  return OkStatus();
}

// Fills the args block the restorer reads.
void BuildArgs(const img::Process& core, const MemoryLayout& L, int exe_fd, cf_rst_args* a) {
  memset(a, 0, sizeof(*a));
  a->magic = CF_RST_MAGIC;
  a->version = CF_RST_VERSION;

  // Unmap everything but the restore region and the vDSO block.
  std::vector<cf_rst_range> keep = {{L.region, L.region_len}};
  if (L.vdso_len) keep.push_back({L.vdso_cur, L.vdso_len});
  std::sort(keep.begin(), keep.end(), [](const auto& x, const auto& y) { return x.start < y.start; });
  auto* unmap = reinterpret_cast<cf_rst_range*>(reinterpret_cast<char*>(a) + sizeof(*a));
  uint64_t cursor = 0;
  for (const auto& k : keep) {
    if (k.start > cursor) unmap[a->nr_unmap++] = {cursor, k.start - cursor};
    cursor = k.start + k.len;
  }
  if (cursor < kTaskSize) unmap[a->nr_unmap++] = {cursor, kTaskSize - cursor};
  a->unmap_off = sizeof(*a);

  a->vmas_off = a->unmap_off + sizeof(cf_rst_range) * 4;
  auto* vmas = reinterpret_cast<cf_rst_vma*>(reinterpret_cast<char*>(a) + a->vmas_off);
  for (const PremappedVma& p : L.vmas) vmas[a->nr_vmas++] = {p.premap, p.start, p.len, p.prot, 0};

  a->threads_off = a->vmas_off + sizeof(cf_rst_vma) * a->nr_vmas;
  auto* threads = reinterpret_cast<cf_rst_thread*>(reinterpret_cast<char*>(a) + a->threads_off);
  for (int i = 1; i < core.threads_size(); ++i) {
    const img::Thread& t = core.threads(i);
    cf_rst_thread& d = threads[a->nr_threads];
    memset(&d, 0, sizeof(d));
    d.tid = t.tid();
    d.stack = L.thread_stacks + L.thread_stack_size * a->nr_threads;
    d.stack_size = L.thread_stack_size;
    if (!(t.altstack().flags() & SS_DISABLE) && t.altstack().size()) {
      d.altstack_sp = t.altstack().sp();
      d.altstack_flags = t.altstack().flags();
      d.altstack_size = t.altstack().size();
    }
    d.clear_child_tid = t.clear_child_tid();
    d.rseq_ptr = t.rseq().abi_pointer();
    d.rseq_len = t.rseq().abi_size();
    d.rseq_sig = t.rseq().signature();
    snprintf(d.comm, sizeof(d.comm), "%s", t.comm().c_str());
    a->nr_threads++;
  }

  a->posix_timers_off = a->threads_off + sizeof(cf_rst_thread) * a->nr_threads;
  auto* timers = reinterpret_cast<cf_rst_posix_timer*>(reinterpret_cast<char*>(a) + a->posix_timers_off);
  for (const img::PosixTimer& t : core.posix_timers()) {
    cf_rst_posix_timer& d = timers[a->nr_posix_timers++];
    memset(&d, 0, sizeof(d));
    d.id = t.id();
    d.clock_id = t.clock_id();
    d.signo = t.signo();
    d.notify = t.notify();
    d.tid = t.notify_tid();
    d.sigev_value = t.sigev_value();
    d.interval_sec = static_cast<int64_t>(t.interval_sec());
    d.interval_nsec = static_cast<int64_t>(t.interval_nsec());
    d.value_sec = static_cast<int64_t>(t.value_sec());
    d.value_nsec = static_cast<int64_t>(t.value_nsec());
  }

  a->vdso_cur = L.vdso_cur;
  a->vdso_len = L.vdso_len;
  a->vdso_target = L.vdso_target ? L.vdso_target : L.vdso_cur;

  const img::MmState& mm = core.mm();
  a->mm.start_code = mm.start_code();
  a->mm.end_code = mm.end_code();
  a->mm.start_data = mm.start_data();
  a->mm.end_data = mm.end_data();
  a->mm.start_brk = mm.start_brk();
  a->mm.brk = mm.brk();
  a->mm.start_stack = mm.start_stack();
  a->mm.arg_start = mm.arg_start();
  a->mm.arg_end = mm.arg_end();
  a->mm.env_start = mm.env_start();
  a->mm.env_end = mm.env_end();
  const int nauxv = std::min<int>(mm.auxv_size(), 64);
  for (int i = 0; i < nauxv; ++i) a->auxv[i] = mm.auxv(i);
  a->mm.auxv = reinterpret_cast<uint64_t>(&reinterpret_cast<cf_rst_args*>(L.args)->auxv[0]);
  a->mm.auxv_size = static_cast<uint32_t>(nauxv * 8);
  a->mm.exe_fd = static_cast<uint32_t>(exe_fd);

  for (const img::SigAction& s : core.sigactions()) {
    const uint32_t sig = s.signo();
    if (sig < 1 || sig > CF_RST_NSIG || sig == SIGKILL || sig == SIGSTOP) continue;
    a->sigactions[sig] = {s.handler(), s.flags(), s.restorer(), s.mask()};
    a->sigaction_valid |= 1ull << (sig - 1);
  }
  for (const img::ITimer& t : core.itimers()) {
    if (t.which() > 2) continue;
    a->itimers[t.which()] = {static_cast<int64_t>(t.interval_sec()), static_cast<int64_t>(t.interval_usec()),
                             static_cast<int64_t>(t.value_sec()), static_cast<int64_t>(t.value_usec())};
  }

  const img::Thread& th = core.threads(0);
  if (!(th.altstack().flags() & SS_DISABLE) && th.altstack().size()) {
    a->altstack_sp = th.altstack().sp();
    a->altstack_flags = th.altstack().flags();
    a->altstack_size = th.altstack().size();
  }
  a->clear_child_tid = th.clear_child_tid();
  a->rseq_ptr = th.rseq().abi_pointer();
  a->rseq_len = th.rseq().abi_size();
  a->rseq_sig = th.rseq().signature();

  auto add_sig = [a](const img::SigInfo& si, int32_t tid) {
    if (a->nr_siginfo >= CF_RST_MAX_SIGINFO) return;
    cf_rst_siginfo& d = a->siginfo[a->nr_siginfo++];
    d.signo = si.signo();
    d.shared = si.shared();
    d.tid = tid;
    memcpy(d.info, si.raw().data(), std::min<size_t>(si.raw().size(), sizeof(d.info)));
  };
  for (const img::SigInfo& si : core.shared_pending()) add_sig(si, 0);
  for (const img::Thread& t : core.threads()) {
    for (const img::SigInfo& si : t.pending()) add_sig(si, t.tid());
  }

  const img::Creds& c = core.creds();
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  getresuid(&ruid, &euid, &suid);
  getresgid(&rgid, &egid, &sgid);
  gid_t groups[64];
  const int ngroups = getgroups(64, groups);
  bool same = ruid == c.uid() && euid == c.euid() && suid == c.suid() && rgid == c.gid() && egid == c.egid() &&
              sgid == c.sgid() && ngroups == c.groups_size();
  for (int i = 0; same && i < ngroups; ++i) same = groups[i] == c.groups(i);
  if (!same) {
    a->change_creds = 1;
    a->uid[0] = c.uid(), a->uid[1] = c.euid(), a->uid[2] = c.suid(), a->uid[3] = c.fsuid();
    a->gid[0] = c.gid(), a->gid[1] = c.egid(), a->gid[2] = c.sgid(), a->gid[3] = c.fsgid();
    a->nr_groups = static_cast<uint32_t>(std::min(c.groups_size(), 64));
    for (uint32_t i = 0; i < a->nr_groups; ++i) a->groups[i] = c.groups(static_cast<int>(i));
  }
}

// Everything up to the jump; returns only on error.
Status Prepare(TaskContext& ctx) {
  const ProcessImages& images = ctx.images->processes[ctx.index];
  const img::Process& core = images.core;
  RETURN_IF_ERROR(RestoreSession(core));
  // Objects shared with descendants first: the children inherit them.
  std::set<std::string> recreated;  // files made again from ghost images
  kinds::RestoreContext files{ctx.dir, ctx.files->shmem, &recreated};
  RETURN_IF_ERROR(CreateOwnedFiles(*ctx.files, core.pid(), files, &ctx.inherited));
  RETURN_IF_ERROR(CreateChildren(ctx));
  umask(core.umask());
  if (personality(0xffffffff) != static_cast<int>(core.personality())) personality(core.personality());
  RETURN_IF_ERROR(RestoreLimits(core));
  if (core.root() != "/") return Error("restoring a process with another root (" + core.root() + ") is not supported");
  if (chdir(core.cwd().c_str()) != 0) return ErrnoStatus("chdir " + core.cwd());

  const uint64_t args_len = sizeof(cf_rst_args) + sizeof(cf_rst_range) * 4 +
                            sizeof(cf_rst_vma) * static_cast<uint64_t>(core.vmas_size()) +
                            sizeof(cf_rst_thread) * static_cast<uint64_t>(core.threads_size()) +
                            sizeof(cf_rst_posix_timer) * static_cast<uint64_t>(core.posix_timers_size());
  TaskMessage msg{};
  msg.pid = core.pid();
  msg.tag = 'R';
  TaskReport& report = msg.report;
  uint64_t t0 = MonotonicNs();
  ASSIGN_OR_RETURN(MemoryLayout layout, PremapMemory(core, args_len, *ctx.files->shmem));
  RETURN_IF_ERROR(PopulateData(layout, images.pagemap));
  uint64_t t1 = MonotonicNs();
  // criu-fast fills the slots while we are stopped.
  msg.tag = 'P';
  report.region = layout.region;
  report.region_len = layout.region_len;
  report.first_slot = layout.first_slot;
  if (write(ctx.report_fd, &msg, sizeof(msg)) != static_cast<ssize_t>(sizeof(msg))) {
    return ErrnoStatus("report to criu-fast");
  }
  syscall(SYS_tgkill, getpid(), gettid(), SIGSTOP);
  msg.tag = 'R';
  uint64_t t2 = MonotonicNs();
  report.premap_ns = t1 - t0;
  report.fill_ns = t2 - t1;
  report.pages_filled = images.pagemap.data_pages();

  int exe_fd = open(core.mm().exe_path().c_str(), O_RDONLY | O_CLOEXEC);
  if (exe_fd < 0) return ErrnoStatus("open executable " + core.mm().exe_path());
  RETURN_IF_ERROR(RestoreFds(core, files, ctx.inherited, {&ctx.report_fd, &exe_fd}));
  report.files_ns = MonotonicNs() - t2;
  FAULT_POINT("restore-jump");

  auto* args = reinterpret_cast<cf_rst_args*>(layout.args);
  BuildArgs(core, layout, exe_fd, args);

  prctl(PR_SET_NAME, core.threads(0).comm().empty() ? core.comm().c_str() : core.threads(0).comm().c_str());
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  // glibc registered rseq for this thread in memory that is about to go.
  // (Checked before the report: after it, criu-fast expects the restorer.)
  if (&__rseq_size && __rseq_size > 0) {
    void* area = static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
    if (syscall(SYS_rseq, area, __rseq_size, 1 /* RSEQ_FLAG_UNREGISTER */, kRseqSig) != 0 &&
        syscall(SYS_rseq, area, 32, 1, kRseqSig) != 0) {
      return ErrnoStatus("unregister rseq");
    }
  }
  report.region = layout.region;
  report.region_len = layout.region_len;
  report.args = layout.args;
  if (write(ctx.report_fd, &msg, sizeof(msg)) != static_cast<ssize_t>(sizeof(msg))) {
    return ErrnoStatus("report to criu-fast");
  }
  close(ctx.report_fd);

  __asm__ volatile(
      "mov %0, %%rsp\n"
      "mov %1, %%rdi\n"
      "jmp *%2\n"
      :
      : "r"(layout.stack_top), "r"(layout.args), "r"(layout.blob)
      : "memory");
  __builtin_unreachable();
}

}  // namespace

void RunTask(TaskContext ctx) {
  if (ctx.go_fd >= 0) {
    char go = 0;
    if (read(ctx.go_fd, &go, 1) != 1) _exit(1);
    close(ctx.go_fd);
    ctx.go_fd = -1;
  }
  Status s = Prepare(ctx);
  TaskMessage msg{};
  msg.pid = getpid();
  msg.tag = 'E';
  snprintf(msg.error, sizeof(msg.error), "%s", s.ToString().c_str());
  (void)!write(ctx.report_fd, &msg, sizeof(msg));
  _exit(1);
}

}  // namespace cf::restore
