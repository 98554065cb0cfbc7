/* fown W: owners and signals of open file descriptions (F_SETOWN_EX,
 * F_SETSIG) and O_ASYNC, which /proc does not show.
 *
 *   p[0], p[1]  a pipe, both ends O_ASYNC, owned by this process
 *               (F_OWNER_PID), signal SIGRTMIN+1
 *   e           an eventfd owned by this process group (F_OWNER_PGRP), no
 *               signal set, no O_ASYNC
 *   t           a /dev/null descriptor owned by the main thread
 *               (F_OWNER_TID), signal SIGRTMIN+2
 *
 * On SIGUSR1: the owners, signals and flags are as set, and a write into
 * the pipe raises SIGRTMIN+1 here (O_ASYNC and the owner work again).
 */
#include "prog_common.h"

#include <sys/eventfd.h>
#include <sys/syscall.h>

static int p[2], e, t;
static volatile sig_atomic_t got_io;

static void OnIo(int sig) {
  (void)sig;
  got_io++;
}

static void ExpectOwner(int fd, int type, pid_t pid, int sig, int async, const char *what) {
  struct f_owner_ex o = {0};
  CF_CHECK(fcntl(fd, F_GETOWN_EX, &o) == 0, "%s: F_GETOWN_EX: %s", what, strerror(errno));
  CF_CHECK((int)o.type == type && o.pid == pid, "%s: owner %d/%d, want %d/%d", what, o.type, o.pid, type, (int)pid);
  CF_CHECK(fcntl(fd, F_GETSIG) == sig, "%s: signal %d, want %d", what, fcntl(fd, F_GETSIG), sig);
  CF_CHECK(!!(fcntl(fd, F_GETFL) & O_ASYNC) == async, "%s: O_ASYNC %s", what, async ? "lost" : "set");
}

static void Check(void) {
  ExpectOwner(p[0], F_OWNER_PID, getpid(), SIGRTMIN + 1, 1, "pipe read end");
  ExpectOwner(p[1], F_OWNER_PID, getpid(), SIGRTMIN + 1, 1, "pipe write end");
  ExpectOwner(e, F_OWNER_PGRP, getpgrp(), 0, 0, "eventfd");
  ExpectOwner(t, F_OWNER_TID, (pid_t)syscall(SYS_gettid), SIGRTMIN + 2, 0, "/dev/null");
  got_io = 0;
  char c = 'x';
  CF_CHECK(write(p[1], &c, 1) == 1, "write the pipe: %s", strerror(errno));
  CF_CHECK(read(p[0], &c, 1) == 1, "read the pipe: %s", strerror(errno));
  CF_CHECK(got_io > 0, "no SIGRTMIN+1 from the pipe");
}

static void SetOwner(int fd, int type, pid_t pid, int sig) {
  struct f_owner_ex o = {type, pid};
  if (fcntl(fd, F_SETOWN_EX, &o) != 0) cf_die("F_SETOWN_EX");
  if (sig && fcntl(fd, F_SETSIG, sig) != 0) cf_die("F_SETSIG");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "fown W");
  struct sigaction sa = {0};
  sa.sa_handler = OnIo;
  sigaction(SIGRTMIN + 1, &sa, NULL);
  sigaction(SIGRTMIN + 2, &sa, NULL);
  if (pipe(p) != 0) cf_die("pipe");
  e = eventfd(0, 0);
  t = open("/dev/null", O_RDONLY);
  if (e < 0 || t < 0) cf_die("eventfd or /dev/null");
  SetOwner(p[0], F_OWNER_PID, getpid(), SIGRTMIN + 1);
  SetOwner(p[1], F_OWNER_PID, getpid(), SIGRTMIN + 1);
  SetOwner(e, F_OWNER_PGRP, getpgrp(), 0);
  SetOwner(t, F_OWNER_TID, (pid_t)syscall(SYS_gettid), SIGRTMIN + 2);
  for (int i = 0; i < 2; i++) {
    if (fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_ASYNC) != 0) cf_die("O_ASYNC");
  }
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
