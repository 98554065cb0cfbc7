/* Shared helpers of the end-to-end test programs (the programs in tests/progs).
 *
 * Protocol, the same for every program:
 *   argv[1] is a work directory W (it must exist).
 *   The program builds its state, then writes W/ready (atomically: W/ready.tmp
 *   then rename) holding its pid. If the setup fails it writes W/error with the
 *   reason instead and exits 1, so the driver does not wait in vain.
 *   It then idles in a loop that survives being frozen and thawed (short sleeps,
 *   EINTR tolerated). On SIGUSR1 the main loop (not the handler) verifies the
 *   whole state and writes W/result ("PASS" or "FAIL: <reason>", atomically),
 *   then keeps running so it can be checked again.
 *   stdio is /dev/null: nothing is ever printed. Every other inherited
 *   descriptor is closed at start.
 *
 * A program exits by itself after CF_PROG_LIFETIME seconds (environment,
 * default 600, 0 = never), so a driver killed halfway leaks nothing for long.
 *
 * Everything is static inline: each program is one translation unit.
 */
#ifndef CF_TESTS_PROG_COMMON_H
#define CF_TESTS_PROG_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CF_PAGE 4096UL

struct cf_prog_state {
  const char *workdir;
  uint64_t start_ns;
  uint64_t lifetime_ns; /* 0: run forever */
  char fail[1024];      /* first failure of the current check */
};

static struct cf_prog_state cf_prog;
static volatile sig_atomic_t cf_usr1_pending;

static inline uint64_t cf_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Writes W/name with the given text: W/name.tmp first, then rename. */
static inline int cf_write_file(const char *name, const char *text) {
  char path[4096], tmp[4096];
  snprintf(path, sizeof(path), "%s/%s", cf_prog.workdir, name);
  snprintf(tmp, sizeof(tmp), "%s/%s.tmp", cf_prog.workdir, name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t n = write(fd, text + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return -1;
    }
    off += (size_t)n;
  }
  if (close(fd) != 0) return -1;
  return rename(tmp, path);
}

/* Setup failed: say why in W/error and exit. */
static inline void cf_die(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  char line[1100];
  snprintf(line, sizeof(line), "%s (errno %d: %s)\n", msg, errno, strerror(errno));
  if (cf_prog.workdir) cf_write_file("error", line);
  exit(1);
}

static inline void cf_on_usr1(int sig) {
  (void)sig;
  cf_usr1_pending = 1;
}

/* Common start: checks argv, installs the SIGUSR1 handler. */
static inline void cf_init(int argc, char **argv, int min_args, const char *usage) {
  if (argc < 1 + min_args || argv[1][0] == '\0') {
    /* No work dir to report to: the exit code is all we have. */
    (void)usage;
    exit(2);
  }
  /* Absolute, so a program may chdir and still find W. */
  static char abs_workdir[4096];
  cf_prog.workdir = realpath(argv[1], abs_workdir) ? abs_workdir : argv[1];
  /* Descriptors inherited from whoever started us (a test runner's pipes)
   * are not part of the test's state: a dump would refuse them. */
  if (close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < 1024; fd++) close(fd);
  }
  cf_prog.start_ns = cf_now_ns();
  const char *life = getenv("CF_PROG_LIFETIME");
  long secs = life ? strtol(life, NULL, 10) : 600;
  cf_prog.lifetime_ns = secs > 0 ? (uint64_t)secs * 1000000000ULL : 0;

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = cf_on_usr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGUSR1, &sa, NULL) != 0) cf_die("sigaction(SIGUSR1)");
}

/* W/ready with our pid: the state is built. */
static inline void cf_ready(void) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
  if (cf_write_file("ready", buf) != 0) cf_die("cannot write %s/ready", cf_prog.workdir);
}

/* Exits when the lifetime is over. Cheap; call it from every loop. */
static inline void cf_check_lifetime(void) {
  if (cf_prog.lifetime_ns && cf_now_ns() - cf_prog.start_ns > cf_prog.lifetime_ns) exit(3);
}

/* True (once) when a SIGUSR1 arrived since the last call. */
static inline int cf_take_usr1(void) {
  if (!cf_usr1_pending) return 0;
  cf_usr1_pending = 0;
  return 1;
}

/* Sleeps about |ms| milliseconds; returns early when SIGUSR1 arrives.
 * A sleep cut short by a freeze (EINTR, restart) is simply not resumed. */
static inline void cf_nap(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  cf_check_lifetime();
}

/* Records the first failure of a check (later ones are dropped). */
static inline void cf_failf(const char *fmt, ...) {
  if (cf_prog.fail[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cf_prog.fail, sizeof(cf_prog.fail), fmt, ap);
  va_end(ap);
}

#define CF_CHECK(cond, ...)      \
  do {                           \
    if (!(cond)) cf_failf(__VA_ARGS__); \
  } while (0)

/* Writes W/result from the failures recorded since the last report. */
static inline void cf_report(void) {
  char line[1100];
  if (cf_prog.fail[0]) {
    snprintf(line, sizeof(line), "FAIL: %s\n", cf_prog.fail);
  } else {
    snprintf(line, sizeof(line), "PASS\n");
  }
  cf_prog.fail[0] = '\0';
  cf_write_file("result", line);
}

/* ---- parent and child ------------------------------------------------------ */

/* Waits (about 20 s at most) until W/name exists and is not empty; copies its
 * text into |out|. 0 when it came, -1 otherwise. */
static inline int cf_wait_file(const char *name, char *out, size_t len) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", cf_prog.workdir, name);
  for (int i = 0; i < 2000; i++) {
    FILE *f = fopen(path, "r");
    if (f) {
      size_t n = fread(out, 1, len - 1, f);
      fclose(f);
      out[n] = 0;
      if (n > 0) return 0;
    }
    cf_nap(10);
  }
  return -1;
}

/* A child writes W/|name| ("ready.child") with its pid. */
static inline void cf_child_ready(const char *name) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
  cf_write_file(name, buf);
}

/* A child's answer to a check: W/|name| is PASS or "FAIL: child: ...". */
static inline void cf_child_report(const char *name) {
  char line[1100];
  snprintf(line, sizeof(line), "%s%s\n", cf_prog.fail[0] ? "FAIL: child: " : "PASS", cf_prog.fail);
  cf_prog.fail[0] = 0;
  cf_write_file(name, line);
}

/* The loop of a child that answers SIGUSR1 with |check| then
 * cf_child_report(|name|). Never returns. */
static inline void cf_child_loop(void (*check)(void), const char *name) {
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_child_report(name);
    }
    cf_nap(20);
  }
}

/* The parent asks |child| to check itself (SIGUSR1) and records a failure
 * unless W/|name| comes back PASS. */
static inline void cf_ask_child(pid_t child, const char *name) {
  char path[4200], buf[1200];
  snprintf(path, sizeof(path), "%s/%s", cf_prog.workdir, name);
  unlink(path);
  kill(child, SIGUSR1);
  if (cf_wait_file(name, buf, sizeof(buf)) != 0) {
    cf_failf("the child did not answer in %s", name);
  } else if (strncmp(buf, "PASS", 4) != 0) {
    cf_failf("%s", buf);
  }
}

/* ---- memory contents shared by memmix and memload ------------------------ */

/* xorshift64*: fast, deterministic from its seed. */
static inline uint64_t cf_rand_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* One page of random words; the seed is mixed with the page index so any
 * page can be regenerated alone. */
static inline void cf_random_page(unsigned char *page, size_t pg, uint64_t seed) {
  uint64_t s = seed ^ (0x9E3779B97F4A7C15ULL * (pg + 1));
  uint64_t *w = (uint64_t *)page;
  for (size_t i = 0; i < CF_PAGE / 8; i++) w[i] = cf_rand_next(&s);
}

static inline void cf_fill_random(unsigned char *p, size_t npages, uint64_t seed) {
  for (size_t pg = 0; pg < npages; pg++) cf_random_page(p + pg * CF_PAGE, pg, seed);
}

/* One page of repeated ASCII lines; it names its index, so no two pages of a
 * region are equal. */
static inline void cf_text_page(unsigned char *p, size_t pg) {
  static const char kLine[] = "criu-fast test text, the quick brown fox jumps over the lazy dog. ";
  char *page = (char *)p;
  char head[40];
  int n = snprintf(head, sizeof(head), "page %zu: ", pg);
  memcpy(page, head, (size_t)n);
  size_t off = (size_t)n;
  while (off < CF_PAGE) {
    size_t k = sizeof(kLine) - 1;
    if (k > CF_PAGE - off) k = CF_PAGE - off;
    memcpy(page + off, kLine, k);
    off += k;
  }
}

static inline void cf_fill_text(unsigned char *p, size_t npages) {
  for (size_t pg = 0; pg < npages; pg++) cf_text_page(p + pg * CF_PAGE, pg);
}

/* FNV-1a style hash over 64-bit words (the length is a multiple of 8). */
static inline uint64_t cf_hash(const unsigned char *p, size_t len) {
  const uint64_t *w = (const uint64_t *)p;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len / 8; i++) {
    h ^= w[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

#endif /* CF_TESTS_PROG_COMMON_H */
