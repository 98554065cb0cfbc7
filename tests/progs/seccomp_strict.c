/* seccomp_strict W: strict seccomp in a thread and in a child process.
 *
 * A thread of this process and a child process each enter strict mode
 * (read, write, exit and sigreturn only) and echo bytes between two pipes;
 * the byte 'k' makes them call getpid, which strict mode answers by killing
 * the caller. The main thread stays without seccomp.
 *
 * On SIGUSR1 (once: the check kills both): the status files say mode 1 for
 * the thread and the child and 0 for the main thread; both echo a byte
 * (they run, and read and write are allowed); after 'k' the thread is gone
 * (joined) and the child was killed by SIGKILL.
 */
#include "prog_common.h"

#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

struct Echo {
  int in[2], out[2];
};

/* Strict mode from here on: raw read, write and getpid only. */
static void EchoLoop(struct Echo *e) {
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) != 0) return;
  for (;;) {
    char c;
    if (syscall(SYS_read, e->in[0], &c, 1) != 1) syscall(SYS_exit, 0);
    if (c == 'k') syscall(SYS_getpid); /* strict mode kills us here */
    syscall(SYS_write, e->out[1], &c, 1);
  }
}

static struct Echo te, ce;
static pthread_t th;
static volatile pid_t thread_tid;

static void *ThreadMain(void *arg) {
  thread_tid = (pid_t)syscall(SYS_gettid);
  EchoLoop(arg);
  return NULL;
}
static pid_t child;
static int checked;

static int Mode(const char *path) {
  char line[256];
  FILE *f = fopen(path, "r");
  int mode = -1;
  while (f && fgets(line, sizeof(line), f)) {
    if (sscanf(line, "Seccomp: %d", &mode) == 1) break;
  }
  if (f) fclose(f);
  return mode;
}

static void Pipes(struct Echo *e) {
  if (pipe(e->in) != 0 || pipe(e->out) != 0) cf_die("pipe");
}

/* One byte through the echo; the byte back, or -1. */
static int Roundtrip(struct Echo *e, char c) {
  if (write(e->in[1], &c, 1) != 1) return -1;
  char back = 0;
  return read(e->out[0], &back, 1) == 1 ? back : -1;
}

static void Check(void) {
  char path[128];
  if (checked++) {
    cf_failf("checked once already (the check kills the strict tasks)");
    return;
  }
  CF_CHECK(Mode("/proc/self/status") == 0, "main thread: Seccomp mode %d", Mode("/proc/self/status"));
  snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)thread_tid);
  CF_CHECK(Mode(path) == 1, "thread: Seccomp mode %d, want 1", Mode(path));
  snprintf(path, sizeof(path), "/proc/%d/status", (int)child);
  CF_CHECK(Mode(path) == 1, "child: Seccomp mode %d, want 1", Mode(path));
  CF_CHECK(Roundtrip(&te, 'x') == 'x', "the thread does not echo");
  CF_CHECK(Roundtrip(&ce, 'y') == 'y', "the child does not echo");

  /* A forbidden call: the strict task dies, and says nothing more (not
   * asked of tasks that are not strict: they would answer and live on). */
  if (cf_prog.fail[0]) return;
  const char k = 'k';
  CF_CHECK(write(te.in[1], &k, 1) == 1, "write k to the thread");
  CF_CHECK(pthread_join(th, NULL) == 0, "join the thread");
  CF_CHECK(write(ce.in[1], &k, 1) == 1, "write k to the child");
  int status = 0;
  CF_CHECK(waitpid(child, &status, 0) == child, "waitpid: %s", strerror(errno));
  CF_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child ended with status 0x%x, not SIGKILL", status);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "seccomp_strict W");
  Pipes(&ce);
  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    EchoLoop(&ce);
    _exit(1);
  }
  Pipes(&te);
  if (pthread_create(&th, NULL, ThreadMain, &te) != 0) cf_die("pthread_create");
  /* Both echo once they are in strict mode. */
  if (Roundtrip(&te, 'a') != 'a' || Roundtrip(&ce, 'b') != 'b') cf_die("no echo");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
