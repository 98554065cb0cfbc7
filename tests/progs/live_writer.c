/* A program that never stops writing its memory, for live checkpoints
 * (dump -R --live): a restored image must be exactly its memory at one
 * instant, and a torn one is caught.
 *
 * Usage: live_writer W [MIB [THREADS [unmap]]]  (default 64 MiB, 2 writer threads)
 *
 * Each writer thread owns MIB/THREADS of private memory and sweeps it page by
 * page, forever: sweep G writes G into the first and the last word of every
 * page, after checking that the page still holds G-1 in both. At any instant
 * the pages before the writer hold G and those after it G-1; the writer's G
 * and position live in its registers and stack. So after a restore the
 * writer resumes where the freeze caught it and checks, within one sweep,
 * that every page holds what that instant implies: a page saved after the
 * program wrote it (or before, in a torn image) breaks the sequence. The
 * first failure is kept in memory (the image carries it too).
 * Thread 0 also, after each sweep, passes G through a pipe into a page of
 * its own with read(2): a write by the kernel into memory that a live dump
 * has write-protected must wait for the dump, not fail (EFAULT).
 * On SIGUSR2 the main thread forks a child that scribbles over the memory
 * (its own copy) and exits; the parent's memory must not change. With
 * "unmap", 64 MiB of spare memory is mapped first (so above the writers'),
 * filled, and SIGUSR2 unmaps it instead.
 * Each writer rests 2 ms after each sweep; one more, the hot writer, sweeps
 * 256 pages of its own every 0.2 ms (pages a live dump must protect again
 * at the freeze, or lose to the writer before it saves them).
 * On SIGUSR1 (the check): no failure so far, and every writer has done two
 * more sweeps since (so it runs, and has checked every page once more).
 */
#include "prog_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MAX_WRITERS 8
#define LAST_WORD (CF_PAGE / 8 - 1)

struct writer {
  int id;
  long rest_ns;  /* after each sweep */
  volatile uint64_t *mem;
  uint64_t pages;
  _Atomic uint64_t sweeps;
};

static struct writer writers[MAX_WRITERS + 1];
static int nwriters;
static char fail_msg[256];
static _Atomic int failed;
static int kpipe[2];
static volatile uint64_t *kpage;
static volatile sig_atomic_t usr2_pending;
static _Atomic uint64_t forks;
static void *spare;
static size_t spare_len = 64UL << 20;

static void fail_once(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail_once(const char *fmt, ...) {
  int expect = 0;
  if (!atomic_compare_exchange_strong(&failed, &expect, 1)) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
  va_end(ap);
}

static void *writer_main(void *arg) {
  struct writer *w = arg;
  for (uint64_t gen = 1;; gen++) {
    for (uint64_t i = 0; i < w->pages; i++) {
      volatile uint64_t *p = w->mem + i * (CF_PAGE / 8);
      if (p[0] != gen - 1 || p[LAST_WORD] != gen - 1) {
        fail_once("writer %d page %lu: holds %lu/%lu in sweep %lu", w->id, (unsigned long)i, (unsigned long)p[0],
                  (unsigned long)p[LAST_WORD], (unsigned long)gen);
      }
      p[0] = gen;
      p[LAST_WORD] = gen;
    }
    if (w->id == 0) {
      if (kpage[0] != gen - 1) fail_once("pipe page holds %lu, not %lu", (unsigned long)kpage[0], (unsigned long)(gen - 1));
      uint64_t g = gen;
      if (write(kpipe[1], &g, sizeof(g)) != (ssize_t)sizeof(g)) fail_once("write to the pipe: errno %d", errno);
      ssize_t n;
      do {
        n = read(kpipe[0], (void *)kpage, sizeof(g));
      } while (n < 0 && errno == EINTR);
      if (n != (ssize_t)sizeof(g)) fail_once("read(2) into the pipe page: %ld (errno %d)", (long)n, errno);
    }
    atomic_fetch_add(&w->sweeps, 1);
    /* Not all the CPU: test machines are small. */
    struct timespec nap = {0, w->rest_ns};
    nanosleep(&nap, NULL);
    cf_check_lifetime();
  }
  return NULL;
}

static void on_usr2(int sig) {
  (void)sig;
  usr2_pending = 1;
}

static void fork_scribbler(void) {
  pid_t c = fork();
  if (c < 0) {
    fail_once("fork: errno %d", errno);
    return;
  }
  if (c == 0) {
    for (int t = 0; t < nwriters; t++) {
      for (uint64_t i = 0; i < writers[t].pages; i += 7) writers[t].mem[i * (CF_PAGE / 8) + 1] = 0xdeadULL;
    }
    _exit(0);
  }
  int st = 0;
  while (waitpid(c, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_once("forked child: status %d", st);
  for (int t = 0; t < nwriters; t++) {
    for (uint64_t i = 0; i < writers[t].pages; i += 7) {
      if (writers[t].mem[i * (CF_PAGE / 8) + 1] != 0) fail_once("the child's write showed in the parent");
    }
  }
  atomic_fetch_add(&forks, 1);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "live_writer W [MIB [THREADS]]");
  long mib = argc > 2 ? strtol(argv[2], NULL, 10) : 64;
  nwriters = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 2;
  if (mib < 1 || nwriters < 1 || nwriters > MAX_WRITERS) cf_die("bad arguments");
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_usr2;
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGUSR2, &sa, NULL) != 0) cf_die("sigaction(SIGUSR2)");
  if (pipe(kpipe) != 0) cf_die("pipe");
  if (argc > 4 && strcmp(argv[4], "unmap") == 0) {
    spare = mmap(NULL, spare_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (spare == MAP_FAILED) cf_die("mmap spare");
    memset(spare, 0x5a, spare_len);
  }
  kpage = mmap(NULL, CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (kpage == MAP_FAILED) cf_die("mmap");
  kpage[0] = 0;
  uint64_t pages = (uint64_t)mib * 256 / (uint64_t)nwriters;
  /* The hot writer: 256 pages rewritten every 0.2 ms, mapped before the
   * others (so above them: a dump saves it last, after the writer has gone
   * over it many times). */
  {
    void *m = mmap(NULL, 256 * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) cf_die("mmap hot pages");
    memset(m, 0, 256 * CF_PAGE);
    writers[nwriters].id = nwriters;
    writers[nwriters].mem = m;
    writers[nwriters].pages = 256;
    writers[nwriters].rest_ns = 200000;
  }
  for (int t = 0; t < nwriters; t++) {
    void *m = mmap(NULL, pages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) cf_die("mmap %lu pages", pages);
    memset(m, 0, pages * CF_PAGE);  /* present: the dump saves every page */
    writers[t].id = t;
    writers[t].mem = m;
    writers[t].pages = pages;
    writers[t].rest_ns = 2000000;
  }
  nwriters++; /* the hot one too, from here on */
  for (int t = 0; t < nwriters; t++) {
    pthread_t th;
    if (pthread_create(&th, NULL, writer_main, &writers[t]) != 0) cf_die("pthread_create");
  }
  for (int t = 0; t < nwriters; t++) {
    while (atomic_load(&writers[t].sweeps) < 2) cf_nap(1);
  }
  cf_ready();
  for (;;) {
    cf_nap(20);
    if (usr2_pending) {
      usr2_pending = 0;
      if (spare) {
        if (munmap(spare, spare_len) != 0) fail_once("munmap: errno %d", errno);
        spare = NULL;
      } else {
        fork_scribbler();
      }
    }
    if (!cf_take_usr1()) continue;
    uint64_t before[MAX_WRITERS];
    for (int t = 0; t < nwriters; t++) before[t] = atomic_load(&writers[t].sweeps);
    for (int t = 0; t < nwriters; t++) {
      for (int i = 0; i < 1000 && atomic_load(&writers[t].sweeps) < before[t] + 2; i++) cf_nap(10);
      CF_CHECK(atomic_load(&writers[t].sweeps) >= before[t] + 2, "writer %d does not advance (%lu sweeps)", t,
               (unsigned long)atomic_load(&writers[t].sweeps));
    }
    CF_CHECK(!atomic_load(&failed), "%s", fail_msg);
    cf_report();
  }
}
