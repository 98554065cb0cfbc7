/* fanout W MODE N SIZE_MB: a benchmark workload of N x SIZE_MB of memory.
 *
 *   MODE procs:   the root and N-1 children, each with SIZE_MB of its own;
 *   MODE threads: one process with N threads, each filling SIZE_MB of its own.
 *
 * Memory is half random, half text pages (compressible). Once everything is
 * filled the root writes W/ready. On SIGUSR1 the root checks its own memory
 * (procs) or every thread's (threads); in procs mode it also passes SIGUSR1
 * to each child, which checks its own and answers in W/result.I; then the
 * root writes W/result for all. Used by bench/tree_e2e.sh and
 * tests/e2e/test_tree_memory.sh.
 */
#include "prog_common.h"

#include <pthread.h>
#include <sys/mman.h>

static size_t mb;
static unsigned char *regions[64];
static uint64_t hashes[64];
static volatile int filled;
static pid_t kids[64];

static void fill(int i) {
  const size_t pages = mb * 256;
  regions[i] = mmap(NULL, pages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (regions[i] == MAP_FAILED) cf_die("mmap");
  cf_fill_random(regions[i], pages / 2, 77 + (uint64_t)i);
  cf_fill_text(regions[i] + pages / 2 * CF_PAGE, pages - pages / 2);
  hashes[i] = cf_hash(regions[i], pages * CF_PAGE);
}

static void *thread_main(void *arg) {
  fill((int)(intptr_t)arg);
  __atomic_add_fetch(&filled, 1, __ATOMIC_SEQ_CST);
  for (;;) cf_nap(50);
  return NULL;
}

/* Asks every child to check its memory and collects the answers. */
static void CheckChildren(int n) {
  char path[4200];
  for (int i = 1; i < n; i++) {
    snprintf(path, sizeof(path), "%s/result.%d", cf_prog.workdir, i);
    unlink(path);
    kill(kids[i], SIGUSR1);
  }
  for (int i = 1; i < n; i++) {
    snprintf(path, sizeof(path), "%s/result.%d", cf_prog.workdir, i);
    char buf[1200] = "";
    for (int k = 0; k < 3000; k++) {
      FILE *f = fopen(path, "r");
      if (f) {
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = 0;
        if (len > 0) break;
      }
      cf_nap(10);
    }
    if (strncmp(buf, "PASS", 4) != 0) cf_failf("child %d: %s", i, buf[0] ? buf : "no answer");
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 4, "fanout W procs|threads N SIZE_MB");
  const int threads = strcmp(argv[2], "threads") == 0;
  int n = (int)strtol(argv[3], NULL, 10);
  mb = (size_t)strtol(argv[4], NULL, 10);
  if (n < 1 || n > 64 || mb < 1) cf_die("bad arguments");
  int mine = 1;  /* regions this process checks */
  if (threads) {
    for (int i = 0; i < n; i++) {
      pthread_t t;
      if (pthread_create(&t, NULL, thread_main, (void *)(intptr_t)i) != 0) cf_die("pthread_create");
    }
    while (__atomic_load_n(&filled, __ATOMIC_SEQ_CST) < n) cf_nap(5);
    mine = n;
  } else {
    for (int i = 1; i < n; i++) {
      pid_t p = fork();
      if (p < 0) cf_die("fork");
      if (p == 0) {
        fill(0);
        char name[32];
        snprintf(name, sizeof(name), "filled.%d", i);
        cf_write_file(name, "ok\n");
        for (;;) {
          if (cf_take_usr1()) {
            CF_CHECK(cf_hash(regions[0], mb * 256 * CF_PAGE) == hashes[0], "child %d: its memory changed", i);
            char line[1100];
            snprintf(line, sizeof(line), "%s%s\n", cf_prog.fail[0] ? "FAIL: " : "PASS", cf_prog.fail);
            cf_prog.fail[0] = 0;
            snprintf(name, sizeof(name), "result.%d", i);
            cf_write_file(name, line);
          }
          cf_nap(20);
        }
      }
      kids[i] = p;
    }
    fill(0);
    for (int i = 1; i < n; i++) {
      char path[4200];
      snprintf(path, sizeof(path), "%s/filled.%d", cf_prog.workdir, i);
      for (int k = 0; access(path, F_OK) != 0; k++) {
        if (k > 60000) cf_die("child %d never filled its memory", i);
        cf_nap(5);
      }
    }
  }
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      for (int i = 0; i < mine; i++) {
        CF_CHECK(cf_hash(regions[i], mb * 256 * CF_PAGE) == hashes[i], "region %d changed", i);
      }
      if (!threads) CheckChildren(n);
      cf_report();
    }
    cf_nap(20);
  }
}
