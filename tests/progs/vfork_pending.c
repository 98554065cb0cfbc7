/* vfork_pending W: a process stuck in a pending vfork(), which no dump can
 * stop (the kernel takes no ptrace stop while a vfork parent waits for its
 * child to exec or exit; CRIU's zdtm vfork00 is the same case).
 *
 * The root forks A; A vforks B, which waits in pause() (raw system calls
 * only: it shares A's memory). The root writes W/ready once A is in the
 * vfork wait. SIGUSR1: the root checks that A and B still exist, A still in
 * its vfork wait (state D), and writes PASS. When the root dies, B dies
 * (parent-death signal set by A before the vfork) and A with its group.
 */
#include "prog_common.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static pid_t a_pid;

static char state_of(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')');
  return p && p[1] == ' ' ? p[2] : 0;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "vfork_pending W");
  const pid_t root = getpid();
  a_pid = fork();
  if (a_pid < 0) cf_die("fork");
  if (a_pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != root) _exit(1);
    pid_t b = vfork();
    if (b == 0) {
      /* The child of vfork: only raw system calls. */
      syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      for (;;) syscall(SYS_pause);
    }
    _exit(0);
  }
  for (int i = 0; i < 500 && state_of(a_pid) != 'D'; i++) cf_nap(10);
  if (state_of(a_pid) != 'D') cf_die("A (%d) is not in its vfork wait", (int)a_pid);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      CF_CHECK(state_of(a_pid) == 'D', "A (%d) left its vfork wait: state %c", (int)a_pid, state_of(a_pid));
      cf_report();
    }
    cf_nap(100);
  }
}
