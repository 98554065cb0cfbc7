/* timerfds W: timerfds in every state a dump meets.
 *
 *   tp  CLOCK_MONOTONIC, first expiry after 1 ms then every 100 ms, non-blocking:
 *       fired several times and not read
 *   tl  CLOCK_BOOTTIME, first expiry after 1 ms then every 1000 s, non-blocking:
 *       fired exactly once, not read; tl2 = dup(tl), close-on-exec
 *   to  CLOCK_MONOTONIC one-shot in 1000 s, blocking: armed, never fired
 *   te  CLOCK_MONOTONIC one-shot after 1 ms, non-blocking: fired once, not read
 *   td  CLOCK_REALTIME, never armed, non-blocking
 *   ta  CLOCK_REALTIME, TFD_TIMER_ABSTIME|TFD_TIMER_CANCEL_ON_SET at a wall-clock
 *       deadline 1000 s after setup, non-blocking
 *
 * On SIGUSR1 it checks each one (clock from fdinfo, flags, timerfd_gettime,
 * what a read returns), that tp keeps firing (a new expiration within 1 s of
 * reading it), that tl and tl2 are one open file description, then re-arms
 * tp, tl and te as at setup (a read consumed their expirations) so the next
 * dump meets the same states.
 */
#include "prog_common.h"

#include <poll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>

static int tp, tl, tl2, to, te, td, ta;
static time_t deadline;

#define MS 1000000L

static void Arm(int fd, int flags, time_t vs, long vns, time_t is, long ins, const char *what) {
  struct itimerspec its = {{is, ins}, {vs, vns}};
  if (timerfd_settime(fd, flags, &its, NULL) != 0) cf_die("timerfd_settime %s", what);
}

static void ArmAll(void) {
  Arm(tp, 0, 0, 1 * MS, 0, 100 * MS, "tp");
  Arm(tl, 0, 0, 1 * MS, 1000, 0, "tl");
  Arm(te, 0, 0, 1 * MS, 0, 0, "te");
  cf_nap(350); /* tp fires ~4 times, tl and te once */
}

static int ClockOf(int fd) {
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
  int f = open(path, O_RDONLY);
  if (f < 0) return -1;
  ssize_t n = read(f, buf, sizeof(buf) - 1);
  close(f);
  buf[n > 0 ? n : 0] = 0;
  char *p = strstr(buf, "clockid:");
  return p ? atoi(p + 8) : -1;
}

/* read() of a timerfd: the expirations, 0 for EAGAIN, -1 for another error. */
/* Expirations read (0 when none is pending), or -errno. */
static long long Ticks(int fd) {
  uint64_t v = 0;
  ssize_t n = read(fd, &v, sizeof(v));
  if (n == (ssize_t)sizeof(v)) return (long long)v;
  if (n < 0 && errno == EAGAIN) return 0;
  return n < 0 ? -errno : -EIO;
}

static void Get(int fd, struct itimerspec *its, const char *what) {
  memset(its, 0, sizeof(*its));
  CF_CHECK(timerfd_gettime(fd, its) == 0, "%s: timerfd_gettime: %s", what, strerror(errno));
}

static void Check(void) {
  struct itimerspec its;
  CF_CHECK(ClockOf(tp) == CLOCK_MONOTONIC && ClockOf(tl) == CLOCK_BOOTTIME && ClockOf(to) == CLOCK_MONOTONIC &&
               ClockOf(td) == CLOCK_REALTIME && ClockOf(ta) == CLOCK_REALTIME,
           "clocks %d %d %d %d %d", ClockOf(tp), ClockOf(tl), ClockOf(to), ClockOf(td), ClockOf(ta));
  CF_CHECK((fcntl(tp, F_GETFL) & O_NONBLOCK) && !(fcntl(to, F_GETFL) & O_NONBLOCK), "O_NONBLOCK flags lost");
  CF_CHECK(fcntl(tl2, F_GETFD) == FD_CLOEXEC && fcntl(tl, F_GETFD) == 0, "close-on-exec bits lost");
  CF_CHECK(syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, tl, tl2) == 0,
           "tl and tl2 are no longer one open file description");

  /* tp: periodic, expirations pending; then keeps firing. */
  Get(tp, &its, "tp");
  CF_CHECK(its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == 100 * MS, "tp: period %ld.%09ld",
           (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
  long long n = Ticks(tp);
  CF_CHECK(n >= 1, "tp: read gives %lld expirations, want at least 1", n);
  struct pollfd pfd = {tp, POLLIN, 0};
  CF_CHECK(poll(&pfd, 1, 1000) == 1 && Ticks(tp) >= 1, "tp: no expiration within 1 s after a read");

  /* tl: exactly one expiration pending, next one ~1000 s away. */
  Get(tl2, &its, "tl");
  CF_CHECK(its.it_interval.tv_sec == 1000 && its.it_value.tv_sec > 900 && its.it_value.tv_sec < 1000,
           "tl: next in %ld s every %ld s, want 900..1000 every 1000", (long)its.it_value.tv_sec,
           (long)its.it_interval.tv_sec);
  n = Ticks(tl2);
  CF_CHECK(n == 1, "tl: read gives %lld expirations, want exactly 1", n);
  CF_CHECK(Ticks(tl) == 0, "tl: a second read gives more");

  /* to: armed one-shot, nothing pending. */
  Get(to, &its, "to");
  CF_CHECK(its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == 0 && its.it_value.tv_sec > 900 &&
               its.it_value.tv_sec < 1000,
           "to: next in %ld s (period %ld), want 900..1000, one-shot", (long)its.it_value.tv_sec,
           (long)its.it_interval.tv_sec);
  int fl = fcntl(to, F_GETFL);
  fcntl(to, F_SETFL, fl | O_NONBLOCK);
  CF_CHECK(Ticks(to) == 0, "to: has expirations");
  fcntl(to, F_SETFL, fl);

  /* te: expired one-shot: disarmed, one expiration pending. */
  Get(te, &its, "te");
  CF_CHECK(its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0 && its.it_interval.tv_nsec == 0,
           "te: armed again (%ld.%09ld)", (long)its.it_value.tv_sec, its.it_value.tv_nsec);
  n = Ticks(te);
  CF_CHECK(n == 1, "te: read gives %lld expirations, want 1", n);

  /* td: never armed. */
  Get(td, &its, "td");
  CF_CHECK(its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0, "td: armed");
  CF_CHECK(Ticks(td) == 0, "td: has expirations");

  /* ta: absolute wall-clock deadline, the same after restore. */
  Get(ta, &its, "ta");
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long left = (long)(deadline - now.tv_sec);
  CF_CHECK(labs((long)its.it_value.tv_sec - left) <= 2, "ta: %ld s left, the deadline is %ld s away",
           (long)its.it_value.tv_sec, left);
  /* ECANCELED: the wall clock was set meanwhile (by the machine's time
   * keeping), which TFD_TIMER_CANCEL_ON_SET reports: an event of the
   * machine, not of the dump or restore. */
  n = Ticks(ta);
  CF_CHECK(n == 0 || n == -ECANCELED, "ta: read gives %lld (expirations, or -errno)", n);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "timerfds W");
  tp = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  tl = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
  to = timerfd_create(CLOCK_MONOTONIC, 0);
  te = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  td = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
  ta = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
  if (tp < 0 || tl < 0 || to < 0 || te < 0 || td < 0 || ta < 0) cf_die("timerfd_create");
  tl2 = fcntl(tl, F_DUPFD_CLOEXEC, 0);
  if (tl2 < 0) cf_die("dup");
  Arm(to, 0, 1000, 0, 0, 0, "to");
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  deadline = now.tv_sec + 1000;
  Arm(ta, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, deadline, 0, 0, 0, "ta");
  ArmAll();
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      ArmAll();
      cf_report();
    }
    cf_nap(20);
  }
}
