/* e2e_reaper COMMAND [ARG...]: runs COMMAND (an end-to-end test driver) as
 * a child subreaper (PR_SET_CHILD_SUBREAPER) and reaps every process that
 * is reparented to it as soon as it dies, then exits with COMMAND's status
 * (128 + N when a signal N killed it).
 *
 * The test programs start detached (setsid -f), and a restore with -d leaves
 * the restored tree without its parent: without a subreaper both end up
 * children of the machine's init, and the init of these machines reaps them
 * only every second or two, while the drivers wait for each killed
 * program's pid to be free again (a restore needs it). Under this wrapper a
 * killed program is reaped at once.
 *
 * SIGTERM, SIGINT and SIGHUP are passed on to COMMAND.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t driver;

static void pass_on(int sig) {
  if (driver > 0) kill(driver, sig);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: e2e_reaper COMMAND [ARG...]\n");
    return 2;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    perror("e2e_reaper: PR_SET_CHILD_SUBREAPER");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = pass_on;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  /* Held until |driver| is known: one sent before would be lost. */
  sigset_t passed, old;
  sigemptyset(&passed);
  sigaddset(&passed, SIGTERM);
  sigaddset(&passed, SIGINT);
  sigaddset(&passed, SIGHUP);
  sigprocmask(SIG_BLOCK, &passed, &old);

  pid_t child = fork();
  if (child < 0) {
    perror("e2e_reaper: fork");
    return 2;
  }
  if (child == 0) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(argv[1], argv + 1);
    fprintf(stderr, "e2e_reaper: cannot run %s: %s\n", argv[1], strerror(errno));
    _exit(127);
  }
  driver = child;
  sigprocmask(SIG_SETMASK, &old, NULL);
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      perror("e2e_reaper: waitpid");
      return 2;
    }
    if (pid != child) continue; /* an orphan of the test: reaped */
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  }
}
