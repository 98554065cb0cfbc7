// The per-process property table (kinds/process_props.h): for each property,
// its read at dump and its apply at restore.
#include "kinds/process_props.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "common/io.h"
#include "common/log.h"
#include "kinds/ghost_node.h"
#include "kinds/seccomp.h"
#include "kinds/thread_props.h"

namespace cf::kinds {
namespace {

constexpr int kNumSignals = 64;
constexpr int kPrTimerCreateRestoreIds = 77;  // <linux/prctl.h>, newer than Debian 12's headers
constexpr int kPrTimerCreateRestoreIdsGet = 2;

std::string ProcPath(pid_t pid, const char* file) { return "/proc/" + std::to_string(pid) + "/" + file; }

// ---- ids: parent, process group and session --------------------------------

Status ReadIds(ProcessSource& src, img::Process* out) {
  ASSIGN_OR_RETURN(const proc::ProcStat* st, src.StatFile());
  out->set_ppid(st->ppid);
  out->set_pgid(st->pgid);
  out->set_sid(st->sid);
  return OkStatus();
}

// A process inherits both from its parent, so only a leader (or a member of
// a group led by another process of the tree, which may not exist yet:
// retried, bounded) has something to do.
Status ApplyIds(const img::Process& p) {
  // A shell job (--shell-job, kinds/tty_session.h): its session, and maybe
  // its group, are criu-fast's; a group of its own is made again.
  if (p.tty().outside_session()) {
    if (p.tty().outside_group()) return OkStatus();
  } else if (p.sid() == p.pid()) {
    if (setsid() < 0) return ErrnoStatus("setsid");
    return OkStatus();
  } else if (getsid(0) != p.sid()) {
    return Errorf("process %d was in session %d, which its parent did not pass on: not supported", p.pid(), p.sid());
  }
  if (getpgid(0) == p.pgid()) return OkStatus();
  for (int i = 0;; ++i) {
    if (setpgid(0, p.pgid()) == 0) return OkStatus();
    if (errno != EPERM || i == 2000) return ErrnoStatus("join process group " + std::to_string(p.pgid()));
    usleep(1000);
  }
}

// ---- name ----------------------------------------------------------------

Status ReadComm(ProcessSource& src, img::Process* out) {
  ASSIGN_OR_RETURN(const proc::ProcStat* st, src.StatFile());
  out->set_comm(st->comm);
  return OkStatus();
}

// The leader's own name is a thread property; one that was not read takes
// the process's.
void CommToArgs(const img::Process& p, ProcessArgs* out) {
  if (out->leader->comm[0] == 0) snprintf(out->leader->comm, sizeof(out->leader->comm), "%s", p.comm().c_str());
}

// ---- umask ---------------------------------------------------------------

Status ReadUmask(ProcessSource& src, img::Process* out) {
  ASSIGN_OR_RETURN(const proc::ProcStatus* st, src.StatusFile());
  out->set_umask(st->umask);
  return OkStatus();
}

Status ApplyUmask(const img::Process& p) {
  umask(p.umask());
  return OkStatus();
}

// ---- personality ---------------------------------------------------------

Status ReadPersonality(ProcessSource& src, img::Process* out) {
  ASSIGN_OR_RETURN(std::string pers, ReadFile(ProcPath(src.pid(), "personality")));
  out->set_personality(static_cast<uint32_t>(strtoul(pers.c_str(), nullptr, 16)));
  return OkStatus();
}

Status ApplyPersonality(const img::Process& p) {
  if (personality(0xffffffff) != static_cast<int>(p.personality())) personality(p.personality());
  return OkStatus();
}

// ---- resource limits -----------------------------------------------------

// From /proc/PID/limits, not prlimit(): prlimit() on a process of another
// uid needs CAP_SYS_RESOURCE, which root may lack (kernel.md).
Status ReadRlimits(ProcessSource& src, img::Process* out) {
  ASSIGN_OR_RETURN(std::vector<proc::RlimitInfo> limits, proc::ReadLimits(src.pid()));
  for (const proc::RlimitInfo& rl : limits) {
    img::Rlimit* l = out->add_rlimits();
    l->set_resource(rl.resource);
    l->set_cur(rl.cur);
    l->set_max(rl.max);
  }
  return OkStatus();
}

// Set by the restorer, last (restorer.c restore_rlimits): a low limit of
// descriptors or threads set here would fail the restore itself.
void RlimitsToArgs(const img::Process& p, ProcessArgs* out) {
  uint32_t n = 0;
  for (const img::Rlimit& l : p.rlimits()) {
    if (n == CF_RST_MAX_RLIMITS) break;
    out->args->rlimits[n++] = {l.resource(), 0, l.cur(), l.max()};
  }
  out->args->nr_rlimits = n;
}

// The calling process's oom_score_adj and loginuid where known (read by
// ReadInheritedState, then set by the applies below): a fork copies them
// along with the values they stand for.
std::optional<long> g_oom_score_adj;
std::optional<uint32_t> g_loginuid;

std::optional<long> OwnOomScoreAdj() {
  if (g_oom_score_adj) return g_oom_score_adj;
  auto v = ReadFile("/proc/self/oom_score_adj");
  if (!v.ok()) return std::nullopt;
  return strtol(v->c_str(), nullptr, 10);
}

Result<uint32_t> OwnLoginuid() {
  if (g_loginuid) return *g_loginuid;
  ASSIGN_OR_RETURN(std::string v, ReadFile("/proc/self/loginuid"));
  return static_cast<uint32_t>(strtoul(v.c_str(), nullptr, 10));
}

// ---- OOM score adjustment ------------------------------------------------

Status ReadOomScoreAdj(ProcessSource& src, img::Process* out) {
  ASSIGN_OR_RETURN(std::string v, ReadFile(ProcPath(src.pid(), "oom_score_adj")));
  out->set_oom_score_adj(static_cast<int32_t>(strtol(v.c_str(), nullptr, 10)));
  return OkStatus();
}

// The audit login uid (4294967295: never set). Unset in images of kernels
// without audit.
Status ReadLoginuid(ProcessSource& src, img::Process* out) {
  auto v = ReadFile(ProcPath(src.pid(), "loginuid"));
  if (!v.ok()) return OkStatus();
  out->set_loginuid(static_cast<uint32_t>(strtoul(v->c_str(), nullptr, 10)));
  return OkStatus();
}

// Set before the children are made: they inherit it. Setting it again once
// set needs CAP_AUDIT_CONTROL, which root has.
Status ApplyLoginuid(const img::Process& p) {
  if (!p.has_loginuid()) return OkStatus();
  auto have = OwnLoginuid();
  if (!have.ok()) return have.status().WithContext("process " + std::to_string(p.pid()) + " had a loginuid");
  if (*have == p.loginuid()) return OkStatus();
  const std::string want = std::to_string(p.loginuid());
  const int fd = open("/proc/self/loginuid", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open /proc/self/loginuid");
  const bool ok = write(fd, want.data(), want.size()) == static_cast<ssize_t>(want.size());
  const int err = errno;
  close(fd);
  if (ok) {
    g_loginuid = p.loginuid();
    return OkStatus();
  }
  g_loginuid.reset();  // after a failed write, read again where needed
  errno = err;
  return ErrnoStatus("set loginuid " + want);
}

// Going below the lowest value set with privilege (criu-fast's own, which
// the process inherited) needs CAP_SYS_RESOURCE: kept, and said.
Status ApplyOomScoreAdj(const img::Process& p) {
  const std::string want = std::to_string(p.oom_score_adj());
  const std::optional<long> have = OwnOomScoreAdj();
  if (have && *have == p.oom_score_adj()) return OkStatus();
  const int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open /proc/self/oom_score_adj");
  const bool ok = write(fd, want.data(), want.size()) == static_cast<ssize_t>(want.size());
  const int err = errno;
  close(fd);
  if (ok) {
    g_oom_score_adj = p.oom_score_adj();
    return OkStatus();
  }
  g_oom_score_adj.reset();  // after a failed write, read again where needed
  if (err == EACCES) {
    LOG_WARN("restore: process %d: oom_score_adj %d cannot be restored without CAP_SYS_RESOURCE", p.pid(),
             p.oom_score_adj());
    return OkStatus();
  }
  return ErrnoStatus(err, "set oom_score_adj " + want);
}

// ---- transparent huge pages disabled (PR_SET_THP_DISABLE) -----------------

Status ReadThpDisabled(ProcessSource& src, img::Process* out) {
  ASSIGN_OR_RETURN(const proc::ProcStatus* st, src.StatusFile());
  out->set_thp_disabled(st->thp_enabled == 0);
  return OkStatus();
}

// Inherited from criu-fast: set either way when it differs.
Status ApplyThpDisabled(const img::Process& p) {
  const int want = p.thp_disabled() ? 1 : 0;
  if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == want) return OkStatus();
  if (prctl(PR_SET_THP_DISABLE, want, 0, 0, 0) != 0) return ErrnoStatus("PR_SET_THP_DISABLE");
  return OkStatus();
}

// ---- working directory and root ------------------------------------------

// A removed working directory (readlink says "PATH (deleted)") is made
// again at restore, entered and removed at once: the process holds a removed
// directory again (kinds/ghost_node.h). A deleted fd on it is then opened
// through /proc/self/cwd (kinds/directory.cc).
Status ReadCwdRoot(ProcessSource& src, img::Process* out) {
  ASSIGN_OR_RETURN(std::string cwd, ReadLink(ProcPath(src.pid(), "cwd")));
  ASSIGN_OR_RETURN(std::string root, ReadLink(ProcPath(src.pid(), "root")));
  struct stat sb;
  if (StripDeleted(cwd) != cwd && stat(ProcPath(src.pid(), "cwd").c_str(), &sb) == 0 && sb.st_nlink == 0) {
    cwd = StripDeleted(cwd);
    *out->mutable_cwd_ghost() = GhostOf(sb, "");
  }
  out->set_cwd(cwd);
  out->set_root(root);
  return OkStatus();
}

// "/proc/PID (deleted)": a working directory in the /proc directory of a
// process that died (the kernel unhashed it). Returns PID, or 0.
pid_t DeadProcDir(const std::string& cwd) {
  constexpr char kProc[] = "/proc/", kTail[] = " (deleted)";
  if (cwd.rfind(kProc, 0) != 0 || StripDeleted(cwd) == cwd) return 0;
  const std::string digits = cwd.substr(sizeof(kProc) - 1, cwd.size() - (sizeof(kProc) - 1) - (sizeof(kTail) - 1));
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return static_cast<pid_t>(std::stoi(digits));
}

// Enters such a directory again: a child made with that pid exits at once;
// its /proc directory, opened while it is a zombie, is unhashed when it is
// reaped, as the old one was.
Status EnterDeadProcDir(pid_t pid, const std::string& cwd) {
  pid_t want = pid;
  struct clone_args args {};
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uint64_t>(&want);
  args.set_tid_size = 1;
  const long child = syscall(SYS_clone3, &args, sizeof(args));
  if (child < 0) return ErrnoStatus("make process " + std::to_string(pid) + " for the working directory " + cwd);
  if (child == 0) _exit(0);
  siginfo_t si;
  waitid(P_PID, static_cast<id_t>(child), &si, WEXITED | WNOWAIT);
  // Entered while the child is a zombie: a reaped process's directory
  // cannot be entered, only kept.
  const std::string dir = "/proc/" + std::to_string(child);
  const int r = chdir(dir.c_str());
  const int err = errno;
  waitpid(static_cast<pid_t>(child), nullptr, 0);
  if (r != 0) return Error("enter " + dir + " for the working directory " + cwd, err);
  return OkStatus();
}

// The root is not changed here: the process still opens its files and
// mappings by criu-fast's paths. ApplyRoot does it last.
Status ApplyCwdRoot(const img::Process& p) {
  if (const pid_t dead = DeadProcDir(p.cwd()); dead != 0) return EnterDeadProcDir(dead, p.cwd());
  if (!p.has_cwd_ghost()) {
    if (chdir(p.cwd().c_str()) != 0) return ErrnoStatus("chdir " + p.cwd());
    return OkStatus();
  }
  std::map<std::string, std::string> made;
  Result<std::string> at = MakeGhostNode("cwd", p.cwd(), p.cwd_ghost(), &made);
  Status s = at.ok() ? OkStatus() : at.status();
  if (s.ok() && chdir(at->c_str()) != 0) s = ErrnoStatus("chdir " + *at + " (the removed " + p.cwd() + " made again)");
  RemoveRecreated(made);
  return s;
}

// ---- credentials and supplementary groups --------------------------------

// no_new_privs is saved, not set again: the restored process keeps
// criu-fast's. The uids, gids and capabilities here are the leader's; each
// thread has its own too (kinds/thread_props.cc), which the restorer sets.
Status ReadCreds(ProcessSource& src, img::Process* out) {
  ASSIGN_OR_RETURN(const proc::ProcStatus* st, src.StatusFile());
  img::Creds* c = out->mutable_creds();
  c->set_uid(st->uid[0]);
  c->set_euid(st->uid[1]);
  c->set_suid(st->uid[2]);
  c->set_fsuid(st->uid[3]);
  c->set_gid(st->gid[0]);
  c->set_egid(st->gid[1]);
  c->set_sgid(st->gid[2]);
  c->set_fsgid(st->gid[3]);
  for (uint32_t g : st->groups) c->add_groups(g);
  c->set_cap_inh(st->cap_inh);
  c->set_cap_prm(st->cap_prm);
  c->set_cap_eff(st->cap_eff);
  c->set_cap_bnd(st->cap_bnd);
  c->set_cap_amb(st->cap_amb);
  c->set_no_new_privs(st->no_new_privs);
  return OkStatus();
}

Status OneItem(ProcessSource&, img::Process*, std::vector<int64_t>* items) {
  items->push_back(0);
  return OkStatus();
}

// Read once (ReadInheritedState: before the tree is forked).
uint32_t CapLastCap() {
  static const uint32_t last = [] {
    auto v = ReadFile("/proc/sys/kernel/cap_last_cap");
    return v.ok() ? static_cast<uint32_t>(strtoul(v->c_str(), nullptr, 10)) : 40;  // CAP_CHECKPOINT_RESTORE
  }();
  return last;
}

// The uids, gids and capabilities are each thread's (kinds/thread_props.cc,
// the leader's included); what they share goes here: the groups, changed
// (by every thread) only when they differ from ours.
void CredsToArgs(const img::Process& p, ProcessArgs* out) {
  const img::Creds& c = p.creds();
  const int ngroups = getgroups(0, nullptr);
  std::vector<gid_t> groups(static_cast<size_t>(std::max(ngroups, 0)));
  const bool groups_ok = ngroups >= 0 && getgroups(ngroups, groups.data()) == ngroups;
  bool same = groups_ok && ngroups == c.groups_size();
  for (int i = 0; same && i < ngroups; ++i) same = groups[static_cast<size_t>(i)] == c.groups(i);
  cf_rst_args* a = out->args;
  a->cap_last_cap = CapLastCap();
  a->change_groups = same ? 0 : 1;
  a->nr_groups = static_cast<uint32_t>(c.groups_size());
  for (uint32_t i = 0; i < a->nr_groups; ++i) out->groups[i] = c.groups(static_cast<int>(i));
}

// ---- securebits (remote) ---------------------------------------------------

const ProcessRemoteRead kSecurebitsRead = {
    OneItem,
    nullptr,
    0,
    1,
    {{{__NR_prctl, "prctl(PR_GET_SECUREBITS)",
       [](int64_t, uint64_t) { return std::array<uint64_t, 6>{PR_GET_SECUREBITS, 0, 0, 0, 0, 0}; }},
      {}}},
    [](size_t, int64_t, const uint8_t*, const long* results, img::Process* p) {
      p->mutable_creds()->set_securebits(static_cast<uint32_t>(results[0]));
    },
};

// Securebits that differ from ours make every thread set its capabilities.
void SecurebitsToArgs(const img::Process& p, ProcessArgs* out) {
  cf_rst_args* a = out->args;
  a->securebits = p.creds().securebits();
  if (prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) != static_cast<int>(a->securebits)) a->change_securebits = 1;
}

// ---- seccomp ---------------------------------------------------------------

// The leader's mode, for `show`; each thread's mode and filters are its
// own (kinds/seccomp.h), and go to the args with the filters.
Status ReadSeccomp(ProcessSource& src, img::Process* out) {
  ASSIGN_OR_RETURN(const proc::ProcStatus* st, src.StatusFile());
  out->mutable_creds()->set_seccomp_mode(st->seccomp);
  return OkStatus();
}

// ---- signal handlers (remote) --------------------------------------------

struct KernelSigaction {  // the kernel's struct sigaction on x86-64
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};

// Every signal has its entry (1..64, in order); only signals with a handler
// or ignored (SigCgt, SigIgn) are asked for, and SIGCHLD, whose flags matter
// even with the default action (SA_NOCLDWAIT, SA_NOCLDSTOP). The others have
// the default action and no flag that changes anything, and each remote call
// is a few tens of µs of frozen time.
Status SigactionItems(ProcessSource& src, img::Process* p, std::vector<int64_t>* items) {
  ASSIGN_OR_RETURN(const proc::ProcStatus* st, src.StatusFile());
  const uint64_t asked = st->sig_cgt | st->sig_ign | (1ull << (SIGCHLD - 1));
  for (int sig = 1; sig <= kNumSignals; ++sig) {
    p->add_sigactions()->set_signo(static_cast<uint32_t>(sig));
    if (asked & (1ull << (sig - 1))) items->push_back(sig);
  }
  return OkStatus();
}

const ProcessRemoteRead kSigactionsRead = {
    SigactionItems,
    "signal",
    sizeof(KernelSigaction),
    1,
    {{{__NR_rt_sigaction, "rt_sigaction",
       [](int64_t sig, uint64_t out) { return std::array<uint64_t, 6>{static_cast<uint64_t>(sig), 0, out, 8, 0, 0}; }},
      {}}},
    [](size_t, int64_t sig, const uint8_t* out, const long*, img::Process* p) {
      KernelSigaction k;
      memcpy(&k, out, sizeof(k));
      img::SigAction* a = p->mutable_sigactions(static_cast<int>(sig - 1));
      a->set_handler(k.handler);
      a->set_flags(k.flags);
      a->set_restorer(k.restorer);
      a->set_mask(k.mask);
    },
};

void SigactionsToArgs(const img::Process& p, ProcessArgs* out) {
  cf_rst_args* a = out->args;
  for (const img::SigAction& s : p.sigactions()) {
    const uint32_t sig = s.signo();
    if (sig < 1 || sig > CF_RST_NSIG || sig == SIGKILL || sig == SIGSTOP) continue;
    a->sigactions[sig] = {s.handler(), s.flags(), s.restorer(), s.mask()};
    a->sigaction_valid |= 1ull << (sig - 1);
  }
}

// ---- interval timers (remote) --------------------------------------------

Status ItimerItems(ProcessSource&, img::Process*, std::vector<int64_t>* items) {
  *items = {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF};
  return OkStatus();
}

const ProcessRemoteRead kItimersRead = {
    ItimerItems,
    "itimer",
    sizeof(itimerval),
    1,
    {{{__NR_getitimer, "getitimer",
       [](int64_t which, uint64_t out) {
         return std::array<uint64_t, 6>{static_cast<uint64_t>(which), out, 0, 0, 0, 0};
       }},
      {}}},
    [](size_t, int64_t which, const uint8_t* out, const long*, img::Process* p) {
      itimerval v;
      memcpy(&v, out, sizeof(v));
      img::ITimer* t = p->add_itimers();
      t->set_which(static_cast<uint32_t>(which));
      t->set_interval_sec(static_cast<uint64_t>(v.it_interval.tv_sec));
      t->set_interval_usec(static_cast<uint64_t>(v.it_interval.tv_usec));
      t->set_value_sec(static_cast<uint64_t>(v.it_value.tv_sec));
      t->set_value_usec(static_cast<uint64_t>(v.it_value.tv_usec));
    },
};

void ItimersToArgs(const img::Process& p, ProcessArgs* out) {
  for (const img::ITimer& t : p.itimers()) {
    if (t.which() > 2) continue;
    out->args->itimers[t.which()] = {static_cast<int64_t>(t.interval_sec()), static_cast<int64_t>(t.interval_usec()),
                                     static_cast<int64_t>(t.value_sec()), static_cast<int64_t>(t.value_usec())};
  }
}

// ---- program break (remote) ----------------------------------------------

const ProcessRemoteRead kBrkRead = {
    OneItem,
    nullptr,
    0,
    1,
    {{{__NR_brk, "brk", [](int64_t, uint64_t) { return std::array<uint64_t, 6>{}; }}, {}}},
    [](size_t, int64_t, const uint8_t*, const long* results, img::Process* p) {
      p->mutable_mm()->set_brk(static_cast<uint64_t>(results[0]));
    },
};

void BrkToArgs(const img::Process& p, ProcessArgs* out) { out->args->mm.brk = p.mm().brk(); }

// ---- child subreaper (remote) ----------------------------------------------

const ProcessRemoteRead kSubreaperRead = {
    OneItem,
    nullptr,
    sizeof(int),
    1,
    {{{__NR_prctl, "prctl(PR_GET_CHILD_SUBREAPER)",
       [](int64_t, uint64_t out) { return std::array<uint64_t, 6>{PR_GET_CHILD_SUBREAPER, out, 0, 0, 0, 0}; }},
      {}}},
    [](size_t, int64_t, const uint8_t* out, const long*, img::Process* p) {
      int v;
      memcpy(&v, out, sizeof(v));
      p->set_child_subreaper(v != 0);
    },
};

// Set before the children exist, as the process had it while they lived.
Status ApplySubreaper(const img::Process& p) {
  if (!p.child_subreaper()) return OkStatus();
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return ErrnoStatus("PR_SET_CHILD_SUBREAPER");
  return OkStatus();
}

// ---- membarrier registrations (remote) ------------------------------------
//
// The registrations belong to the mm, which the restored process keeps
// from its fork to its end (the restorer moves VMAs, it does not exec): the
// process registers again itself.

constexpr int kMembarrierGetRegistrations = 1 << 9;  // Linux 6.3, newer than Debian 12's headers

bool KernelReportsMembarrier() {
  static const bool yes = syscall(__NR_membarrier, kMembarrierGetRegistrations, 0, 0) >= 0;
  return yes;
}

// Kernels before 6.3 cannot tell: nothing read, nothing restored.
Status MembarrierItems(ProcessSource&, img::Process*, std::vector<int64_t>* items) {
  if (KernelReportsMembarrier()) items->push_back(0);
  return OkStatus();
}

const ProcessRemoteRead kMembarrierRead = {
    MembarrierItems,
    nullptr,
    0,
    1,
    {{{__NR_membarrier, "membarrier(GET_REGISTRATIONS)",
       [](int64_t, uint64_t) { return std::array<uint64_t, 6>{kMembarrierGetRegistrations, 0, 0, 0, 0, 0}; }},
      {}}},
    [](size_t, int64_t, const uint8_t*, const long* results, img::Process* p) {
      p->set_membarrier_registrations(static_cast<uint32_t>(results[0]));
    },
};

// Each bit is the REGISTER command that made it.
Status ApplyMembarrier(const img::Process& p) {
  const uint32_t regs = p.membarrier_registrations();
  for (int bit = 0; bit < 32; ++bit) {
    if (!(regs & (1u << bit))) continue;
    if (syscall(__NR_membarrier, 1 << bit, 0, 0) != 0) {
      return ErrnoStatus("membarrier register command " + std::to_string(1 << bit));
    }
  }
  return OkStatus();
}

// ---- POSIX timers (/proc/PID/timers, then remote) -------------------------
//
// /proc/PID/timers names each timer's id, clock and notification (signal,
// sigev_value, the process or thread signalled). The time left to the next
// expiry and the interval only the task can read: timer_gettime and
// timer_getoverrun run inside it. Both only read, so a dump with -R leaves
// the timers as they were.
//
// The restorer recreates each timer under its id with
// PR_TIMER_CREATE_RESTORE_IDS (blobs/restorer/restorer.c). Refused here, so
// that the target runs on: timers when this kernel lacks that prctl (a
// restore could not give them their ids back), timers on the CPU clock of
// another task (negative clock ids: that task's clock would have to exist
// first), and timers on a thread's own CPU clock in a multi-threaded process
// (which thread made it is not visible).

Status CheckTimer(const proc::PosixTimerInfo& t, const img::Process& p) {
  const pid_t pid = p.pid();
  if (t.clock_id < 0) {
    return Errorf("process %d: POSIX timer %d runs on the CPU clock of another task (clock id %d): not supported",
                  pid, t.id, t.clock_id);
  }
  if (t.clock_id == CLOCK_THREAD_CPUTIME_ID && p.threads_size() > 1) {
    return Errorf("process %d: POSIX timer %d runs on a thread's CPU clock in a process of %d threads: not supported",
                  pid, t.id, p.threads_size());
  }
  if (t.notify & SIGEV_THREAD_ID) {
    const bool ours = std::any_of(p.threads().begin(), p.threads().end(),
                                  [&](const img::Thread& th) { return th.tid() == t.notify_pid; });
    if (!ours) {
      return Errorf("process %d: POSIX timer %d signals thread %d, which is not one of its threads", pid, t.id,
                    t.notify_pid);
    }
  }
  return OkStatus();
}

// Needs the threads (collected before the remote reads).
Status TimerItems(ProcessSource& src, img::Process* p, std::vector<int64_t>* items) {
  ASSIGN_OR_RETURN(std::vector<proc::PosixTimerInfo> timers, proc::ReadPosixTimers(src.pid()));
  if (timers.empty()) return OkStatus();
  if (!KernelRestoresTimerIds()) {
    return Errorf("process %d has %zu POSIX timers (the first id %d) and this kernel cannot recreate timer ids "
                  "(no PR_TIMER_CREATE_RESTORE_IDS, see `criu-fast check`): not supported",
                  src.pid(), timers.size(), timers[0].id);
  }
  for (const proc::PosixTimerInfo& t : timers) RETURN_IF_ERROR(CheckTimer(t, *p));
  for (const proc::PosixTimerInfo& t : timers) {
    img::PosixTimer* out = p->add_posix_timers();
    out->set_id(t.id);
    out->set_clock_id(t.clock_id);
    out->set_signo(t.signo);
    out->set_notify(t.notify);
    if (t.notify & SIGEV_THREAD_ID) out->set_notify_tid(t.notify_pid);
    out->set_sigev_value(t.sigev_value);
    items->push_back(t.id);
  }
  return OkStatus();
}

const ProcessRemoteRead kPosixTimersRead = {
    TimerItems,
    "timer",
    sizeof(itimerspec),
    2,
    {{{__NR_timer_gettime, "timer_gettime",
       [](int64_t id, uint64_t out) { return std::array<uint64_t, 6>{static_cast<uint64_t>(id), out, 0, 0, 0, 0}; }},
      {__NR_timer_getoverrun, "timer_getoverrun",
       [](int64_t id, uint64_t) { return std::array<uint64_t, 6>{static_cast<uint64_t>(id), 0, 0, 0, 0, 0}; }}}},
    [](size_t index, int64_t, const uint8_t* out, const long* results, img::Process* p) {
      itimerspec v;
      memcpy(&v, out, sizeof(v));
      img::PosixTimer* t = p->mutable_posix_timers(static_cast<int>(index));
      t->set_interval_sec(static_cast<uint64_t>(v.it_interval.tv_sec));
      t->set_interval_nsec(static_cast<uint64_t>(v.it_interval.tv_nsec));
      t->set_value_sec(static_cast<uint64_t>(v.it_value.tv_sec));
      t->set_value_nsec(static_cast<uint64_t>(v.it_value.tv_nsec));
      t->set_overrun(static_cast<int32_t>(results[1]));
    },
};

// Created by the restorer under their ids, after the threads.
void PosixTimersToArgs(const img::Process& p, ProcessArgs* out) {
  cf_rst_args* a = out->args;
  for (const img::PosixTimer& t : p.posix_timers()) {
    cf_rst_posix_timer& d = out->posix_timers[a->nr_posix_timers++];
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
}

// ---- the process-wide signal queue -----------------------------------------

Status ReadSharedPending(ProcessSource& src, img::Process* out) {
  return PeekSignals(src.pid(), true, out->mutable_shared_pending());
}

// Queued by the restorer before the threads' own queues.
void SharedPendingToArgs(const img::Process& p, ProcessArgs* out) {
  ThreadArgs q{nullptr, out->siginfo, out->nr_siginfo, out->max_siginfo};
  for (const img::SigInfo& si : p.shared_pending()) AddSigInfo(si, 0, &q);
}

// Read in this order at dump (the remote reads after every read by
// criu-fast and after the threads). The in_task applies run in this order
// within their step; the restorer applies the to_args part in an order of its
// own (restorer.c: sigactions, itimers, creds, timers, signals).
constexpr TaskStep kBefore = TaskStep::kBeforeChildren;
constexpr TaskStep kAfter = TaskStep::kAfterChildren;
constexpr ProcessProperty kProperties[] = {
    {"ids", ReadIds, nullptr, ApplyIds, kBefore, nullptr},
    {"seccomp", ReadSeccomp, nullptr, nullptr, kAfter, SeccompToArgs},
    {"loginuid", ReadLoginuid, nullptr, ApplyLoginuid, kBefore, nullptr},
    {"comm", ReadComm, nullptr, nullptr, kAfter, CommToArgs},
    {"umask", ReadUmask, nullptr, ApplyUmask, kAfter, nullptr},
    {"personality", ReadPersonality, nullptr, ApplyPersonality, kAfter, nullptr},
    {"rlimits", ReadRlimits, nullptr, nullptr, kAfter, RlimitsToArgs},
    {"oom_score_adj", ReadOomScoreAdj, nullptr, ApplyOomScoreAdj, kAfter, nullptr},
    {"thp_disabled", ReadThpDisabled, nullptr, ApplyThpDisabled, kAfter, nullptr},
    {"cwd_root", ReadCwdRoot, nullptr, ApplyCwdRoot, kAfter, nullptr},
    {"creds", ReadCreds, nullptr, nullptr, kAfter, CredsToArgs},
    {"shared_pending", ReadSharedPending, nullptr, nullptr, kAfter, SharedPendingToArgs, true},
    {"sigactions", nullptr, &kSigactionsRead, nullptr, kAfter, SigactionsToArgs},
    {"itimers", nullptr, &kItimersRead, nullptr, kAfter, ItimersToArgs},
    {"brk", nullptr, &kBrkRead, nullptr, kAfter, BrkToArgs},
    {"posix_timers", nullptr, &kPosixTimersRead, nullptr, kAfter, PosixTimersToArgs},
    {"child_subreaper", nullptr, &kSubreaperRead, ApplySubreaper, kBefore, nullptr},
    {"membarrier", nullptr, &kMembarrierRead, ApplyMembarrier, kAfter, nullptr},
    {"securebits", nullptr, &kSecurebitsRead, nullptr, kAfter, SecurebitsToArgs},
};

}  // namespace

Status ApplyRoot(const img::Process& p) {
  if (p.root().empty() || p.root() == "/") return OkStatus();
  if (chroot(p.root().c_str()) != 0) return ErrnoStatus("chroot " + p.root());
  return OkStatus();
}

Result<const proc::ProcStat*> ProcessSource::StatFile() {
  if (!stat_) {
    ASSIGN_OR_RETURN(proc::ProcStat st, proc::ReadStat(pid_));
    stat_ = std::move(st);
  }
  return &*stat_;
}

Result<const proc::ProcStatus*> ProcessSource::StatusFile() {
  if (!status_) {
    ASSIGN_OR_RETURN(proc::ProcStatus st, proc::ReadStatus(pid_));
    status_ = std::move(st);
  }
  return &*status_;
}

std::span<const ProcessProperty> ProcessProperties() { return kProperties; }

Status ApplyInTask(const img::Process& p, TaskStep step) {
  for (const ProcessProperty& prop : kProperties) {
    if (prop.in_task && prop.step == step) RETURN_IF_ERROR(prop.in_task(p));
  }
  return OkStatus();
}

void ReadInheritedState() {
  ReadOwnCredentials();
  (void)CapLastCap();
  g_oom_score_adj = OwnOomScoreAdj();
  if (auto l = OwnLoginuid(); l.ok()) g_loginuid = *l;
}

ProcessArrays ProcessArgsArrays(const img::Process& p) {
  ProcessArrays a;
  a.posix_timers = static_cast<uint32_t>(p.posix_timers_size());
  a.siginfo = static_cast<uint32_t>(p.shared_pending_size());
  a.groups = static_cast<uint32_t>(p.creds().groups_size());
  a.seccomp_bytes = SeccompArgsBytes(p);
  return a;
}

bool KernelRestoresTimerIds() {
  return prctl(kPrTimerCreateRestoreIds, kPrTimerCreateRestoreIdsGet, 0, 0, 0) >= 0;
}

}  // namespace cf::kinds
