/* signalfds W: signalfds with their masks and pending signals.
 *
 *   s1  SIGUSR2 and SIGRTMIN+1, non-blocking; s1d = dup(s1)
 *   s2  SIGHUP, blocking, close-on-exec; a SIGHUP is pending (blocked) at setup
 * All three signals are blocked (a signalfd reads only what is blocked).
 *
 * The driver sends SIGUSR2 from outside before each check. On SIGUSR1 it
 * reads s1d: wants that SIGUSR2 (sent by another process) and nothing else
 * (the pending SIGHUP is not in s1's mask); queues SIGRTMIN+1 with value 77
 * to itself and reads it through s1 with its value; reads the pending
 * SIGHUP through s2, then raises SIGHUP again for the next check.
 */
#include "prog_common.h"

#include <sys/signalfd.h>
#include <sys/syscall.h>

static int s1, s1d, s2;

static int Read(int fd, struct signalfd_siginfo *si) {
  ssize_t n = read(fd, si, sizeof(*si));
  if (n == (ssize_t)sizeof(*si)) return 1;
  return n < 0 && errno == EAGAIN ? 0 : -1;
}

static void Check(void) {
  struct signalfd_siginfo si;
  CF_CHECK(fcntl(s1, F_GETFL) & O_NONBLOCK, "s1 lost O_NONBLOCK");
  CF_CHECK(!(fcntl(s2, F_GETFL) & O_NONBLOCK) && fcntl(s2, F_GETFD) == FD_CLOEXEC, "s2's flags changed");
  CF_CHECK(syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, s1, s1d) == 0, "s1 and s1d are two files");

  int r = Read(s1d, &si);
  CF_CHECK(r == 1 && si.ssi_signo == SIGUSR2 && (pid_t)si.ssi_pid != getpid(),
           "s1: read %d gives signal %u from %u, want the driver's SIGUSR2", r, si.ssi_signo, si.ssi_pid);
  r = Read(s1, &si);
  CF_CHECK(r == 0, "s1: a second read gives %d (signal %u), want nothing (SIGHUP is not in its mask)", r,
           r == 1 ? si.ssi_signo : 0);

  union sigval v = {.sival_int = 77};
  CF_CHECK(sigqueue(getpid(), SIGRTMIN + 1, v) == 0, "sigqueue");
  r = Read(s1, &si);
  CF_CHECK(r == 1 && (int)si.ssi_signo == SIGRTMIN + 1 && si.ssi_int == 77,
           "s1: read %d gives signal %u value %d, want SIGRTMIN+1 with 77", r, si.ssi_signo, si.ssi_int);

  int fl = fcntl(s2, F_GETFL);
  fcntl(s2, F_SETFL, fl | O_NONBLOCK);
  r = Read(s2, &si);
  CF_CHECK(r == 1 && si.ssi_signo == SIGHUP, "s2: read %d gives signal %u, want the pending SIGHUP", r,
           si.ssi_signo);
  CF_CHECK(Read(s2, &si) == 0, "s2: more than one signal");
  fcntl(s2, F_SETFL, fl);
  raise(SIGHUP);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "signalfds W");
  sigset_t all, m1, m2;
  sigemptyset(&all);
  sigaddset(&all, SIGUSR2);
  sigaddset(&all, SIGRTMIN + 1);
  sigaddset(&all, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &all, NULL) != 0) cf_die("sigprocmask");
  sigemptyset(&m1);
  sigaddset(&m1, SIGUSR2);
  sigaddset(&m1, SIGRTMIN + 1);
  sigemptyset(&m2);
  sigaddset(&m2, SIGHUP);
  s1 = signalfd(-1, &m1, SFD_NONBLOCK);
  s2 = signalfd(-1, &m2, SFD_CLOEXEC);
  if (s1 < 0 || s2 < 0) cf_die("signalfd");
  s1d = dup(s1);
  raise(SIGHUP);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
