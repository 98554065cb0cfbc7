// Micro benchmark: what the kill guard (ptrace/kill_guard.h) adds to the
// last step of a restore or of a dump without -R.
//
//   BM_KillGuard/N  start a guard over N sleeping processes (a pidfd each,
//                   the guard process) and commit it (the guard exits, the
//                   pidfds are closed): the whole cost of one guarded step
// The processes are forked once per run and sleep; nothing is killed.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "ptrace/kill_guard.h"

namespace cf::tracing {
namespace {

void BM_KillGuard(benchmark::State& state) {
  std::vector<pid_t> pids;
  for (int64_t i = 0; i < state.range(0); ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;) pause();
    }
    pids.push_back(pid);
  }
  for (auto _ : state) {
    auto guard = KillGuard::Start(pids);
    if (!guard.ok()) {
      state.SkipWithError(guard.status().ToString().c_str());
      break;
    }
    (*guard)->Commit();
  }
  for (pid_t pid : pids) kill(pid, SIGKILL);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
}
BENCHMARK(BM_KillGuard)->Arg(3)->Arg(125)->Arg(500)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace cf::tracing
