/* timers W: POSIX timers and an interval itimer that a restore must bring
 * back, checked from inside.
 *
 * Set up before W/ready, in a process of two threads (the leader and
 * "tm-worker"), with the raw syscalls so that the ids are the kernel's:
 *   first 5 scratch timers are created and 3 of them deleted, so the ids
 *   used below are not 0, 1, 2, 3 (a restore that created the timers in
 *   order without choosing their ids would give other ids);
 *   A  CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+2, sigev_value 0xa1a1a1a1a1,
 *      every 40 ms
 *   B  CLOCK_REALTIME, SIGEV_SIGNAL SIGRTMIN+3, value 0xb2, one shot in 1 h
 *   C  CLOCK_MONOTONIC, SIGEV_THREAD_ID to the worker, SIGRTMIN+4, value
 *      0xc3, every 60 ms
 *   D  CLOCK_BOOTTIME, SIGEV_NONE, disarmed
 *   ITIMER_REAL every 50 ms (SIGALRM counted)
 * With "timers W foreign-clock", a fifth timer runs on the worker's CPU
 * clock (pthread_getcpuclockid: a negative clock id), which a dump must
 * refuse; the checks ignore it.
 * The handlers (SA_SIGINFO) count deliveries and count as bad any whose
 * si_code is not SI_TIMER, whose si_timerid or si_value is not the timer's,
 * or (C) that runs in another thread than the worker.
 *
 * On SIGUSR1 the main loop checks:
 *   - /proc/self/timers lists exactly A..D with the saved ids, clocks,
 *     signals, values and notification (C: tid of the worker);
 *   - timer_gettime on the saved ids: A and C keep their intervals and have
 *     at most one interval left; B has between 50 min and 1 h left, no
 *     interval; D is disarmed;
 *   - getitimer(ITIMER_REAL) keeps the 50 ms interval;
 *   - within 1.5 s the counts of A, C and SIGALRM grow (by at least 3), B
 *     never fires, and no delivery was bad.
 */
#include "prog_common.h" /* first: it defines _GNU_SOURCE */

#include <pthread.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define SIG_A (SIGRTMIN + 2)
#define SIG_B (SIGRTMIN + 3)
#define SIG_C (SIGRTMIN + 4)
#define VAL_A 0xa1a1a1a1a1ULL
#define VAL_B 0xb2ULL
#define VAL_C 0xc3ULL

enum { TA, TB, TC, TD, NTIMERS };

/* The kernel's sigevent_t (x86-64). */
struct ksigevent {
  uint64_t value;
  int signo;
  int notify;
  int tid;
  int pad[11];
};

static int ids[NTIMERS];
static const int clocks[NTIMERS] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME};
static int worker_tid;
static int foreign_id = -1; /* the timer on the worker's CPU clock, if any */
static volatile sig_atomic_t count_a, count_b, count_c, count_alrm, bad;
static char bad_why[256];

/* From a handler: a plain copy, no stdio. */
static void note_bad(const char *why) {
  if (!bad) {
    size_t i = 0;
    for (; why[i] && i + 1 < sizeof(bad_why); i++) bad_why[i] = why[i];
    bad_why[i] = '\0';
  }
  bad++;
}

static void on_timer(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (si->si_code != SI_TIMER) {
    note_bad("timer signal with si_code other than SI_TIMER");
    return;
  }
  if (sig == SIG_A) {
    if (si->si_timerid != ids[TA] || (uint64_t)si->si_value.sival_ptr != VAL_A) note_bad("A: wrong timerid/value");
    count_a++;
  } else if (sig == SIG_B) {
    count_b++;
  } else if (sig == SIG_C) {
    if (si->si_timerid != ids[TC] || (uint64_t)si->si_value.sival_ptr != VAL_C) note_bad("C: wrong timerid/value");
    if (syscall(SYS_gettid) != worker_tid) note_bad("C: delivered to a thread other than the worker");
    count_c++;
  }
}

static void on_alarm(int sig) {
  (void)sig;
  count_alrm++;
}

static int make_timer(int clock, int notify, int signo, uint64_t value, int tid) {
  struct ksigevent ev;
  memset(&ev, 0, sizeof(ev));
  ev.value = value;
  ev.signo = signo;
  ev.notify = notify;
  ev.tid = tid;
  int id = -1;
  if (syscall(SYS_timer_create, clock, &ev, &id) != 0) cf_die("timer_create");
  return id;
}

static void arm(int id, long value_ms, long interval_ms) {
  struct itimerspec its = {{interval_ms / 1000, (interval_ms % 1000) * 1000000L},
                           {value_ms / 1000, (value_ms % 1000) * 1000000L}};
  if (syscall(SYS_timer_settime, id, 0, &its, NULL) != 0) cf_die("timer_settime %d", id);
}

static void *worker(void *arg) {
  (void)arg;
  worker_tid = (int)syscall(SYS_gettid);
  for (;;) cf_nap(100);
  return NULL;
}

static int64_t ts_ns(const struct timespec *t) { return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec; }

/* /proc/self/timers must list exactly our four timers, as created. */
static void check_proc_timers(void) {
  FILE *f = fopen("/proc/self/timers", "r");
  if (!f) {
    cf_failf("open /proc/self/timers: %s", strerror(errno));
    return;
  }
  char line[256], kind[32], who[8];
  int seen[NTIMERS] = {0}, n = 0, cur = -1;
  while (fgets(line, sizeof(line), f)) {
    int id, signo, clock, pid;
    unsigned long long value;
    if (sscanf(line, "ID: %d", &id) == 1) {
      cur = -1;
      if (id == foreign_id) continue;
      n++;
      for (int i = 0; i < NTIMERS; i++)
        if (ids[i] == id) cur = i;
      CF_CHECK(cur >= 0, "/proc/self/timers lists timer %d, not one of ours", id);
      if (cur >= 0) seen[cur]++;
    } else if (cur < 0) {
      continue;
    } else if (sscanf(line, "signal: %d/%llx", &signo, &value) == 2) {
      const int sigs[NTIMERS] = {SIG_A, SIG_B, SIG_C, 0};
      const uint64_t vals[NTIMERS] = {VAL_A, VAL_B, VAL_C, 0};
      if (cur != TD) {
        CF_CHECK(signo == sigs[cur] && value == vals[cur], "timer %d: signal %d/%llx", ids[cur], signo, value);
      }
    } else if (sscanf(line, "notify: %31[a-z]/%7[a-z].%d", kind, who, &pid) == 3) {
      if (cur == TD) {
        CF_CHECK(!strcmp(kind, "none"), "timer D (%d): notify %s", ids[cur], kind);
      } else if (cur == TC) {
        CF_CHECK(!strcmp(kind, "signal") && !strcmp(who, "tid") && pid == worker_tid,
                 "timer C (%d): notify %s/%s.%d, want signal/tid.%d", ids[cur], kind, who, pid, worker_tid);
      } else {
        CF_CHECK(!strcmp(kind, "signal") && !strcmp(who, "pid") && pid == getpid(),
                 "timer %d: notify %s/%s.%d", ids[cur], kind, who, pid);
      }
    } else if (sscanf(line, "ClockID: %d", &clock) == 1) {
      CF_CHECK(clock == clocks[cur], "timer %d: clock %d, want %d", ids[cur], clock, clocks[cur]);
    }
  }
  fclose(f);
  CF_CHECK(n == NTIMERS, "/proc/self/timers lists %d timers, want %d", n, NTIMERS);
  for (int i = 0; i < NTIMERS; i++) CF_CHECK(seen[i] == 1, "timer %d listed %d times", ids[i], seen[i]);
}

static void check_values(void) {
  struct itimerspec its[NTIMERS];
  for (int i = 0; i < NTIMERS; i++) {
    if (syscall(SYS_timer_gettime, ids[i], &its[i]) != 0) {
      cf_failf("timer_gettime of saved id %d: %s", ids[i], strerror(errno));
      return;
    }
  }
  const int64_t ms = 1000000;
  CF_CHECK(ts_ns(&its[TA].it_interval) == 40 * ms, "A: interval %lld ns", (long long)ts_ns(&its[TA].it_interval));
  CF_CHECK(ts_ns(&its[TA].it_value) > 0 && ts_ns(&its[TA].it_value) <= 40 * ms, "A: %lld ns left",
           (long long)ts_ns(&its[TA].it_value));
  CF_CHECK(ts_ns(&its[TB].it_interval) == 0, "B: has an interval");
  CF_CHECK(its[TB].it_value.tv_sec >= 3000 && its[TB].it_value.tv_sec <= 3600, "B: %lld s left",
           (long long)its[TB].it_value.tv_sec);
  CF_CHECK(ts_ns(&its[TC].it_interval) == 60 * ms, "C: interval %lld ns", (long long)ts_ns(&its[TC].it_interval));
  CF_CHECK(ts_ns(&its[TC].it_value) > 0 && ts_ns(&its[TC].it_value) <= 60 * ms, "C: %lld ns left",
           (long long)ts_ns(&its[TC].it_value));
  CF_CHECK(ts_ns(&its[TD].it_value) == 0 && ts_ns(&its[TD].it_interval) == 0, "D: armed");

  struct itimerval it;
  if (getitimer(ITIMER_REAL, &it) != 0) {
    cf_failf("getitimer: %s", strerror(errno));
    return;
  }
  CF_CHECK(it.it_interval.tv_sec == 0 && it.it_interval.tv_usec == 50000, "ITIMER_REAL interval %ld.%06ld",
           (long)it.it_interval.tv_sec, (long)it.it_interval.tv_usec);
  CF_CHECK(it.it_value.tv_sec != 0 || it.it_value.tv_usec != 0, "ITIMER_REAL disarmed");
}

/* The periodic ones keep firing: counts grow by 3 or more within 1.5 s. */
static void check_firing(void) {
  const int a0 = count_a, c0 = count_c, r0 = count_alrm;
  const uint64_t end = cf_now_ns() + 1500000000ULL;
  while (cf_now_ns() < end && (count_a < a0 + 3 || count_c < c0 + 3 || count_alrm < r0 + 3)) cf_nap(20);
  CF_CHECK(count_a >= a0 + 3, "timer A fired %d times in 1.5 s", count_a - a0);
  CF_CHECK(count_c >= c0 + 3, "timer C fired %d times in 1.5 s", count_c - c0);
  CF_CHECK(count_alrm >= r0 + 3, "ITIMER_REAL fired %d times in 1.5 s", count_alrm - r0);
  CF_CHECK(count_b == 0, "timer B (1 h) fired");
  CF_CHECK(!bad, "%d bad timer signals, first: %s", (int)bad, bad_why);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "timers W");

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_timer;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIG_A, &sa, NULL) || sigaction(SIG_B, &sa, NULL) || sigaction(SIG_C, &sa, NULL))
    cf_die("sigaction");
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGALRM, &sa, NULL)) cf_die("sigaction(SIGALRM)");

  /* The worker takes C's signal; the leader blocks it, so only a
   * thread-directed delivery can reach the handler at all. */
  sigset_t c_only;
  sigemptyset(&c_only);
  sigaddset(&c_only, SIG_C);
  pthread_t th;
  if (pthread_create(&th, NULL, worker, NULL) != 0) cf_die("pthread_create");
  pthread_setname_np(th, "tm-worker");
  pthread_sigmask(SIG_BLOCK, &c_only, NULL);
  while (!worker_tid) cf_nap(1);

  int scratch[5];
  for (int i = 0; i < 5; i++) scratch[i] = make_timer(CLOCK_MONOTONIC, SIGEV_NONE, SIGALRM, 0, 0);
  syscall(SYS_timer_delete, scratch[0]);
  syscall(SYS_timer_delete, scratch[2]);
  syscall(SYS_timer_delete, scratch[4]);
  ids[TA] = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIG_A, VAL_A, 0);
  ids[TB] = make_timer(CLOCK_REALTIME, SIGEV_SIGNAL, SIG_B, VAL_B, 0);
  ids[TC] = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL | SIGEV_THREAD_ID, SIG_C, VAL_C, worker_tid);
  ids[TD] = make_timer(CLOCK_BOOTTIME, SIGEV_NONE, 0, 0, 0);
  syscall(SYS_timer_delete, scratch[1]);
  syscall(SYS_timer_delete, scratch[3]);
  if (argc > 2 && !strcmp(argv[2], "foreign-clock")) {
    clockid_t cpu;
    if (pthread_getcpuclockid(th, &cpu) != 0) cf_die("pthread_getcpuclockid");
    foreign_id = make_timer(cpu, SIGEV_NONE, 0, 0, 0);
  }
  arm(ids[TA], 40, 40);
  arm(ids[TB], 3600 * 1000L, 0);
  arm(ids[TC], 60, 60);
  struct itimerval it = {{0, 50000}, {0, 50000}};
  if (setitimer(ITIMER_REAL, &it, NULL) != 0) cf_die("setitimer");

  /* W/ids: "A B C D worker-tid foreign", for the driver to compare with show. */
  char buf[128];
  snprintf(buf, sizeof(buf), "%d %d %d %d %d %d\n", ids[TA], ids[TB], ids[TC], ids[TD], worker_tid, foreign_id);
  if (cf_write_file("ids", buf) != 0) cf_die("write ids");
  cf_ready();

  for (;;) {
    if (cf_take_usr1()) {
      check_proc_timers();
      check_values();
      check_firing();
      cf_report();
    }
    cf_nap(50);
  }
}
