#include "restore/clone.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "common/log.h"
#include "proc/proc_parse.h"

namespace cf::restore {
using namespace ::cf::proc;  // /proc parsing, the layer below
namespace {

constexpr int kPidWaitMs = 10000;
constexpr int kPidPollMs = 20;

struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

}  // namespace

Result<pid_t> CloneWithPid(pid_t pid) {
  bool said = false;
  for (int waited = 0;; waited += kPidPollMs) {
    pid_t want = pid;
    CloneArgs args{};
    args.exit_signal = SIGCHLD;
    args.set_tid = reinterpret_cast<uint64_t>(&want);
    args.set_tid_size = 1;
    long r = syscall(SYS_clone3, &args, sizeof(args));
    if (r >= 0) return static_cast<pid_t>(r);
    if (errno != EEXIST) return ErrnoStatus("clone3 with pid " + std::to_string(pid));
    auto st = ReadStat(pid);
    if (st.ok() && st->state != 'Z' && st->state != 'X') {
      return Errorf("pid %d is in use by a running process (%s): cannot restore", pid, st->comm.c_str());
    }
    if (waited >= kPidWaitMs) return Errorf("pid %d stayed taken for %d ms", pid, kPidWaitMs);
    if (!said) {
      LOG_INFO("restore: waiting for pid %d to be released", pid);
      said = true;
    }
    usleep(kPidPollMs * 1000);
  }
}

}  // namespace cf::restore
