/* busytree W NPROC SIZE_MB [IDLE]: a tree of NPROC processes (the root and
 * its children), each with SIZE_MB of private memory and three worker
 * threads (the root also IDLE threads that sleep 2 ms at a time and count, 0
 * unless given: enough of them make criu-fast read the threads' properties
 * with the parasite, memdrain/thread_calls.h, and the children's by remote
 * calls):
 *
 *   spinner  keeps a marker in xmm8 and counts in a tight loop, checking the
 *            marker and its stack and TLS values on every round (resting
 *            now and then);
 *   sleeper  sleeps 1 ms at a time (a dump catches it inside nanosleep);
 *   reader   blocks in read() on a pipe a fourth thread writes to every 5 ms
 *            and checks each byte's sequence number (a dump catches it in
 *            read).
 *
 * Used to kill criu-fast at random instants of a dump (tests/e2e/
 * test_dump_killed.sh): whatever the instant, every process must run on.
 * On SIGUSR1 the root forwards the signal to each child and checks itself:
 * memory hash unchanged, every worker's counter advancing, no worker saw a
 * bad value; each child answers in W/result.I; the root writes W/result.
 */
#include "prog_common.h"

#include <pthread.h>
#include <sys/mman.h>

#define MAXPROC 16
#define MAXIDLE 64
#define MARKER 0x5eed1234abcd9876ULL

static unsigned char *mem;
static size_t mem_pages;
static uint64_t mem_hash;
static volatile uint64_t counters[3];
static volatile uint64_t idle_counters[MAXIDLE];
static int nidle;
static volatile int worker_bad;
static char bad_what[256];
static int feed[2];
static __thread uint64_t tls_value;

static void worker_fail(const char *what) {
  if (!worker_bad) snprintf(bad_what, sizeof(bad_what), "%s", what);
  worker_bad = 1;
}

static void *spinner(void *arg) {
  (void)arg;
  tls_value = MARKER ^ 1;
  volatile uint64_t on_stack = MARKER ^ 2;
  for (;;) {
    uint64_t out;
    /* 100000 rounds with the marker held in xmm8 only. */
    __asm__ volatile(
        "movq %[m], %%xmm8\n"
        "mov $100000, %%ecx\n"
        "1: dec %%ecx\n"
        "jnz 1b\n"
        "movq %%xmm8, %[o]\n"
        : [o] "=r"(out)
        : [m] "r"(MARKER)
        : "rcx", "xmm8", "cc");
    if (out != MARKER) worker_fail("spinner: xmm8 changed");
    if (tls_value != (MARKER ^ 1)) worker_fail("spinner: TLS changed");
    if (on_stack != (MARKER ^ 2)) worker_fail("spinner: stack changed");
    counters[0]++;
    /* Spin about half the time only: three spinning trees would starve a
     * two-core machine. */
    if (counters[0] % 8 == 0) {
      struct timespec ts = {0, 500000};
      nanosleep(&ts, NULL);
    }
  }
  return NULL;
}

static void *sleeper(void *arg) {
  (void)arg;
  for (;;) {
    struct timespec ts = {0, 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
    counters[1]++;
  }
  return NULL;
}

static void *reader(void *arg) {
  (void)arg;
  unsigned char expect = 0;
  for (;;) {
    unsigned char c;
    ssize_t n = read(feed[0], &c, 1);
    if (n != 1) {
      worker_fail("reader: read failed");
      continue;
    }
    if (c != expect) worker_fail("reader: byte out of sequence");
    expect = (unsigned char)(c + 1);
    counters[2]++;
  }
  return NULL;
}

static void *idler(void *arg) {
  volatile uint64_t *count = arg;
  for (;;) {
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    (*count)++;
  }
  return NULL;
}

static void *feeder(void *arg) {
  (void)arg;
  unsigned char seq = 0;
  for (;;) {
    if (write(feed[1], &seq, 1) == 1) seq++;
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static void check_self(const char *who) {
  CF_CHECK(cf_hash(mem, mem_pages * CF_PAGE) == mem_hash, "%s: memory hash changed", who);
  CF_CHECK(!worker_bad, "%s: %s", who, bad_what);
  uint64_t before[3], after[3];
  uint64_t idle_before[MAXIDLE];
  for (int i = 0; i < 3; i++) before[i] = counters[i];
  for (int i = 0; i < nidle; i++) idle_before[i] = idle_counters[i];
  for (int t = 0; t < 200; t++) {
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
    int all = 1;
    for (int i = 0; i < 3; i++) {
      after[i] = counters[i];
      if (after[i] == before[i]) all = 0;
    }
    for (int i = 0; i < nidle; i++) {
      if (idle_counters[i] == idle_before[i]) all = 0;
    }
    if (all) return;
  }
  cf_failf("%s: a worker is stuck (counters %lu %lu %lu)", who, (unsigned long)after[0], (unsigned long)after[1],
           (unsigned long)after[2]);
}

/* Sets up memory and workers, then answers checks. */
static void run(int self, size_t mb, int nproc, pid_t *kids) {
  mem_pages = mb * 256;
  mem = mmap(NULL, mem_pages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) cf_die("mmap");
  cf_fill_random(mem, mem_pages, 77 + (uint64_t)self);
  mem_hash = cf_hash(mem, mem_pages * CF_PAGE);
  if (pipe(feed) != 0) cf_die("pipe");
  pthread_t t;
  if (pthread_create(&t, NULL, spinner, NULL) || pthread_create(&t, NULL, sleeper, NULL) ||
      pthread_create(&t, NULL, reader, NULL) || pthread_create(&t, NULL, feeder, NULL)) {
    cf_die("pthread_create");
  }
  if (self > 0) nidle = 0; /* the root's only */
  for (int i = 0; i < nidle; i++) {
    if (pthread_create(&t, NULL, idler, (void *)&idle_counters[i])) cf_die("pthread_create");
  }
  char name[32];
  if (self > 0) {
    snprintf(name, sizeof(name), "ready.%d", self);
    cf_child_ready(name);
  } else {
    char buf[64];
    for (int i = 1; i < nproc; i++) {
      snprintf(name, sizeof(name), "ready.%d", i);
      if (cf_wait_file(name, buf, sizeof(buf)) != 0) cf_die("child %d never got ready", i);
    }
    cf_ready();
  }
  for (;;) {
    if (cf_take_usr1()) {
      if (self == 0) {
        for (int i = 1; i < nproc; i++) {
          snprintf(name, sizeof(name), "result.%d", i);
          cf_ask_child(kids[i], name);
        }
        check_self("root");
        cf_report();
      } else {
        snprintf(name, sizeof(name), "child %d", self);
        check_self(name);
        snprintf(name, sizeof(name), "result.%d", self);
        cf_child_report(name);
      }
    }
    cf_nap(5);
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 3, "busytree W NPROC SIZE_MB [IDLE]");
  int nproc = (int)strtol(argv[2], NULL, 10);
  size_t mb = (size_t)strtol(argv[3], NULL, 10);
  nidle = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 0;
  if (nproc < 1 || nproc > MAXPROC) cf_die("NPROC must be 1..%d", MAXPROC);
  if (nidle < 0 || nidle > MAXIDLE) cf_die("IDLE must be 0..%d", MAXIDLE);
  pid_t kids[MAXPROC] = {0};
  for (int i = 1; i < nproc; i++) {
    pid_t p = fork();
    if (p < 0) cf_die("fork");
    if (p == 0) run(i, mb, nproc, kids);
    kids[i] = p;
  }
  run(0, mb, nproc, kids);
  return 0;
}
