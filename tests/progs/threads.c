/* threads W: a process with 4 threads (the main one and 3 workers), each
 * with its own TLS values, counter, name and stack data.
 *
 * Workers spin incrementing their counter, checking on every round that
 * their thread-local values and a stack value are intact and that gettid()
 * still gives the tid they started with; worker 2 also sleeps now and then
 * (so a dump may catch it inside a syscall) and worker 3 waits on a
 * condition variable that main signals (so it may be caught in a futex).
 * On SIGUSR1 main checks: every counter advances, no worker saw a bad value,
 * each thread's name in /proc/self/task/TID/comm is the one it set, and its
 * own TLS is intact.
 */
#include "prog_common.h"

#include <pthread.h>
#include <sys/syscall.h>

#define NWORKERS 3

static __thread uint64_t tls_value;
static __thread char tls_name[16];

struct worker {
  pthread_t thread;
  int index;
  pid_t tid;
  volatile uint64_t counter;
  volatile int bad;  /* first problem seen, 0 if none */
  char name[16];
};

static struct worker workers[NWORKERS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static volatile uint64_t cv_rounds;

static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

static void *worker_main(void *arg) {
  struct worker *w = arg;
  w->tid = my_tid();
  tls_value = 0xABCD0000ULL + (uint64_t)w->index;
  snprintf(tls_name, sizeof(tls_name), "tls-%d", w->index);
  /* worker 2's name has a backslash and a space (escaped in /proc status). */
  snprintf(w->name, sizeof(w->name), w->index == 2 ? "worker\\%d x" : "worker-%d", w->index);
  pthread_setname_np(pthread_self(), w->name);
  volatile uint64_t on_stack = 0x5EED0000ULL + (uint64_t)w->index;
  for (;;) {
    for (int i = 0; i < 10000; i++) w->counter = w->counter + 1;
    if (tls_value != 0xABCD0000ULL + (uint64_t)w->index && !w->bad) w->bad = 1;
    char want[16];
    snprintf(want, sizeof(want), "tls-%d", w->index);
    if (strcmp(tls_name, want) != 0 && !w->bad) w->bad = 2;
    if (on_stack != 0x5EED0000ULL + (uint64_t)w->index && !w->bad) w->bad = 3;
    if (my_tid() != w->tid && !w->bad) w->bad = 4;
    if (w->index == 1) cf_nap(1);
    if (w->index == 2) {
      pthread_mutex_lock(&mu);
      uint64_t seen = cv_rounds;
      while (cv_rounds == seen) pthread_cond_wait(&cv, &mu);
      pthread_mutex_unlock(&mu);
    }
    cf_check_lifetime();
  }
  return NULL;
}

static void check_names(void) {
  for (int i = 0; i < NWORKERS; i++) {
    char path[64], comm[64] = {0};
    snprintf(path, sizeof(path), "/proc/self/task/%d/comm", workers[i].tid);
    FILE *f = fopen(path, "r");
    if (!f) {
      cf_failf("worker %d: no /proc entry for tid %d", i, workers[i].tid);
      continue;
    }
    if (fgets(comm, sizeof(comm), f)) comm[strcspn(comm, "\n")] = 0;
    fclose(f);
    CF_CHECK(strcmp(comm, workers[i].name) == 0, "worker %d: name '%s', want '%s'", i, comm, workers[i].name);
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "threads W");
  tls_value = 0xABCDFFFFULL;
  pid_t main_tid = my_tid();
  for (int i = 0; i < NWORKERS; i++) {
    workers[i].index = i;
    if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) cf_die("pthread_create");
  }
  for (int i = 0; i < NWORKERS; i++) {
    while (!workers[i].tid || !workers[i].counter) cf_nap(1);
  }
  cf_ready();
  for (;;) {
    pthread_mutex_lock(&mu);
    cv_rounds++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    if (cf_take_usr1()) {
      uint64_t before[NWORKERS];
      for (int i = 0; i < NWORKERS; i++) before[i] = workers[i].counter;
      for (int k = 0; k < 50; k++) {  /* keep worker 2 going while we sample */
        pthread_mutex_lock(&mu);
        cv_rounds++;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        cf_nap(2);
      }
      for (int i = 0; i < NWORKERS; i++) {
        CF_CHECK(workers[i].counter > before[i], "worker %d stopped counting", i);
        CF_CHECK(!workers[i].bad, "worker %d saw problem %d", i, workers[i].bad);
      }
      CF_CHECK(tls_value == 0xABCDFFFFULL, "main TLS changed");
      CF_CHECK(my_tid() == main_tid, "main tid changed");
      check_names();
      cf_report();
    }
    cf_nap(5);
  }
}
