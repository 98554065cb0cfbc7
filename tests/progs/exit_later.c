/* exit_later W [CODE]: a program that ends by itself, with a known exit code,
 * when told to: for `criu-fast restore` without -d, which waits for the
 * restored process and exits with its status.
 *
 * State: a heap block with a known pattern and an initialized string.
 * SIGUSR1: the usual self-check of both. SIGUSR2: the main loop checks the
 * same and exits with CODE (default 7) if all is well, else writes
 * W/result "FAIL: ..." and exits with 9. SIGTERM keeps its default action
 * (death by signal).
 */
#include "prog_common.h"

#define BLOCK_WORDS 8192

static volatile sig_atomic_t usr2_pending;
static char data_text[] = "exit_later: initialized data";

static void on_usr2(int sig) {
  (void)sig;
  usr2_pending = 1;
}

static uint64_t word(size_t i) { return (i + 1) * 0x9E3779B97F4A7C15ULL ^ 0xABCDEF; }

static void check(const uint64_t *block) {
  for (size_t i = 0; i < BLOCK_WORDS; i++) {
    if (block[i] != word(i)) {
      cf_failf("heap word %zu is %#llx", i, (unsigned long long)block[i]);
      break;
    }
  }
  CF_CHECK(strcmp(data_text, "exit_later: initialized data") == 0, "data_text changed: '%.40s'", data_text);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "exit_later W [CODE]");
  const int code = argc > 2 ? atoi(argv[2]) : 7;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_usr2;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR2, &sa, NULL) != 0) cf_die("sigaction(SIGUSR2)");
  uint64_t *block = malloc(BLOCK_WORDS * sizeof(uint64_t));
  if (!block) cf_die("malloc");
  for (size_t i = 0; i < BLOCK_WORDS; i++) block[i] = word(i);
  cf_ready();

  for (;;) {
    if (usr2_pending) {
      usr2_pending = 0;
      check(block);
      if (cf_prog.fail[0]) {
        cf_report();
        exit(9);
      }
      exit(code);
    }
    if (cf_take_usr1()) {
      check(block);
      cf_report();
    }
    cf_nap(10);
  }
}
