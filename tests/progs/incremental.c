/* incremental W MB: memory that changes between the rounds of an incremental
 * dump (pre-dump, pre-dump, ..., dump), and checks every byte of it against
 * a model after the restore.
 *
 * Every page's content is a function of (region tag, page index, version),
 * so the expected state is computed, never copied. Regions:
 *   A  MB MiB of private memory; step k rewrites 1% of its pages (version k)
 *   N  a fresh 64-page mapping per step (the last two kept; the older one
 *      half unmapped)
 *   R  16 pages moved by mremap to another address at every step, then its
 *      first page rewritten
 *   P  32 pages whose middle 8 become read-only at odd steps and writable
 *      again at even ones (the VMA splits and merges); page 0 rewritten
 *   S  16 pages of shared anonymous memory, rewritten at every step; the
 *      child (forked at step 2) sees the same pages
 *   T  a thread's own 8 pages, rewritten by that thread at every step
 * A step is asked for with SIGUSR2; W/step holds the number of steps done.
 * The child, forked at step 2, keeps its copy of A as it was then, rewrites
 * 10 pages of it, and answers SIGUSR1 in W/result.child. The parent's check
 * includes asking the child.
 */
#include "prog_common.h"

#include <pthread.h>
#include <sys/mman.h>

#define NPAGES_N 64
#define NPAGES_R 16
#define NPAGES_P 32
#define NPAGES_S 16
#define NPAGES_T 8

static volatile sig_atomic_t want_step;
static void on_usr2(int sig) {
  (void)sig;
  want_step = 1;
}

/* Page content: a xorshift stream seeded by (tag, index, version). */
static void fill(unsigned char *p, uint64_t tag, uint64_t idx, uint64_t ver) {
  uint64_t x = (tag * 0x9E3779B97F4A7C15ULL) ^ (idx * 0xBF58476D1CE4E5B9ULL) ^ (ver * 0x94D049BB133111EBULL) ^ 1;
  uint64_t *w = (uint64_t *)p;
  for (size_t i = 0; i < CF_PAGE / 8; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w[i] = x;
  }
}

static int same(const unsigned char *p, uint64_t tag, uint64_t idx, uint64_t ver) {
  static unsigned char want[CF_PAGE];
  fill(want, tag, idx, ver);
  return memcmp(p, want, CF_PAGE) == 0;
}

static unsigned char *A, *R, *P, *S, *T;
static size_t a_pages;
static unsigned char *N[64];
static volatile int steps;
static int forked_at = -1;  /* step at which the child was forked */
static pid_t child;
static int is_child;
static pthread_t thread;
static volatile int thread_step;  /* steps the thread has applied */

/* The version of A's page i after |k| steps (0: the initial content). */
static uint64_t a_version(size_t i, int k) {
  for (int s = k; s >= 1; s--) {
    if ((i * 7 + (size_t)s) % 100 == 0) return (uint64_t)s;
  }
  return 0;
}

static void *map(size_t pages) {
  void *p = mmap(NULL, pages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) cf_die("mmap");
  return p;
}

static void *thread_main(void *arg) {
  (void)arg;
  for (;;) {
    int want = steps;
    if (thread_step < want) {
      for (size_t i = 0; i < NPAGES_T; i++) fill(T + i * CF_PAGE, 'T', i, (uint64_t)want);
      thread_step = want;
    }
    cf_nap(5);
  }
  return NULL;
}

static void child_check(void);

static void step(void) {
  const int k = steps + 1;
  for (size_t i = 0; i < a_pages; i++) {
    if ((i * 7 + (size_t)k) % 100 == 0) fill(A + i * CF_PAGE, 'A', i, (uint64_t)k);
  }
  N[k] = map(NPAGES_N);
  for (size_t i = 0; i < NPAGES_N; i++) fill(N[k] + i * CF_PAGE, 'N', i, (uint64_t)k);
  if (k >= 3 && N[k - 2]) {
    /* the one before last: its second half goes */
    munmap(N[k - 2] + NPAGES_N / 2 * CF_PAGE, NPAGES_N / 2 * CF_PAGE);
  }
  if (k >= 4 && N[k - 3]) {
    munmap(N[k - 3], NPAGES_N / 2 * CF_PAGE);
    N[k - 3] = NULL;
  }
  /* Move R: reserve a new place, move it there. */
  void *to = mmap(NULL, NPAGES_R * CF_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (to == MAP_FAILED) cf_die("mmap");
  void *moved = mremap(R, NPAGES_R * CF_PAGE, NPAGES_R * CF_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  if (moved == MAP_FAILED) cf_die("mremap");
  R = moved;
  fill(R, 'R', 0, (uint64_t)k);
  mprotect(P + 12 * CF_PAGE, 8 * CF_PAGE, (k % 2) ? PROT_READ : PROT_READ | PROT_WRITE);
  fill(P, 'P', 0, (uint64_t)k);
  for (size_t i = 0; i < NPAGES_S; i++) fill(S + i * CF_PAGE, 'S', i, (uint64_t)k);
  steps = k;
  while (thread_step < k) cf_nap(2);
  if (k == 2) {
    child = fork();
    if (child < 0) cf_die("fork");
    if (child == 0) {
      is_child = 1;
      forked_at = k;
      for (size_t i = 0; i < 10; i++) fill(A + (i * 101) * CF_PAGE, 'C', i, 1);
      cf_child_ready("ready.child");
      cf_child_loop(child_check, "result.child");
    }
    forked_at = k;
    char buf[32];
    if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child did not start");
  }
  char buf[32];
  snprintf(buf, sizeof(buf), "%d\n", k);
  cf_write_file("step", buf);
}

static void check_a(int k, int child_view) {
  for (size_t i = 0; i < a_pages; i++) {
    uint64_t tag = 'A', idx = i, ver = a_version(i, k);
    if (child_view && i % 101 == 0 && i / 101 < 10) {
      tag = 'C';
      idx = i / 101;
      ver = 1;
    }
    if (!same(A + i * CF_PAGE, tag, idx, ver)) {
      cf_failf("A page %zu (of %zu) is not version %llu", i, a_pages, (unsigned long long)ver);
      return;
    }
  }
}

static void check_shared(void) {
  /* S is shared with the parent, which rewrites it at each step: the child
   * sees the parent's latest version, whatever it is. */
  for (size_t i = 0; i < NPAGES_S; i++) {
    if (!same(S + i * CF_PAGE, 'S', i, (uint64_t)steps) && !is_child) {
      cf_failf("S page %zu is not version %d", i, steps);
      return;
    }
  }
}

static void child_check(void) {
  check_a(forked_at, 1);
}

static void check(void) {
  check_a(steps, 0);
  for (int k = 1; k <= steps; k++) {
    if (!N[k]) continue;
    size_t keep = (k <= steps - 2) ? NPAGES_N / 2 : NPAGES_N;
    for (size_t i = 0; i < keep; i++) {
      CF_CHECK(same(N[k] + i * CF_PAGE, 'N', i, (uint64_t)k), "N%d page %zu", k, i);
    }
  }
  CF_CHECK(same(R, 'R', 0, (uint64_t)steps), "R page 0 is not version %d", steps);
  for (size_t i = 1; i < NPAGES_R; i++) CF_CHECK(same(R + i * CF_PAGE, 'R', i, 0), "R page %zu", i);
  CF_CHECK(same(P, 'P', 0, (uint64_t)steps), "P page 0 is not version %d", steps);
  for (size_t i = 1; i < NPAGES_P; i++) CF_CHECK(same(P + i * CF_PAGE, 'P', i, 0), "P page %zu", i);
  check_shared();
  for (size_t i = 0; i < NPAGES_T; i++) CF_CHECK(same(T + i * CF_PAGE, 'T', i, (uint64_t)steps), "T page %zu", i);
  if (child > 0) cf_ask_child(child, "result.child");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 2, "incremental W MB");
  a_pages = (size_t)atol(argv[2]) * 256;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_usr2;
  if (sigaction(SIGUSR2, &sa, NULL) != 0) cf_die("sigaction(SIGUSR2)");
  A = map(a_pages);
  for (size_t i = 0; i < a_pages; i++) fill(A + i * CF_PAGE, 'A', i, 0);
  R = map(NPAGES_R);
  for (size_t i = 0; i < NPAGES_R; i++) fill(R + i * CF_PAGE, 'R', i, 0);
  P = map(NPAGES_P);
  for (size_t i = 0; i < NPAGES_P; i++) fill(P + i * CF_PAGE, 'P', i, 0);
  S = mmap(NULL, NPAGES_S * CF_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (S == MAP_FAILED) cf_die("mmap shared");
  for (size_t i = 0; i < NPAGES_S; i++) fill(S + i * CF_PAGE, 'S', i, 0);
  T = map(NPAGES_T);
  for (size_t i = 0; i < NPAGES_T; i++) fill(T + i * CF_PAGE, 'T', i, 0);
  if (pthread_create(&thread, NULL, thread_main, NULL) != 0) cf_die("pthread_create");
  cf_write_file("step", "0\n");
  cf_ready();
  for (;;) {
    cf_check_lifetime();
    if (want_step) {
      want_step = 0;
      step();
    }
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
