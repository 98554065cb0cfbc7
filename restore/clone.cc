// Creating processes with their PIDs, and zombies.
//
// A zombie is recreated the only way the kernel makes one: a child of the
// right parent, with the right pid, that dies and is not waited for. It is
// cloned with CLONE_UNTRACED and never seized, so criu-fast (which traces
// every other process of the tree) does not collect its death: the exit
// goes straight to its parent. The parent (the restored process, still in
// criu-fast's code) holds it on a pipe while it puts it into its process
// group, lets it die, waits until it is dead without reaping it (WNOWAIT),
// and checks what /proc says of it: group, session and wait status.
#include "restore/clone.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "common/fd.h"
#include "common/log.h"
#include "common/timer.h"
#include "proc/proc_parse.h"

namespace cf::restore {
using namespace ::cf::proc;  // /proc parsing, the layer below
namespace {

constexpr int kPidWaitMs = 10000;
// A pid whose process has just died may stay taken a few ms after its /proc
// entry went (measured after a dump that killed a process of 10,000
// descriptors: 1-36 ms): polled at 1 ms first, then less often.
constexpr int kPidPollFirstUs = 1000;
constexpr int kPidPollMaxUs = 20000;
// A group led by a process of the tree that has not made it yet.
constexpr int kGroupWaitMs = 2000;
constexpr uint32_t kCoreDumped = 0x80;  // in a wait status

struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

// A pipe a child waits on until the parent closes the write end.
struct Gate {
  UniqueFd r, w;
};

Status MakeGate(Gate* g) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  g->r.reset(p[0]);
  g->w.reset(p[1]);
  return OkStatus();
}

void PassGate(Gate* g) {
  g->w.reset();
  char c;
  while (read(g->r.get(), &c, 1) < 0 && errno == EINTR) {
  }
}

// In the new child: dies as |z| died.
[[noreturn]] void DieAs(const img::Zombie& z, Gate* gate) {
  PassGate(gate);
  if (z.sid() == z.pid()) (void)setsid();
  prctl(PR_SET_NAME, z.comm().c_str(), 0, 0, 0);
  // The parent reads si_uid in its waitid(): the zombie's real uid.
  (void)!setresgid(z.gid(), z.gid(), z.gid());
  (void)!setresuid(z.uid(), z.uid(), z.uid());
  const int sig = static_cast<int>(z.exit_status() & 0x7f);
  if (sig != 0) {
    // No core dump (it would take time and write a file): the status's
    // core-dumped bit is not restored.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct sigaction sa = {};
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, nullptr);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, nullptr);
    kill(getpid(), sig);
    kill(getpid(), SIGKILL);  // a signal that does not kill: the check below says so
  }
  _exit(static_cast<int>((z.exit_status() >> 8) & 0xff));
}

bool GroupExists(pid_t pgid) { return kill(-pgid, 0) == 0 || errno == EPERM; }

// Puts our child |pid| into group |pgid|, waiting (bounded) for a group led
// by another process of the tree to be made.
Status JoinGroup(pid_t pid, pid_t pgid) {
  for (int waited = 0;; ++waited) {
    if (setpgid(pid, pgid) == 0) return OkStatus();
    if (errno != EPERM || waited >= kGroupWaitMs) {
      return ErrnoStatus("zombie " + std::to_string(pid) + ": join process group " + std::to_string(pgid));
    }
    usleep(1000);
  }
}

void Reap(pid_t pid) {
  while (waitpid(pid, nullptr, __WALL) < 0 && errno == EINTR) {
  }
}

// A process at pid |pgid| that leads a group of that id, in our session,
// until |gate| is closed.
Result<pid_t> StartGroupHelper(pid_t pgid, Gate* gate) {
  ASSIGN_OR_RETURN(pid_t h, CloneWithPid(pgid, SIGCHLD, CLONE_UNTRACED));
  if (h == 0) {
    PassGate(gate);
    _exit(0);
  }
  if (setpgid(h, h) != 0) {
    Status s = ErrnoStatus("helper of process group " + std::to_string(pgid));
    kill(h, SIGKILL);
    Reap(h);
    return s;
  }
  LOG_DEBUG("restore: helper %d leads process group %d for its zombies", h, pgid);
  return h;
}

// What the kernel says of the new zombie is what the image says.
Status CheckZombie(const img::Zombie& z) {
  auto st = ReadStat(z.pid());
  if (!st.ok()) return st.status();
  const uint32_t want = z.exit_status() & ~kCoreDumped;
  if (st->state != 'Z' || st->pgid != z.pgid() || st->sid != z.sid() || (st->exit_code & ~kCoreDumped) != want) {
    return Errorf("zombie %d: came back as state %c, group %d, session %d, status %#x; want group %d, session %d, "
                  "status %#x",
                  z.pid(), st->state, st->pgid, st->sid, st->exit_code, z.pgid(), z.sid(), want);
  }
  return OkStatus();
}

Status CreateZombie(const img::Zombie& z, const std::set<pid_t>& tree) {
  const bool own_session = z.sid() == z.pid();
  if (!own_session && z.sid() != getsid(0)) {
    return Errorf("zombie %d was in session %d, its parent is in %d: not supported", z.pid(), z.sid(), getsid(0));
  }
  const bool join = !own_session && z.pgid() != getpgid(0);
  // Its group's leader is gone (not in the tree) and no one is in the group
  // yet: a helper makes it for the time the zombie joins.
  Gate helper_gate;
  std::optional<pid_t> helper;
  if (join && z.pgid() != z.pid() && !tree.count(z.pgid()) && !GroupExists(z.pgid())) {
    RETURN_IF_ERROR(MakeGate(&helper_gate));
    ASSIGN_OR_RETURN(helper, StartGroupHelper(z.pgid(), &helper_gate));
  }
  auto end_helper = [&] {
    if (!helper) return;
    helper_gate.w.reset();
    Reap(*helper);
    helper.reset();
  };

  Gate gate;
  Status s = MakeGate(&gate);
  if (!s.ok()) {
    end_helper();
    return s;
  }
  auto cloned = CloneWithPid(z.pid(), z.exit_signal(), CLONE_UNTRACED);
  if (!cloned.ok()) {
    end_helper();
    return cloned.status();
  }
  const pid_t pid = *cloned;
  if (pid == 0) {
    helper_gate.w.reset();
    DieAs(z, &gate);
  }
  s = join ? JoinGroup(pid, z.pgid()) : OkStatus();
  if (!s.ok()) kill(pid, SIGKILL);
  gate.w.reset();  // it may die now
  siginfo_t si;
  while (waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT | __WALL) < 0 && errno == EINTR) {
  }
  end_helper();
  RETURN_IF_ERROR(s);
  return CheckZombie(z);
}

}  // namespace

Result<pid_t> CloneWithPid(pid_t pid, int exit_signal, uint64_t flags) {
  bool said = false;
  const uint64_t start = MonotonicNs();
  for (int poll_us = kPidPollFirstUs;; poll_us = std::min(poll_us * 2, kPidPollMaxUs)) {
    pid_t want = pid;
    CloneArgs args{};
    args.flags = flags;
    args.exit_signal = static_cast<uint64_t>(exit_signal);
    args.set_tid = reinterpret_cast<uint64_t>(&want);
    args.set_tid_size = 1;
    long r = syscall(SYS_clone3, &args, sizeof(args));
    if (r >= 0) return static_cast<pid_t>(r);
    if (errno != EEXIST) return ErrnoStatus("clone3 with pid " + std::to_string(pid));
    auto st = ReadStat(pid);
    // Dying (PF_EXITING: a dump that killed it returns without waiting for
    // the kernel to tear it down) is waited for like a zombie.
    constexpr uint32_t kPfExiting = 0x4;
    if (st.ok() && st->state != 'Z' && st->state != 'X' && (st->flags & kPfExiting) == 0) {
      return Errorf("pid %d is in use by a running process (%s): cannot restore", pid, st->comm.c_str());
    }
    if (MonotonicNs() - start >= uint64_t{kPidWaitMs} * 1000000) {
      return Errorf("pid %d stayed taken for %d ms", pid, kPidWaitMs);
    }
    if (!said) {
      LOG_INFO("restore: waiting for pid %d to be released", pid);
      said = true;
    }
    usleep(static_cast<useconds_t>(poll_us));
  }
}

Status CreateZombies(const img::Process& self, const std::set<pid_t>& tree) {
  if (self.zombies_size() == 0) return OkStatus();
  // Until the restorer sets the process's own sigactions: SIGCHLD must not
  // be ignored (the kernel would reap the zombies at once), and another
  // exit signal must not kill us when it comes.
  struct sigaction dfl = {}, ign = {}, old_chld, old_other[65];
  dfl.sa_handler = SIG_DFL;
  ign.sa_handler = SIG_IGN;
  sigaction(SIGCHLD, &dfl, &old_chld);
  std::set<int> others;
  for (const img::Zombie& z : self.zombies()) {
    const int sig = z.exit_signal();
    if (sig > 0 && sig < 65 && sig != SIGCHLD && sig != SIGKILL && sig != SIGSTOP && others.insert(sig).second) {
      sigaction(sig, &ign, &old_other[sig]);
    }
  }
  Status s;
  for (const img::Zombie& z : self.zombies()) {
    s = CreateZombie(z, tree);
    if (!s.ok()) break;
    LOG_DEBUG("restore: zombie %d of %d recreated (status %#x)", z.pid(), self.pid(), z.exit_status());
  }
  for (int sig : others) sigaction(sig, &old_other[sig], nullptr);
  sigaction(SIGCHLD, &old_chld, nullptr);
  return s;
}

}  // namespace cf::restore
