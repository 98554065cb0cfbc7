/* scale W MODE N [ARG]: a workload with many of one kind of thing, for the
 * scale tests (tests/e2e/test_scale.sh) and benchmark (bench/scale.sh).
 *
 *   threads N      N threads besides main, each blocked in a futex wait on
 *                  its own word; a check wakes each and waits for its answer
 *   procs N        a tree of N processes: the root and N-1 children, all
 *                  idle; a check asks each child (parent, answer) in turn
 *   fds N [shared] N open descriptors of one regular file (N descriptions,
 *                  each with its own offset i); with shared, a child that
 *                  inherited them all
 *   maps N         N one-page anonymous mappings, alternately read-write and
 *                  read-only so they never merge, each holding its index
 *   sparse GB MB   one GB GiB MAP_NORESERVE mapping with MB MiB of pages
 *                  touched, spread evenly over it
 * W/ready is written once everything exists. On SIGUSR1 the program checks
 * every item and writes W/result.
 *
 * scale --pids-free PID... (for bench/scale.sh) returns once each PID can be
 * given to a new process again (clone3 with set_tid, the child exiting at
 * once), exit status 1 after 10 s. A process killed while traced (as a dump
 * leaves it) may hold its pid a few ms after its /proc entry went.
 */
#include "prog_common.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <linux/sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static long n;

/* ---- threads ---- */
static volatile uint32_t *words;   /* futex word per thread: 1 = asked */
static volatile uint32_t *answers; /* set by the thread when asked */

static void futex_wait(volatile uint32_t *w, uint32_t val) {
  syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake(volatile uint32_t *w) { syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static void *idle_thread(void *arg) {
  long i = (long)arg;
  for (;;) {
    while (words[i] == 0) futex_wait(&words[i], 0);
    words[i] = 0;
    answers[i] = 1;
  }
  return NULL;
}

static void setup_threads(void) {
  words = calloc((size_t)n, sizeof(uint32_t));
  answers = calloc((size_t)n, sizeof(uint32_t));
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setstacksize(&a, 64 * 1024);
  for (long i = 0; i < n; i++) {
    pthread_t t;
    if (pthread_create(&t, &a, idle_thread, (void *)i) != 0) cf_die("pthread_create %ld", i);
  }
}

static void check_threads(void) {
  for (long i = 0; i < n; i++) {
    answers[i] = 0;
    words[i] = 1;
    futex_wake(&words[i]);
  }
  for (long i = 0; i < n; i++) {
    for (int t = 0; t < 2000 && !answers[i]; t++) cf_nap(1);
    CF_CHECK(answers[i], "thread %ld did not answer", i);
  }
}

/* ---- procs ---- */
static pid_t *kids;
static int self_index = 0; /* 0: the root */

static void proc_loop(void) {
  char name[64];
  for (;;) {
    if (cf_take_usr1()) {
      if (self_index == 0) {
        for (long i = 1; i < n; i++) {
          snprintf(name, sizeof(name), "result.%ld", i);
          cf_ask_child(kids[i], name);
        }
        cf_report();
      } else {
        CF_CHECK(getppid() == kids[0], "child %d: parent %d, expected %d", self_index, getppid(), kids[0]);
        snprintf(name, sizeof(name), "result.%d", self_index);
        cf_child_report(name);
      }
    }
    cf_nap(50);
  }
}

static void setup_procs(void) {
  kids = calloc((size_t)n, sizeof(pid_t));
  kids[0] = getpid();
  char name[64], buf[64];
  for (long i = 1; i < n; i++) {
    pid_t p = fork();
    if (p < 0) cf_die("fork");
    if (p == 0) {
      self_index = (int)i;
      snprintf(name, sizeof(name), "ready.%ld", i);
      cf_child_ready(name);
      proc_loop();
    }
    kids[i] = p;
  }
  for (long i = 1; i < n; i++) {
    snprintf(name, sizeof(name), "ready.%ld", i);
    if (cf_wait_file(name, buf, sizeof(buf)) != 0) cf_die("child %ld never got ready", i);
  }
}

/* ---- fds ---- */
static int first_fd;

static void setup_fds(void) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/fds.data", cf_prog.workdir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) cf_die("open %s", path);
  char buf[4096];
  memset(buf, 'x', sizeof(buf));
  for (long done = 0; done < n; done += (long)sizeof(buf)) {
    if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) cf_die("write");
  }
  close(fd);
  first_fd = -1;
  for (long i = 0; i < n; i++) {
    fd = open(path, O_RDONLY);
    if (fd < 0) cf_die("open #%ld", i);
    if (first_fd < 0) first_fd = fd;
    if (lseek(fd, i, SEEK_SET) != i) cf_die("lseek");
  }
}

static void check_fds(void) {
  for (long i = 0; i < n; i++) {
    off_t pos = lseek(first_fd + (int)i, 0, SEEK_CUR);
    CF_CHECK(pos == i, "fd %ld: offset %ld, expected %ld", first_fd + i, (long)pos, i);
  }
}

/* ---- maps ---- */
static unsigned char **maps;

static void setup_maps(void) {
  maps = calloc((size_t)n, sizeof(*maps));
  /* Reserve one range and map each page into it with MAP_FIXED, so the
   * layout is compact and adjacent mappings differ in protection. */
  unsigned char *base = mmap(NULL, (size_t)n * CF_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) cf_die("reserve");
  for (long i = 0; i < n; i++) {
    unsigned char *p = mmap(base + i * CF_PAGE, CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) cf_die("mmap #%ld", i);
    memcpy(p, &i, sizeof(i));
    if (i % 2 && mprotect(p, CF_PAGE, PROT_READ) != 0) cf_die("mprotect #%ld", i);
    maps[i] = p;
  }
}

static void check_maps(void) {
  for (long i = 0; i < n; i++) {
    long v;
    memcpy(&v, maps[i], sizeof(v));
    CF_CHECK(v == i, "mapping %ld holds %ld", i, v);
  }
}

/* ---- sparse ---- */
static unsigned char *sparse;
static size_t sparse_len, touched_pages, stride;

static void setup_sparse(long gb, long mb) {
  sparse_len = (size_t)gb << 30;
  touched_pages = (size_t)mb * 256;
  sparse = mmap(NULL, sparse_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (sparse == MAP_FAILED) cf_die("mmap %ld GiB", gb);
  stride = sparse_len / CF_PAGE / touched_pages;
  if (stride == 0) stride = 1;
  for (size_t i = 0; i < touched_pages; i++) cf_random_page(sparse + i * stride * CF_PAGE, i, 99);
}

static void check_sparse(void) {
  unsigned char page[CF_PAGE];
  for (size_t i = 0; i < touched_pages; i++) {
    cf_random_page(page, i, 99);
    if (memcmp(page, sparse + i * stride * CF_PAGE, CF_PAGE) != 0) {
      cf_failf("sparse page %zu differs", i);
      return;
    }
  }
}

static int pids_free(int count, char **pids) {
  for (int i = 0; i < count; i++) {
    pid_t want = (pid_t)strtol(pids[i], NULL, 10);
    for (int waited_us = 0;; waited_us += 500) {
      pid_t asked = want;
      struct clone_args args;
      memset(&args, 0, sizeof(args));
      args.exit_signal = SIGCHLD;
      args.set_tid = (uint64_t)(uintptr_t)&asked;
      args.set_tid_size = 1;
      long r = syscall(SYS_clone3, &args, sizeof(args));
      if (r == 0) _exit(0);
      if (r > 0) {
        waitpid((pid_t)r, NULL, 0);
        break;
      }
      if (errno != EEXIST || waited_us >= 10 * 1000 * 1000) return 1;
      usleep(500);
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--pids-free") == 0) return pids_free(argc - 2, argv + 2);
  cf_init(argc, argv, 3, "scale W threads|procs|fds|maps|sparse N [ARG]");
  const char *mode = argv[2];
  n = strtol(argv[3], NULL, 10);
  if (n < 1) cf_die("bad N");
  void (*check)(void) = NULL;
  if (strcmp(mode, "threads") == 0) {
    setup_threads();
    check = check_threads;
  } else if (strcmp(mode, "procs") == 0) {
    setup_procs();
    cf_ready();
    proc_loop();
  } else if (strcmp(mode, "fds") == 0) {
    setup_fds();
    if (argc > 4 && strcmp(argv[4], "shared") == 0) {
      /* A child holding every description too (inherited): the tree shares them. */
      pid_t p = fork();
      if (p < 0) cf_die("fork");
      if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) pause();
      }
    }
    check = check_fds;
  } else if (strcmp(mode, "maps") == 0) {
    setup_maps();
    check = check_maps;
  } else if (strcmp(mode, "sparse") == 0) {
    setup_sparse(n, argc > 4 ? strtol(argv[4], NULL, 10) : 64);
    check = check_sparse;
  } else {
    cf_die("unknown mode %s", mode);
  }
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(50);
  }
}
