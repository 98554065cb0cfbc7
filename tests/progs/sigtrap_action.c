/* sigtrap_action W: a process with a handler for SIGTRAP (a debugger-like
 * runtime, or zdtm's sigtrap01). The restorer stops on int3 with every
 * signal blocked, and the kernel then resets the SIGTRAP action to the
 * default: restore must set it again.
 * On SIGUSR1: the SIGTRAP action is still ours (handler, flags, mask), and
 * raise(SIGTRAP) runs the handler (with the default action it would kill us).
 */
#include "prog_common.h"

static volatile sig_atomic_t traps;

static void on_trap(int sig) {
  (void)sig;
  traps++;
}

static void check(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  CF_CHECK(sigaction(SIGTRAP, NULL, &sa) == 0, "sigaction: %s", strerror(errno));
  CF_CHECK(sa.sa_handler == on_trap, "SIGTRAP handler %p, want %p", (void *)sa.sa_handler, (void *)on_trap);
  CF_CHECK(sa.sa_flags & SA_RESTART, "SIGTRAP flags %#x lost SA_RESTART", sa.sa_flags);
  CF_CHECK(sigismember(&sa.sa_mask, SIGUSR2), "SIGTRAP mask lost SIGUSR2");
  if (cf_prog.fail[0]) return;
  const int before = traps;
  raise(SIGTRAP);
  CF_CHECK(traps == before + 1, "the SIGTRAP handler did not run");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "sigtrap_action W");
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_trap;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  if (sigaction(SIGTRAP, &sa, NULL) != 0) cf_die("sigaction");
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
