/* zombies W: a process with zombie children it has not waited for.
 *
 *   exit0    exited with 0
 *   exit7    exited with 7, as uid/gid 65534 (the parent's waitid sees si_uid)
 *   killed   killed by SIGKILL
 *   segv     killed by SIGSEGV
 *   clone    a clone child with no exit signal (seen only with __WALL), exit 5
 *   leader   exited 9 as the leader of its own process group, which a live
 *            child (member) joined
 *   orphan   exited 3 in a process group whose leader exited and was reaped
 *            (made with CLONE_PARENT by that leader)
 * The parent counts SIGCHLDs with a handler. On SIGUSR1 it checks, without
 * reaping (WNOWAIT, so it can check again after another dump), that each
 * zombie is still there with its pid, status, group and uid, that the member
 * is still in the leader's group, and that no SIGCHLD came since it was ready.
 */
#include "prog_common.h"

#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

enum { EXIT0, EXIT7, KILLED, SEGV, CLONE, LEADER, ORPHAN, NZ };
static const char *kNames[NZ] = {"exit0", "exit7", "killed", "segv", "clone", "leader", "orphan"};
static pid_t zpid[NZ];
static pid_t zpgid[NZ];
static int zcode[NZ], zstatus[NZ];
static uid_t zuid[NZ];
static pid_t member;
static volatile sig_atomic_t sigchld_count;

static void on_sigchld(int sig) {
  (void)sig;
  sigchld_count++;
}

static pid_t clone_raw(unsigned long flags) {
  return (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
}

/* No core file from the SIGSEGV child. */
static void no_core(void) { prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

static void wait_dead(pid_t pid) {
  siginfo_t si;
  while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | __WALL) != 0) {
    if (errno != EINTR) cf_die("waitid %d", pid);
  }
}

static void check(void) {
  for (int i = 0; i < NZ; i++) {
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)zpid[i], &si, WEXITED | WNOWAIT | WNOHANG | __WALL) != 0) {
      cf_failf("%s (%d): waitid: %s", kNames[i], zpid[i], strerror(errno));
      continue;
    }
    CF_CHECK(si.si_pid == zpid[i], "%s (%d): not a zombie (waitid gave pid %d)", kNames[i], zpid[i], si.si_pid);
    CF_CHECK(si.si_code == zcode[i] && si.si_status == zstatus[i], "%s: code %d status %d, want %d %d", kNames[i],
             si.si_code, si.si_status, zcode[i], zstatus[i]);
    CF_CHECK(si.si_uid == zuid[i], "%s: uid %d, want %d", kNames[i], (int)si.si_uid, (int)zuid[i]);
    CF_CHECK(getpgid(zpid[i]) == zpgid[i], "%s: group %d, want %d", kNames[i], getpgid(zpid[i]), zpgid[i]);
  }
  CF_CHECK(getpgid(member) == zpid[LEADER], "member: group %d, want %d", getpgid(member), zpid[LEADER]);
  CF_CHECK(sigchld_count == 0, "%d SIGCHLD since ready", (int)sigchld_count);
  /* The plain wait of the zombies of exit signal SIGCHLD, as a parent that
   * knows nothing of __WALL would see them. */
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  CF_CHECK(waitid(P_PID, (id_t)zpid[EXIT7], &si, WEXITED | WNOWAIT | WNOHANG) == 0 && si.si_pid == zpid[EXIT7],
           "exit7 not seen by a plain waitid");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "zombies W");
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGCHLD, &sa, NULL) != 0) cf_die("sigaction");
  const pid_t self_pgid = getpgid(0);

  for (int i = 0; i < NZ; i++) {
    zpgid[i] = self_pgid;
    zuid[i] = getuid();
  }
  zcode[EXIT0] = CLD_EXITED, zstatus[EXIT0] = 0;
  zcode[EXIT7] = CLD_EXITED, zstatus[EXIT7] = 7, zuid[EXIT7] = 65534;
  zcode[KILLED] = CLD_KILLED, zstatus[KILLED] = SIGKILL;
  zcode[SEGV] = CLD_KILLED, zstatus[SEGV] = SIGSEGV;
  zcode[CLONE] = CLD_EXITED, zstatus[CLONE] = 5;
  zcode[LEADER] = CLD_EXITED, zstatus[LEADER] = 9;
  zcode[ORPHAN] = CLD_EXITED, zstatus[ORPHAN] = 3;

  if ((zpid[EXIT0] = fork()) == 0) _exit(0);
  if ((zpid[EXIT7] = fork()) == 0) {
    if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) _exit(100);
    _exit(7);
  }
  if ((zpid[KILLED] = fork()) == 0) {
    kill(getpid(), SIGKILL);
    _exit(100);
  }
  if ((zpid[SEGV] = fork()) == 0) {
    no_core();
    *(volatile int *)0 = 1;
    _exit(100);
  }
  if ((zpid[CLONE] = clone_raw(0)) == 0) _exit(5);
  if (zpid[CLONE] < 0) cf_die("clone");

  int gate[2];
  if (pipe(gate) != 0) cf_die("pipe");
  if ((zpid[LEADER] = fork()) == 0) {
    setpgid(0, 0);
    close(gate[1]);
    char c;
    if (read(gate[0], &c, 1) < 0) _exit(100);  /* until the member joined */
    _exit(9);
  }
  setpgid(zpid[LEADER], zpid[LEADER]);
  zpgid[LEADER] = zpid[LEADER];
  if ((member = fork()) == 0) {
    close(gate[0]);
    close(gate[1]);
    if (setpgid(0, zpid[LEADER]) != 0) cf_die("member: setpgid");
    for (;;) cf_nap(50);
  }
  for (int i = 0; i < 2000 && getpgid(member) != zpid[LEADER]; i++) cf_nap(5);
  if (getpgid(member) != zpid[LEADER]) cf_die("member did not join the group");
  close(gate[0]);
  close(gate[1]);

  /* The orphan's group leader: forks it as our child, then exits (reaped). */
  int p[2];
  if (pipe(p) != 0) cf_die("pipe");
  pid_t gone = fork();
  if (gone == 0) {
    setpgid(0, 0);
    pid_t o = clone_raw(CLONE_PARENT | SIGCHLD);
    if (o == 0) _exit(3);
    if (write(p[1], &o, sizeof(o)) != sizeof(o)) _exit(100);
    _exit(0);
  }
  if (read(p[0], &zpid[ORPHAN], sizeof(pid_t)) != sizeof(pid_t)) cf_die("read orphan pid");
  close(p[0]);
  close(p[1]);
  zpgid[ORPHAN] = gone;
  while (waitpid(gone, NULL, 0) < 0 && errno == EINTR) {
  }

  for (int i = 0; i < NZ; i++) wait_dead(zpid[i]);
  sigchld_count = 0;
  check();
  if (cf_prog.fail[0]) cf_die("before the dump: %s", cf_prog.fail);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
