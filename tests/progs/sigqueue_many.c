/* sigqueue_many W: more queued real-time signals than the restorer args once
 * had room for (64), spread over the process's queue and every thread's.
 *
 * Four threads (main and 3 workers) block SIG_SHARED and SIG_THREAD. Set up
 * before W/ready:
 *   - the process queue holds N_SHARED x SIG_SHARED (sigqueue), values
 *     SHARED_BASE + k in order;
 *   - each thread's own queue holds N_THREAD x SIG_THREAD (pthread_sigqueue),
 *     values THREAD_BASE(i) + k in order (i = 0 for main).
 * That is 40 + 4 x 16 = 104 signals.
 *
 * On SIGUSR1 every thread takes its own SIG_THREAD signals with
 * sigtimedwait (no wait) and checks that exactly N_THREAD come, with the
 * values in order, si_code SI_QUEUE and si_pid our pid; then main does the
 * same for the process queue. Each queue must then be empty (nothing
 * duplicated), and every thread queues the same signals again, for the next
 * check or dump.
 */
#include "prog_common.h"

#include <pthread.h>
#include <sys/syscall.h>

#define NWORKERS 3
#define N_SHARED 40
#define N_THREAD 16
#define SIG_SHARED (SIGRTMIN + 2)
#define SIG_THREAD (SIGRTMIN + 3)
#define SHARED_BASE 1000
#define THREAD_BASE(i) (10000 * ((i) + 1))

struct worker {
  pthread_t thread;
  int index; /* 1..NWORKERS; main is 0 */
  volatile int queued; /* its own signals are queued */
  volatile int round_done;
  char fail[256];
};

static struct worker workers[NWORKERS];
static volatile int check_round;

/* Takes every |sig| waiting for this thread (its own queue, then the
 * process's) and checks they are |n| with values base, base+1, ... */
static void take_and_check(int sig, int n, int base, const char *what, char *fail, size_t fail_len) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  const struct timespec zero = {0, 0};
  int got = 0;
  for (;;) {
    siginfo_t si;
    const int s = sigtimedwait(&set, &si, &zero);
    if (s < 0) {
      if (errno == EINTR) continue;
      break; /* EAGAIN: none left */
    }
    if (!fail[0]) {
      if (si.si_value.sival_int != base + got) {
        snprintf(fail, fail_len, "%s: signal #%d has value %d, want %d", what, got, si.si_value.sival_int, base + got);
      } else if (si.si_code != SI_QUEUE) {
        snprintf(fail, fail_len, "%s: signal #%d has si_code %d, want SI_QUEUE", what, got, si.si_code);
      } else if (si.si_pid != getpid()) {
        snprintf(fail, fail_len, "%s: signal #%d has si_pid %d, want %d", what, got, (int)si.si_pid, (int)getpid());
      }
    }
    got++;
  }
  if (!fail[0] && got != n) snprintf(fail, fail_len, "%s: %d signals taken, want %d", what, got, n);
}

static int queue_own(int index) {
  for (int k = 0; k < N_THREAD; k++) {
    union sigval v = {.sival_int = THREAD_BASE(index) + k};
    if (pthread_sigqueue(pthread_self(), SIG_THREAD, v) != 0) return -1;
  }
  return 0;
}

static int queue_shared(void) {
  for (int k = 0; k < N_SHARED; k++) {
    union sigval v = {.sival_int = SHARED_BASE + k};
    if (sigqueue(getpid(), SIG_SHARED, v) != 0) return -1;
  }
  return 0;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  char name[16];
  snprintf(name, sizeof(name), "sigq-%d", w->index);
  pthread_setname_np(pthread_self(), name);
  if (queue_own(w->index) != 0) snprintf(w->fail, sizeof(w->fail), "worker %d: pthread_sigqueue failed", w->index);
  __atomic_store_n(&w->queued, 1, __ATOMIC_RELEASE);
  for (;;) {
    const int round = check_round;
    if (round != w->round_done) {
      char what[64];
      snprintf(what, sizeof(what), "thread %d queue", w->index);
      w->fail[0] = 0;
      take_and_check(SIG_THREAD, N_THREAD, THREAD_BASE(w->index), what, w->fail, sizeof(w->fail));
      if (queue_own(w->index) != 0 && !w->fail[0]) {
        snprintf(w->fail, sizeof(w->fail), "worker %d: pthread_sigqueue again: %s", w->index, strerror(errno));
      }
      __atomic_store_n(&w->round_done, round, __ATOMIC_RELEASE);
    }
    cf_nap(20);
  }
  return NULL;
}

static void check(void) {
  char fail[256] = "";
  const int round = check_round + 1;
  __atomic_store_n(&check_round, round, __ATOMIC_RELEASE);
  take_and_check(SIG_THREAD, N_THREAD, THREAD_BASE(0), "main thread queue", fail, sizeof(fail));
  if (fail[0]) cf_failf("%s", fail);
  for (int i = 0; i < NWORKERS; i++) {
    const uint64_t t0 = cf_now_ns();
    while (__atomic_load_n(&workers[i].round_done, __ATOMIC_ACQUIRE) != round && cf_now_ns() - t0 < 10000000000ULL) {
      cf_nap(5);
    }
    if (workers[i].round_done != round) {
      cf_failf("worker %d did not check its queue", i + 1);
    } else if (workers[i].fail[0]) {
      cf_failf("%s", workers[i].fail);
    }
  }
  /* The process queue last: the workers never take SIG_SHARED. */
  fail[0] = 0;
  take_and_check(SIG_SHARED, N_SHARED, SHARED_BASE, "process queue", fail, sizeof(fail));
  if (fail[0]) cf_failf("%s", fail);
  sigset_t pend;
  sigpending(&pend);
  CF_CHECK(!sigismember(&pend, SIG_SHARED) && !sigismember(&pend, SIG_THREAD),
           "signals still pending after taking them all");
  if (queue_own(0) != 0 || queue_shared() != 0) cf_failf("cannot queue the signals again: %s", strerror(errno));
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "sigqueue_many W");
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIG_SHARED);
  sigaddset(&block, SIG_THREAD);
  if (sigprocmask(SIG_BLOCK, &block, NULL) != 0) cf_die("sigprocmask");
  for (int i = 0; i < NWORKERS; i++) {
    workers[i].index = i + 1;
    if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) cf_die("pthread_create");
  }
  if (queue_own(0) != 0 || queue_shared() != 0) cf_die("queue signals");
  /* Ready once every worker has queued its own. */
  for (int i = 0; i < NWORKERS; i++) {
    const uint64_t t0 = cf_now_ns();
    while (!__atomic_load_n(&workers[i].queued, __ATOMIC_ACQUIRE)) {
      if (cf_now_ns() - t0 > 10000000000ULL) cf_die("worker %d did not start", i + 1);
      cf_nap(5);
    }
    if (workers[i].fail[0]) cf_die("%s", workers[i].fail);
  }
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
