/* signals W: signal state a restore must bring back, checked from inside.
 *
 * Set up before W/ready:
 *   SIGUSR2   SA_SIGINFO|SA_RESTART handler, sa_mask {SIGQUIT, SIGRTMIN+3}
 *   SIGHUP    ignored
 *   SIGPWR    SA_RESETHAND|SA_NODEFER handler (never sent)
 *   SIGWINCH  SA_ONSTACK|SA_SIGINFO handler that records whether it runs on
 *             the alternate stack (address of a local, and sigaltstack's
 *             SS_ONSTACK)
 *   SIGTERM, SIGINT, SIGRTMIN+1: SA_SIGINFO handlers that record the siginfo
 *   SIGALRM   SA_RESTART handler counting; ITIMER_REAL every 0.2 s
 *   sigaltstack: 64 KiB of a static buffer
 *   blocked: SIGINT, SIGTERM, SIGPIPE, SIGRTMIN+1
 *   pending while blocked: SIGTERM raised (thread-directed, SigPnd), SIGINT
 *     sent with kill(getpid()) (process-wide, ShdPnd), and SIGRTMIN+1 queued
 *     three times with sigqueue, values 1, 2, 3 (ShdPnd)
 * The whole sigaction table (signals 1..64 as the kernel has them: handler,
 * flags, restorer, mask), the blocked mask and the alt stack are saved in
 * memory at setup.
 *
 * On SIGUSR1 the check:
 *   - every sigaction (handler, flags, restorer, mask) equals the saved one, the mask
 *     too, sigaltstack too (not on it, same sp and size);
 *   - /proc/self/status: SigPnd has SIGTERM, ShdPnd has SIGINT and
 *     SIGRTMIN+1, SigQ counts at least these 5 (it counts the whole user);
 *     sigpending agrees;
 *   - unblocking SIGRTMIN+1 delivers exactly three, with values 1, 2, 3 in
 *     that order, si_code SI_QUEUE and si_pid our pid; unblocking SIGTERM and
 *     SIGINT delivers each once (SI_TKILL, SI_USER); then all of them are
 *     blocked and made pending again, as before, for the next check;
 *   - SIGHUP sent to itself is ignored (the program lives on);
 *   - SIGWINCH raised runs its handler on the alternate stack;
 *   - the itimer still has its 0.2 s interval and SIGALRM keeps coming (at
 *     least 2 in 0.7 s).
 */
#include "prog_common.h"  /* first: it defines _GNU_SOURCE */

#include <sys/syscall.h>
#include <sys/time.h>

#define ALT_SIZE (64 * 1024)
#define RT_SIG (SIGRTMIN + 1)

static unsigned char altstack[ALT_SIZE] __attribute__((aligned(16)));
/* The kernel's struct sigaction (x86-64), read with the raw syscall: glibc
 * hides signals 32 and 33, which it uses itself. */
struct ksigaction {
  unsigned long handler, flags, restorer;
  uint64_t mask;
};
static struct ksigaction saved_sa[65];
static sigset_t saved_mask;
static stack_t saved_ss;

static volatile sig_atomic_t alarms, usr2s, pwrs;
static volatile sig_atomic_t winch_runs, winch_on_alt, winch_ss_onstack;
/* Delivered SIGRTMIN+1 values, SIGTERM/SIGINT siginfo. */
static volatile int rt_values[16], rt_codes[16], rt_pids[16];
static volatile sig_atomic_t rt_count;
static volatile sig_atomic_t term_count, term_code, term_pid, int_count, int_code, int_pid;

static void on_alarm(int sig) {
  (void)sig;
  alarms++;
}
static void on_usr2(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)si, (void)uc;
  usr2s++;
}
static void on_pwr(int sig) {
  (void)sig;
  pwrs++;
}
static void on_winch(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)si, (void)uc;
  volatile char local = 0;
  const unsigned char *p = (const unsigned char *)&local;
  winch_on_alt = p >= altstack && p < altstack + ALT_SIZE;
  stack_t ss;
  winch_ss_onstack = sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK);
  winch_runs++;
}
static void on_rt(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  const int i = rt_count;
  if (i < 16) {
    rt_values[i] = si->si_value.sival_int;
    rt_codes[i] = si->si_code;
    rt_pids[i] = si->si_pid;
  }
  rt_count = i + 1;
}
static void on_term(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  term_count++;
  term_code = si->si_code;
  term_pid = si->si_pid;
}
static void on_int(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  int_count++;
  int_code = si->si_code;
  int_pid = si->si_pid;
}

static int read_action(int sig, struct ksigaction *out) {
  memset(out, 0, sizeof(*out));
  return (int)syscall(SYS_rt_sigaction, sig, NULL, out, 8);
}

static void set_action(int sig, void (*handler)(int), void (*action)(int, siginfo_t *, void *), int flags,
                       const int *mask_sigs) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  if (action) {
    sa.sa_sigaction = action;
    flags |= SA_SIGINFO;
  } else {
    sa.sa_handler = handler;
  }
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  for (const int *m = mask_sigs; m && *m; m++) sigaddset(&sa.sa_mask, *m);
  if (sigaction(sig, &sa, NULL) != 0) cf_die("sigaction %d", sig);
}

/* Blocks the test signals and makes them pending: SIGTERM thread-directed,
 * SIGINT process-wide, SIGRTMIN+1 queued with 1, 2, 3. */
static int make_pending(void) {
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, RT_SIG);
  if (sigprocmask(SIG_BLOCK, &block, NULL) != 0) return -1;
  if (raise(SIGTERM) != 0) return -1;
  if (kill(getpid(), SIGINT) != 0) return -1;
  for (int v = 1; v <= 3; v++) {
    union sigval val = {.sival_int = v};
    if (sigqueue(getpid(), RT_SIG, val) != 0) return -1;
  }
  return 0;
}

static void setup(void) {
  const int usr2_mask[] = {SIGQUIT, SIGRTMIN + 3, 0};
  set_action(SIGUSR2, NULL, on_usr2, SA_RESTART, usr2_mask);
  set_action(SIGHUP, SIG_IGN, NULL, 0, NULL);
  set_action(SIGPWR, on_pwr, NULL, SA_RESETHAND | SA_NODEFER, NULL);
  set_action(SIGWINCH, NULL, on_winch, SA_ONSTACK, NULL);
  set_action(SIGTERM, NULL, on_term, 0, NULL);
  set_action(SIGINT, NULL, on_int, 0, NULL);
  set_action(RT_SIG, NULL, on_rt, SA_RESTART, NULL);
  set_action(SIGALRM, on_alarm, NULL, SA_RESTART, NULL);

  stack_t ss = {.ss_sp = altstack, .ss_size = ALT_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) cf_die("sigaltstack");

  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGPIPE);
  if (sigprocmask(SIG_BLOCK, &block, NULL) != 0) cf_die("sigprocmask");
  if (make_pending() != 0) cf_die("make signals pending");

  struct itimerval it = {{0, 200000}, {0, 200000}};
  if (setitimer(ITIMER_REAL, &it, NULL) != 0) cf_die("setitimer");

  for (int s = 1; s <= 64; s++) {
    if (read_action(s, &saved_sa[s]) != 0) cf_die("rt_sigaction(%d) read", s);
  }
  sigprocmask(SIG_SETMASK, NULL, &saved_mask);
  if (sigaltstack(NULL, &saved_ss) != 0) cf_die("sigaltstack read");
}

static uint64_t kernel_mask(const sigset_t *set) {
  uint64_t m = 0;
  for (int s = 1; s <= 64; s++) {
    if (sigismember(set, s) == 1) m |= 1ULL << (s - 1);
  }
  return m;
}

/* A "Name:\t<hex>" line of /proc/self/status, or ~0 when missing. */
static uint64_t status_hex(const char *name) {
  FILE *f = fopen("/proc/self/status", "re");
  if (!f) return ~0ULL;
  char line[512];
  uint64_t v = ~0ULL;
  const size_t n = strlen(name);
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, name, n) == 0 && line[n] == ':') {
      v = strtoull(line + n + 1, NULL, 16);
      break;
    }
  }
  fclose(f);
  return v;
}

/* SigQ: "<queued>/<limit>". */
static long status_sigq(void) {
  FILE *f = fopen("/proc/self/status", "re");
  if (!f) return -1;
  char line[512];
  long v = -1;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "SigQ:", 5) == 0) {
      v = strtol(line + 5, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

static void check_dispositions(void) {
  for (int s = 1; s <= 64; s++) {
    struct ksigaction sa;
    if (read_action(s, &sa) != 0) {
      cf_failf("rt_sigaction(%d): %s", s, strerror(errno));
      continue;
    }
    const struct ksigaction *w = &saved_sa[s];
    CF_CHECK(sa.handler == w->handler, "signal %d: handler %#lx, want %#lx", s, sa.handler, w->handler);
    CF_CHECK(sa.flags == w->flags, "signal %d: flags %#lx, want %#lx", s, sa.flags, w->flags);
    CF_CHECK(sa.restorer == w->restorer, "signal %d: restorer %#lx, want %#lx", s, sa.restorer, w->restorer);
    CF_CHECK(sa.mask == w->mask, "signal %d: sa_mask %#llx, want %#llx", s, (unsigned long long)sa.mask,
             (unsigned long long)w->mask);
  }
  sigset_t cur;
  sigprocmask(SIG_SETMASK, NULL, &cur);
  CF_CHECK(kernel_mask(&cur) == kernel_mask(&saved_mask), "blocked mask %#llx, want %#llx",
           (unsigned long long)kernel_mask(&cur), (unsigned long long)kernel_mask(&saved_mask));
  stack_t ss;
  if (sigaltstack(NULL, &ss) != 0) {
    cf_failf("sigaltstack: %s", strerror(errno));
  } else {
    CF_CHECK(ss.ss_sp == saved_ss.ss_sp && ss.ss_size == saved_ss.ss_size && ss.ss_flags == saved_ss.ss_flags,
             "sigaltstack sp %p size %zu flags %#x, want %p %zu %#x", ss.ss_sp, ss.ss_size, ss.ss_flags,
             saved_ss.ss_sp, saved_ss.ss_size, saved_ss.ss_flags);
  }
}

static void check_pending(void) {
  const uint64_t bit_int = 1ULL << (SIGINT - 1), bit_term = 1ULL << (SIGTERM - 1), bit_rt = 1ULL << (RT_SIG - 1);
  const uint64_t thr = status_hex("SigPnd"), shd = status_hex("ShdPnd");
  CF_CHECK(thr == bit_term, "SigPnd (thread) %#llx, want %#llx (SIGTERM)", (unsigned long long)thr,
           (unsigned long long)bit_term);
  CF_CHECK(shd == (bit_int | bit_rt), "ShdPnd (process) %#llx, want %#llx (SIGINT, SIGRTMIN+1)",
           (unsigned long long)shd, (unsigned long long)(bit_int | bit_rt));
  const long q = status_sigq();
  /* SigQ counts every process of our user: at least our five. */
  CF_CHECK(q >= 5, "SigQ: %ld signals queued, want at least 5 (SIGTERM, SIGINT, 3 x SIGRTMIN+1)", q);
  sigset_t pend;
  sigpending(&pend);
  CF_CHECK(kernel_mask(&pend) == (bit_int | bit_term | bit_rt), "sigpending %#llx, want %#llx",
           (unsigned long long)kernel_mask(&pend), (unsigned long long)(bit_int | bit_term | bit_rt));
  CF_CHECK(term_count == 0 && int_count == 0 && rt_count == 0, "blocked signals were delivered: %d %d %d",
           (int)term_count, (int)int_count, (int)rt_count);
  if (cf_prog.fail[0]) return;

  /* Deliver them. */
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, RT_SIG);
  sigprocmask(SIG_UNBLOCK, &one, NULL); /* delivered before this returns */
  CF_CHECK(rt_count == 3, "SIGRTMIN+1: %d delivered, want 3", (int)rt_count);
  for (int i = 0; i < rt_count && i < 3; i++) {
    CF_CHECK(rt_values[i] == i + 1, "SIGRTMIN+1 #%d: value %d, want %d (order 1, 2, 3)", i + 1, rt_values[i], i + 1);
    CF_CHECK(rt_codes[i] == SI_QUEUE, "SIGRTMIN+1 #%d: si_code %d, want SI_QUEUE", i + 1, rt_codes[i]);
    CF_CHECK(rt_pids[i] == getpid(), "SIGRTMIN+1 #%d: si_pid %d, want %d", i + 1, rt_pids[i], (int)getpid());
  }
  sigemptyset(&one);
  sigaddset(&one, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &one, NULL);
  CF_CHECK(term_count == 1, "SIGTERM: delivered %d times, want 1", (int)term_count);
  CF_CHECK(term_code == SI_TKILL && term_pid == getpid(), "SIGTERM: si_code %d si_pid %d, want SI_TKILL and %d",
           (int)term_code, (int)term_pid, (int)getpid());
  sigemptyset(&one);
  sigaddset(&one, SIGINT);
  sigprocmask(SIG_UNBLOCK, &one, NULL);
  CF_CHECK(int_count == 1, "SIGINT: delivered %d times, want 1", (int)int_count);
  CF_CHECK(int_code == SI_USER && int_pid == getpid(), "SIGINT: si_code %d si_pid %d, want SI_USER and %d",
           (int)int_code, (int)int_pid, (int)getpid());
  CF_CHECK(status_hex("SigPnd") == 0 && status_hex("ShdPnd") == 0, "signals still pending after delivery");

  /* The same state again, for the next check or dump. */
  if (make_pending() != 0) cf_failf("cannot make the signals pending again: %s", strerror(errno));
  rt_count = 0;
  term_count = int_count = 0;
  sigset_t cur;
  sigprocmask(SIG_SETMASK, NULL, &cur);
  CF_CHECK(kernel_mask(&cur) == kernel_mask(&saved_mask), "mask after re-blocking %#llx, want %#llx",
           (unsigned long long)kernel_mask(&cur), (unsigned long long)kernel_mask(&saved_mask));
}

static void check_delivery(void) {
  /* Ignored: nothing happens. */
  kill(getpid(), SIGHUP);
  /* On the alternate stack. */
  winch_runs = winch_on_alt = winch_ss_onstack = 0;
  raise(SIGWINCH);
  CF_CHECK(winch_runs == 1, "SIGWINCH handler ran %d times", (int)winch_runs);
  CF_CHECK(winch_on_alt, "SIGWINCH handler (SA_ONSTACK) did not run on the alternate stack");
  CF_CHECK(winch_ss_onstack, "SIGWINCH handler: sigaltstack does not say SS_ONSTACK");
  CF_CHECK(usr2s == 0 && pwrs == 0, "SIGUSR2/SIGPWR handlers ran (%d, %d)", (int)usr2s, (int)pwrs);

  /* The timer. */
  struct itimerval it;
  getitimer(ITIMER_REAL, &it);
  CF_CHECK(it.it_interval.tv_sec == 0 && it.it_interval.tv_usec == 200000, "itimer interval %lld.%06lld s, want 0.2",
           (long long)it.it_interval.tv_sec, (long long)it.it_interval.tv_usec);
  CF_CHECK(it.it_value.tv_sec == 0 && it.it_value.tv_usec > 0 && it.it_value.tv_usec <= 200000,
           "itimer value %lld.%06lld s, want in (0, 0.2]", (long long)it.it_value.tv_sec,
           (long long)it.it_value.tv_usec);
  const int a0 = alarms;
  const uint64_t t0 = cf_now_ns();
  while (cf_now_ns() - t0 < 700000000ULL) {
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
  }
  CF_CHECK(alarms - a0 >= 2, "SIGALRM: %d in 0.7 s with a 0.2 s itimer, want >= 2", alarms - a0);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "signals W");
  setup();
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check_dispositions();
      check_pending();
      check_delivery();
      cf_report();
    }
    cf_nap(20);
  }
}
