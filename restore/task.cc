#include "restore/task.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <cstring>
#include <vector>

#include "common/fault.h"
#include "common/io.h"
#include "common/log.h"
#include "common/sorted.h"
#include "common/timer.h"
#include "kinds/ghost_file.h"
#include "kinds/ghost_node.h"
#include "kinds/process_props.h"
#include "kinds/thread_props.h"
#include "restore/clone.h"
#include "restore/fdtable.h"
#include "restore/files.h"
#include "restore/ghosts.h"
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
static_assert(sizeof(cf_rst_args) % 8 == 0 && sizeof(cf_rst_range) % 8 == 0 && sizeof(cf_rst_vma) % 8 == 0 &&
                  sizeof(cf_rst_thread) % 8 == 0 && sizeof(cf_rst_posix_timer) % 8 == 0 &&
                  sizeof(cf_rst_siginfo) % 8 == 0,
              "every array of the args block stays 8-byte aligned");

// In a new child, first thing: dies with |parent| (the parent-death
// signal, set before checking that the parent is still there), then asks
// criu-fast to trace it (restore/task.h).
void AskToBeTraced(pid_t parent, int report_fd) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent) _exit(1);
  // Tests: a child killed from outside before it could ask.
  if (FaultArmed("restore-child-untraced")) raise(SIGKILL);
  TaskMessage msg{};
  msg.pid = getpid();
  msg.tag = 'S';
  if (write(report_fd, &msg, sizeof(msg)) != static_cast<ssize_t>(sizeof(msg))) _exit(1);
}

// Creates the children of this process, each with its PID, each going on
// with its own restore (they inherit the message pipe); then its zombie
// children, which die at once (restore/clone.h). Untraced (CLONE_UNTRACED):
// no fork stops this process; each child asks to be traced.
Status CreateChildren(const TaskContext& ctx, const std::vector<PremappedVma>* premapped) {
  const img::Process& core = ctx.images->processes[ctx.index].core;
  const pid_t self = getpid();
  // Every pid of the image, zombies included: only a process with zombies
  // needs it (a tree of many processes would build it in each).
  std::set<pid_t> tree;
  if (core.zombies_size() > 0) {
    for (const ProcessImages& p : ctx.images->processes) {
      tree.insert(p.core.pid());
      for (const img::Zombie& z : p.core.zombies()) tree.insert(z.pid());
    }
  }
  // Read once here rather than in each child (MapsForChildren).
  std::optional<KnownMaps> maps;
  if (ctx.images->processes[ctx.index].children.size() > 1) {
    ASSIGN_OR_RETURN(maps, MapsForChildren());
  }
  for (size_t i : ctx.images->processes[ctx.index].children) {
    const img::Process& c = ctx.images->processes[i].core;
    // A child sharing our table (restore/fdtable.h) reports through a
    // descriptor of its own, which our RestoreFds keeps.
    int report_fd = ctx.report_fd;
    if (c.fdt_shared()) {
      report_fd = fcntl(ctx.report_fd, F_DUPFD_CLOEXEC, ctx.files->temp_base);
      if (report_fd < 0) return ErrnoStatus("duplicate the message pipe for process " + std::to_string(c.pid()));
    }
    ASSIGN_OR_RETURN(pid_t pid,
                     CloneWithPid(c.pid(), SIGCHLD, CLONE_UNTRACED | (c.fdt_shared() ? CLONE_FILES : 0)));
    if (pid == 0) {
      AskToBeTraced(self, report_fd);
      TaskContext child = ctx;
      child.index = i;
      child.go_fd = -1;
      child.report_fd = report_fd;
      child.parent_vmas = premapped;
      child.parent_maps = maps ? &*maps : nullptr;
      RunTask(child);
    }
  }
  return CreateZombies(core, tree);
}

// The args block: cf_rst_args, then its arrays, each at an offset from the
// start of the block. Sized from the image (the VMAs by an upper bound: the
// vDSO block and vsyscall are not moved), so every count fits, however many
// threads, signals or groups the process had.
struct ArgsPlan {
  uint64_t unmap_off = 0;
  uint64_t max_unmap = 0;
  uint64_t vmas_off = 0;
  uint64_t threads_off = 0;
  uint64_t posix_timers_off = 0;
  uint64_t siginfo_off = 0;
  uint32_t nr_siginfo = 0;          // every queue
  uint32_t nr_process_siginfo = 0;  // the process's queue, first
  uint64_t groups_off = 0;
  uint64_t seccomp_off = 0;
  uint64_t len = 0;
};

ArgsPlan PlanArgs(const img::Process& core) {
  ArgsPlan p;
  const kinds::ProcessArrays pa = kinds::ProcessArgsArrays(core);
  p.nr_process_siginfo = pa.siginfo;
  p.nr_siginfo = pa.siginfo;
  for (const img::Thread& t : core.threads()) p.nr_siginfo += kinds::QueuedSignals(t);
  p.unmap_off = sizeof(cf_rst_args);
  p.max_unmap = static_cast<uint64_t>(core.vmas_size()) + CF_RST_MAX_UNMAP_EXTRA;
  p.vmas_off = p.unmap_off + sizeof(cf_rst_range) * p.max_unmap;
  p.threads_off = p.vmas_off + sizeof(cf_rst_vma) * static_cast<uint64_t>(core.vmas_size());
  p.posix_timers_off = p.threads_off + sizeof(cf_rst_thread) * static_cast<uint64_t>(core.threads_size());
  p.siginfo_off = p.posix_timers_off + sizeof(cf_rst_posix_timer) * uint64_t{pa.posix_timers};
  p.groups_off = p.siginfo_off + sizeof(cf_rst_siginfo) * uint64_t{p.nr_siginfo};
  p.seccomp_off = (p.groups_off + sizeof(uint32_t) * uint64_t{pa.groups} + 7) & ~uint64_t{7};
  p.len = p.seccomp_off + pa.seccomp_bytes;
  return p;
}

// Fills the args block the restorer reads (|plan.len| bytes at |a|).
Status BuildArgs(const img::Process& core, const MemoryLayout& L, const ArgsPlan& plan, int exe_fd, cf_rst_args* a) {
  memset(a, 0, sizeof(*a));
  a->magic = CF_RST_MAGIC;
  a->version = CF_RST_VERSION;
  char* const block = reinterpret_cast<char*>(a);

  // Unmap everything but the restore region and the vDSO block.
  std::vector<cf_rst_range> keep;
  keep.reserve(L.vmas.size() + 2);
  for (const PremappedVma& p : L.vmas) {
    // Premapped in place, or handed down by fork where the parent premapped it.
    if (p.premap == p.start || p.inherited) keep.push_back({p.premap, p.len});
  }
  keep.push_back({L.region, L.region_len});
  // The vDSO block stays only when the image has one (a process may have
  // unmapped its own).
  if (L.vdso_len && L.vdso_target) keep.push_back({L.vdso_cur, L.vdso_len});
  // In address order but for the last two (60,000 ranges sorted again cost a
  // process ~3 ms).
  SortRuns(keep, [](const cf_rst_range& x, const cf_rst_range& y) { return x.start < y.start; });
  // Ranges that touch are kept as one: no empty gap to unmap between them.
  std::vector<cf_rst_range> unmap;
  uint64_t cursor = 0;
  for (const auto& k : keep) {
    if (k.start > cursor) unmap.push_back({cursor, k.start - cursor});
    cursor = std::max(cursor, k.start + k.len);
  }
  if (cursor < kTaskSize) unmap.push_back({cursor, kTaskSize - cursor});
  if (unmap.size() > plan.max_unmap) return Errorf("restorer args: %zu ranges to unmap", unmap.size());
  a->unmap_off = plan.unmap_off;
  a->nr_unmap = static_cast<uint32_t>(unmap.size());
  memcpy(block + a->unmap_off, unmap.data(), unmap.size() * sizeof(cf_rst_range));

  a->vmas_off = plan.vmas_off;
  auto* vmas = reinterpret_cast<cf_rst_vma*>(block + a->vmas_off);
  if (L.vmas.size() > static_cast<size_t>(core.vmas_size())) return Error("restorer args: more VMAs than planned");
  for (const PremappedVma& p : L.vmas) {
    const uint32_t now = p.protected_early ? p.prot : PremapProt(core.vmas(p.vma_index)).value_or(CF_RST_PROT_UNKNOWN);
    vmas[a->nr_vmas++] = {p.premap, p.start, p.len, p.prot, now};
  }

  // Every thread, the leader first (record 0), by the one property table;
  // the queued signals of each thread go with them, after the process's.
  a->threads_off = plan.threads_off;
  a->siginfo_off = plan.siginfo_off;
  a->posix_timers_off = plan.posix_timers_off;
  a->groups_off = plan.groups_off;
  a->seccomp_off = plan.seccomp_off;
  auto* threads = reinterpret_cast<cf_rst_thread*>(block + a->threads_off);
  auto* siginfo = reinterpret_cast<cf_rst_siginfo*>(block + a->siginfo_off);
  uint32_t nr_thread_siginfo = 0;
  kinds::ThreadArgs out{nullptr, siginfo + plan.nr_process_siginfo, &nr_thread_siginfo,
                        plan.nr_siginfo - plan.nr_process_siginfo};
  for (int i = 0; i < core.threads_size(); ++i) {
    const img::Thread& t = core.threads(i);
    cf_rst_thread& d = threads[i];
    memset(&d, 0, sizeof(d));
    d.tid = t.tid();
    if (i > 0) {  // the leader runs on the restorer's own stack
      d.stack = L.thread_stacks + L.thread_stack_size * static_cast<uint64_t>(i - 1);
      d.stack_size = L.thread_stack_size;
    }
    out.thread = &d;
    for (const kinds::ThreadProperty& p : kinds::ThreadProperties()) {
      if (p.to_args) p.to_args(t, &out);
    }
  }
  a->nr_threads = static_cast<uint32_t>(core.threads_size());
  a->threads_untraced = ThreadsTracedFromCreation(core) ? 0 : 1;

  // The process's properties (kinds/process_props.h), once the leader's
  // record is filled.
  uint32_t nr_process_siginfo = 0;
  kinds::ProcessArgs pout{a,
                          threads,
                          reinterpret_cast<cf_rst_posix_timer*>(block + a->posix_timers_off),
                          reinterpret_cast<uint32_t*>(block + a->groups_off),
                          siginfo,
                          &nr_process_siginfo,
                          plan.nr_process_siginfo};
  for (const kinds::ProcessProperty& p : kinds::ProcessProperties()) {
    if (p.to_args) p.to_args(core, &pout);
  }
  a->nr_siginfo = nr_process_siginfo + nr_thread_siginfo;
  if (nr_process_siginfo != plan.nr_process_siginfo || a->nr_siginfo != plan.nr_siginfo) {
    return Errorf("restorer args: %u queued signals, %u planned", a->nr_siginfo, plan.nr_siginfo);
  }

  a->vdso_cur = L.vdso_cur;
  a->vdso_len = L.vdso_target ? L.vdso_len : 0;  // none in the image: ours is unmapped with the rest
  a->vdso_target = L.vdso_target ? L.vdso_target : L.vdso_cur;
  a->vdso_scratch = L.vdso_scratch;

  const img::MmState& mm = core.mm();
  a->mm.start_code = mm.start_code();
  a->mm.end_code = mm.end_code();
  a->mm.start_data = mm.start_data();
  a->mm.end_data = mm.end_data();
  a->mm.start_brk = mm.start_brk();  // brk: a process property
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
  return OkStatus();
}

// Before anything else, so that what the process allocates is charged to its
// own cgroups; a child has inherited its parent's already.
Status JoinOwnCgroups(const TaskContext& ctx) {
  const img::Process& core = ctx.images->processes[ctx.index].core;
  const int up = ctx.images->processes[ctx.index].parent;
  const img::Process* parent = up < 0 ? nullptr : &ctx.images->processes[up].core;
  return kinds::JoinCgroups(*ctx.cgroups, core.pid(), core, parent);
}

// Whether a child of |ctx|'s process shares pages with it copy-on-write
// (INHERITED) and can get them by fork: then this process premaps and is
// filled before it forks. Not where processes share a descriptor table:
// their fill waits wait for each other (restore/fdtable.h).
bool ChildrenInherit(const TaskContext& ctx) {
  const img::Process& core = ctx.images->processes[ctx.index].core;
  if (core.fdt_shared() || HasTableSharers(*ctx.images, ctx.index)) return false;
  for (size_t i : ctx.images->processes[ctx.index].children) {
    const ProcessImages& c = ctx.images->processes[i];
    for (const img::PageRange& r : c.pagemap.ranges()) {
      if (r.kind() == img::PageRange::INHERITED) return true;
    }
  }
  return false;
}

// The process's memory, premapped (restore/memory.h), then filled by
// criu-fast while the process waits; |out| gets the two stage times.
struct MemoryStep {
  MemoryLayout layout;
  uint64_t premap_ns = 0;
  uint64_t fill_ns = 0;
};

Status PremapAndFill(TaskContext& ctx, const ArgsPlan& plan, const InheritedFiles& received,
                     std::map<std::string, std::string>* recreated, MemoryStep* out) {
  const ProcessImages& images = ctx.images->processes[ctx.index];
  const img::Process& core = images.core;
  uint64_t t0 = MonotonicNs();
  // Sockets the process maps (packet rings), among the descriptions it has.
  SocketFds sockets;
  for (const img::Fd& f : core.fds()) {
    auto it = ctx.inherited.find(f.file_id());
    if (S_ISSOCK(f.mode()) && f.file_id() != 0 && it != ctx.inherited.end()) sockets[f.inode()] = it->second;
  }
  kinds::RestoreContext files{ctx.dir, ctx.files->shmem, recreated, ctx.files->tcp_close};
  RETURN_IF_ERROR(kinds::RecreateMappedGhosts(core, files));
  std::optional<Inheritance> inherit;
  if (ctx.parent_vmas != nullptr && images.parent >= 0) {
    const ProcessImages& parent = ctx.images->processes[images.parent];
    inherit = Inheritance{&parent.core, ctx.parent_vmas, &images.pagemap, &parent.pagemap};
  }
  ASSIGN_OR_RETURN(out->layout, PremapMemory(core, plan.len, *ctx.files->shmem, sockets, recreated,
                                             inherit ? &*inherit : nullptr, ctx.parent_maps));
  const MemoryLayout& layout = out->layout;
  RETURN_IF_ERROR(PopulateData(layout, images.pagemap));
  RETURN_IF_ERROR(InstallGuards(layout, images.pagemap));
  // Not where the table is shared: the descriptor would be in the others' way.
  CopyFill copy;
  if (!core.fdt_shared()) {
    ASSIGN_OR_RETURN(copy, RegisterCopyFill(core, images.pagemap, images.summary, &out->layout));
  }
  uint64_t t1 = MonotonicNs();
  if (core.fdt_shared()) {
    for (const auto& [id, fd] : ctx.inherited) {
      if (!received.count(id)) close(fd);
    }
    // The owner of the table may close the log's descriptor from now on.
    DetachLogging();
  }
  // criu-fast fills the slots while we wait.
  TaskMessage msg{};
  msg.pid = core.pid();
  msg.tag = 'P';
  msg.report.region = layout.region;
  msg.report.region_len = layout.region_len;
  msg.report.plan_addr = reinterpret_cast<uint64_t>(layout.vmas.data());
  msg.report.plan_count = layout.vmas.size();
  msg.report.copy_fd = copy.uffd;
  msg.report.has_copy_fd = copy.uffd >= 0;
  if (write(ctx.report_fd, &msg, sizeof(msg)) != static_cast<ssize_t>(sizeof(msg))) {
    return ErrnoStatus("report to criu-fast");
  }
  // Meanwhile, the VMAs criu-fast has filled are given their protection
  // (EarlyProtect): the fill word counts the chunks written so far.
  EarlyProtect early(images.summary, out->layout, copy);
  uint32_t* filled = &ctx.filled[ctx.index];
  for (;;) {
    const uint32_t chunks = __atomic_load_n(filled, __ATOMIC_ACQUIRE);
    if (chunks == kFillDone) break;
    if (!early.empty()) RETURN_IF_ERROR(early.Advance(chunks, &copy, &out->layout));
    syscall(SYS_futex, filled, FUTEX_WAIT, chunks, nullptr, nullptr, 0);
  }
  if (!early.empty()) RETURN_IF_ERROR(early.Advance(kFillDone, &copy, &out->layout));
  RETURN_IF_ERROR(EndCopyFill(&copy));
  out->premap_ns = t1 - t0;
  out->fill_ns = MonotonicNs() - t1;
  return OkStatus();
}

// Everything up to the jump; returns only on error.
Status Prepare(TaskContext& ctx) {
  const ProcessImages& images = ctx.images->processes[ctx.index];
  const img::Process& core = images.core;
  // The process's properties the new process sets itself
  // (kinds/process_props.h): first what its children inherit.
  RETURN_IF_ERROR(kinds::ApplyInTask(core, kinds::TaskStep::kBeforeChildren));
  // A process sharing its parent's table (restore/fdtable.h) closes what
  // it opened itself before its fill wait: the descriptions it received stay.
  const InheritedFiles received = ctx.inherited;
  // Objects shared with descendants first: the children inherit them.
  std::map<std::string, std::string> recreated;  // files made again from ghost images
  if (ctx.shared_ghosts) UseSharedGhosts(*ctx.shared_ghosts, ctx.inherited, &recreated);  // made by criu-fast (restore/ghosts.h)
  kinds::RestoreContext files{ctx.dir, ctx.files->shmem, &recreated, ctx.files->tcp_close};
  RETURN_IF_ERROR(CreateOwnedFiles(*ctx.files, core.pid(), files, &ctx.inherited));
  // What the children inherit from the objects (a controlling terminal).
  for (const kinds::SharedObject& o : ctx.files->objects) {
    RETURN_IF_ERROR(o.kind->BeforeChildren(o, core, ctx.inherited));
  }
  const ArgsPlan plan = PlanArgs(core);
  // Memory first where children share pages with it: they get them by fork.
  MemoryStep mem;
  const bool early = ChildrenInherit(ctx);
  if (early) RETURN_IF_ERROR(PremapAndFill(ctx, plan, received, &recreated, &mem));
  RETURN_IF_ERROR(CreateChildren(ctx, early ? &mem.layout.vmas : nullptr));
  // Then its own: umask, personality, limits, cwd.
  RETURN_IF_ERROR(kinds::ApplyInTask(core, kinds::TaskStep::kAfterChildren));
  if (!early) RETURN_IF_ERROR(PremapAndFill(ctx, plan, received, &recreated, &mem));
  const MemoryLayout& layout = mem.layout;

  TaskMessage msg{};
  msg.pid = core.pid();
  msg.tag = 'R';
  TaskReport& report = msg.report;
  uint64_t t2 = MonotonicNs();
  report.premap_ns = mem.premap_ns;
  report.fill_ns = mem.fill_ns;
  report.pages_filled = images.pagemap.data_pages();
  report.vmas_protected_early = static_cast<uint64_t>(
      std::count_if(layout.vmas.begin(), layout.vmas.end(), [](const PremappedVma& v) { return v.protected_early; }));

  int exe_fd = open(core.mm().exe_path().c_str(), O_RDONLY | O_CLOEXEC);
  if (exe_fd < 0) return ErrnoStatus("open executable " + core.mm().exe_path());
  if (!core.fdt_shared()) {
    RETURN_IF_ERROR(RestoreFds(core, files, ctx.inherited, {&ctx.report_fd, &exe_fd},
                               HasTableSharers(*ctx.images, ctx.index)));
  } else if (files.recreated) {
    kinds::RemoveRecreated(*files.recreated);  // the owner placed the table
  }
  RETURN_IF_ERROR(kinds::ApplyRoot(core));
  report.files_ns = MonotonicNs() - t2;
  FAULT_POINT("restore-jump");

  auto* args = reinterpret_cast<cf_rst_args*>(layout.args);
  RETURN_IF_ERROR(BuildArgs(core, layout, plan, exe_fd, args));

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
  // Traced since before the fill (restore/task.h): criu-fast's death kills
  // us from here on. The restorer sets the image's signal.
  prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);

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
  Status s;
  // The tree's network namespace (kinds/netns.h): the children inherit it.
  if (ctx.index == 0 && ctx.netns >= 0 && setns(ctx.netns, CLONE_NEWNET) != 0) {
    s = ErrnoStatus("enter the tree's network namespace");
  }
  if (s.ok()) s = JoinOwnCgroups(ctx);
  if (s.ok()) s = Prepare(ctx);
  TaskMessage msg{};
  msg.pid = getpid();
  msg.tag = 'E';
  snprintf(msg.error, sizeof(msg.error), "%s", s.ToString().c_str());
  (void)!write(ctx.report_fd, &msg, sizeof(msg));
  _exit(1);
}

bool ThreadsTracedFromCreation(const img::Process& core) {
  constexpr uint32_t kSeccompStrict = 1;  // SECCOMP_MODE_STRICT
  for (const img::Thread& t : core.threads()) {
    if (t.seccomp_mode() == kSeccompStrict) return true;
  }
  return false;
}

}  // namespace cf::restore
