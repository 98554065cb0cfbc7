// Tests of KillGuard on real processes: sleepers forked for each test.
#include "ptrace/kill_guard.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

namespace cf::tracing {
namespace {

// A child that sleeps until killed; unless |orphan|, it dies with this
// process too (a failed test leaves nothing behind).
pid_t Sleeper(bool orphan = false) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (!orphan) prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    for (;;) pause();
  }
  return pid;
}

// How |pid| (a child of this process) ended: its signal, or 0 while it
// still runs after a while.
int EndSignal(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
    usleep(5000);
  }
  return 0;
}

void KillAll(const std::vector<pid_t>& pids) {
  for (pid_t p : pids) {
    kill(p, SIGKILL);
    waitpid(p, nullptr, 0);
  }
}

TEST(KillGuardTest, CommitLetsTheProcessesRun) {
  std::vector<pid_t> pids = {Sleeper(), Sleeper(), Sleeper()};
  {
    auto guard = KillGuard::Start(pids);
    ASSERT_TRUE(guard.ok()) << guard.status().ToString();
    (*guard)->Commit();
  }
  for (pid_t p : pids) {
    int status = 0;
    EXPECT_EQ(waitpid(p, &status, WNOHANG), 0) << "process " << p << " ended";
  }
  KillAll(pids);
}

TEST(KillGuardTest, WithoutCommitKillsThem) {
  std::vector<pid_t> pids = {Sleeper(), Sleeper(), Sleeper()};
  {
    auto guard = KillGuard::Start(pids);
    ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  }
  for (pid_t p : pids) EXPECT_EQ(EndSignal(p), SIGKILL) << "process " << p;
}

// Another signal where the step sends another (a dump's --leave-stopped):
// without a commit each process gets SIGSTOP and lives on, stopped.
TEST(KillGuardTest, WithoutCommitSendsItsSignal) {
  std::vector<pid_t> pids = {Sleeper(), Sleeper()};
  {
    auto guard = KillGuard::Start(pids, SIGSTOP);
    ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  }
  for (pid_t p : pids) {
    int status = 0;
    EXPECT_EQ(waitpid(p, &status, WUNTRACED), p);
    EXPECT_TRUE(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP) << "process " << p << ": status " << status;
  }
  KillAll(pids);
}

// Without pidfds (no descriptor left to open them), by pid.
TEST(KillGuardTest, KillsByPidWithoutDescriptors) {
  std::vector<pid_t> pids = {Sleeper(), Sleeper()};
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  {
    // Room for the guard's pipe only.
    const int top = dup(0);
    ASSERT_GE(top, 0);
    close(top);
    rlimit low = old;
    low.rlim_cur = static_cast<rlim_t>(top) + 2;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    auto guard = KillGuard::Start(pids);
    const long no_room = syscall(SYS_pidfd_open, getpid(), 0);  // as for the guard's pidfds
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    EXPECT_LT(no_room, 0) << "a pidfd could be opened: the test proves nothing";
    ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  }
  for (pid_t p : pids) EXPECT_EQ(EndSignal(p), SIGKILL) << "process " << p;
}

// The case it is for: its owner killed with SIGKILL before the commit. The
// owner's sleepers are orphans then, reaped here (a child subreaper).
TEST(KillGuardTest, OwnerKilledKillsThem) {
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const pid_t owner = fork();
  if (owner == 0) {
    close(p[0]);
    pid_t kids[2] = {Sleeper(true), Sleeper(true)};
    auto guard = KillGuard::Start({kids[0], kids[1]});
    if (!guard.ok()) _exit(2);
    (void)!write(p[1], kids, sizeof(kids));
    raise(SIGKILL);
  }
  close(p[1]);
  pid_t kids[2] = {0, 0};
  ASSERT_EQ(read(p[0], kids, sizeof(kids)), static_cast<ssize_t>(sizeof(kids)));
  close(p[0]);
  EXPECT_EQ(EndSignal(owner), SIGKILL);
  for (pid_t k : kids) EXPECT_EQ(EndSignal(k), SIGKILL) << "process " << k;
  // The guard itself, an orphan too.
  while (waitpid(-1, nullptr, __WALL | WNOHANG) > 0) {
  }
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

}  // namespace
}  // namespace cf::tracing
