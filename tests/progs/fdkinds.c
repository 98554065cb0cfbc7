/* fdkinds W: timerfds, a signalfd, an inotify instance and an epoll
 * instance (watching eventfds in both modes, a pipe in edge-triggered mode
 * and a timerfd), held by a parent and shared with its child.
 *
 *   t_fast   CLOCK_MONOTONIC, every 20 ms
 *   t_fired  CLOCK_MONOTONIC, first expiry after 30 ms, then every 100 s:
 *            it fired before the dump and was never read
 *   t_once   CLOCK_MONOTONIC, one shot in 1 h
 *   t_off    disarmed
 *   t_abs    CLOCK_REALTIME, TFD_TIMER_ABSTIME, at now + 1 h
 *   sfd      signalfd for SIGUSR2 (blocked)
 *   ifd      inotify: a first watch removed again (so the wds are 2 and 3),
 *            then W/watched.txt (IN_MODIFY) and W (IN_CREATE)
 *   e_cnt    eventfd, counter 5; e_sem eventfd, semaphore mode, 2
 *   ep       epoll: e_cnt (EPOLLIN, data 0x1234), e_sem (EPOLLIN, 0x1235),
 *            pipe read end (EPOLLIN|EPOLLET, 0x5678), t_fast (EPOLLIN, 0x9abc)
 * The child (forked after all this) holds them all too.
 *
 * On SIGUSR1 the parent checks (the first check after start: t_fired has
 * its unread expiration, at once):
 *   epoll_wait reports 0x1234, 0x1235 and 0x9abc, not 0x5678; a byte
 *   written into the pipe makes it report 0x5678; e_cnt reads 5, e_sem 1
 *   (both written back); t_fast keeps firing; t_once has 50-60 min left,
 *   t_abs too, t_off is disarmed; a SIGUSR2 sent to itself is read through
 *   sfd; writing W/watched.txt gives IN_MODIFY on wd 2, creating a file in W
 *   gives IN_CREATE on wd 3. Then the child is asked (SIGUSR1): epoll_wait
 *   on the shared instance reports 0x1234 there too, and the timerfds and
 *   eventfds are the parent's (one description: t_once has the same time
 *   left, e_cnt reads 5 and is written back).
 */
#include "prog_common.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static int t_fast, t_fired, t_once, t_off, t_abs, sfd, ifd, e_cnt, e_sem, ep, pp[2];
static int wd_file, wd_dir;
static pid_t child;
static int checks;

static uint64_t Mask(int timeout_ms) {
  struct epoll_event ev[8];
  int got = epoll_wait(ep, ev, 8, timeout_ms);
  uint64_t seen = 0;
  for (int i = 0; i < got; i++) {
    switch (ev[i].data.u64) {
      case 0x1234: seen |= 1; break;
      case 0x1235: seen |= 2; break;
      case 0x5678: seen |= 4; break;
      case 0x9abc: seen |= 8; break;
      default: seen |= 16; break;
    }
  }
  return seen;
}

static uint64_t ReadU64(int fd, const char *what) {
  uint64_t v = 0;
  ssize_t n = read(fd, &v, sizeof(v));
  if (n != (ssize_t)sizeof(v)) cf_failf("%s: read gives %zd (%s)", what, n, n < 0 ? strerror(errno) : "");
  return v;
}

static void WriteU64(int fd, uint64_t v, const char *what) {
  if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) cf_failf("%s: write: %s", what, strerror(errno));
}

static double Left(int fd) {
  struct itimerspec its;
  if (timerfd_gettime(fd, &its) != 0) return -1;
  return (double)its.it_value.tv_sec + (double)its.it_value.tv_nsec / 1e9;
}

static void CheckTimers(void) {
  if (checks == 0) {
    uint64_t n = 0;
    ssize_t r = read(t_fired, &n, sizeof(n));
    CF_CHECK(r == (ssize_t)sizeof(n) && n == 1, "t_fired: read gives %zd, %llu expirations (want 1, at once)", r,
             (unsigned long long)n);
  }
  /* t_fast keeps firing: read what is there, then wait for the next one. */
  uint64_t n = 0;
  (void)!read(t_fast, &n, sizeof(n));
  struct pollfd p = {t_fast, POLLIN, 0};
  CF_CHECK(poll(&p, 1, 1000) == 1, "t_fast did not fire again within 1 s");
  const double once = Left(t_once), abs_left = Left(t_abs);
  CF_CHECK(once > 2900 && once <= 3600, "t_once: %.1f s left, want 50-60 min", once);
  CF_CHECK(abs_left > 2900 && abs_left <= 3600, "t_abs: %.1f s left, want 50-60 min", abs_left);
  struct itimerspec its;
  CF_CHECK(timerfd_gettime(t_off, &its) == 0 && its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0 &&
               its.it_interval.tv_sec == 0,
           "t_off is armed");
  CF_CHECK(timerfd_gettime(t_fired, &its) == 0 && its.it_interval.tv_sec == 100, "t_fired lost its 100 s period");
  CF_CHECK(fcntl(t_fast, F_GETFL) & O_NONBLOCK, "t_fast lost O_NONBLOCK");
}

static void CheckEpoll(void) {
  uint64_t seen = Mask(0);
  CF_CHECK((seen & 0xb) == 0xb && !(seen & 4), "epoll reports %#llx, want 0x1234, 0x1235, 0x9abc and not the pipe",
           (unsigned long long)seen);
  CF_CHECK(write(pp[1], "x", 1) == 1, "write pipe: %s", strerror(errno));
  seen = Mask(100);
  CF_CHECK(seen & 4, "epoll does not report the pipe after a write (%#llx)", (unsigned long long)seen);
  char c;
  CF_CHECK(read(pp[0], &c, 1) == 1, "read pipe");
  uint64_t v = ReadU64(e_cnt, "e_cnt");
  CF_CHECK(v == 5, "e_cnt: %llu, want 5", (unsigned long long)v);
  WriteU64(e_cnt, 5, "e_cnt");
  v = ReadU64(e_sem, "e_sem");
  CF_CHECK(v == 1, "e_sem: %llu, want 1 (semaphore mode)", (unsigned long long)v);
  WriteU64(e_sem, 1, "e_sem");
}

static void CheckSignalfd(void) {
  kill(getpid(), SIGUSR2);
  struct signalfd_siginfo si;
  ssize_t n = read(sfd, &si, sizeof(si));
  CF_CHECK(n == (ssize_t)sizeof(si) && si.ssi_signo == SIGUSR2, "signalfd: read gives %zd, signal %u", n,
           n > 0 ? si.ssi_signo : 0);
}

static void CheckInotify(void) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/watched.txt", cf_prog.workdir);
  int f = open(path, O_WRONLY | O_APPEND);
  CF_CHECK(f >= 0 && write(f, "y", 1) == 1, "append to watched.txt");
  if (f >= 0) close(f);
  snprintf(path, sizeof(path), "%s/new.%d", cf_prog.workdir, checks);
  f = open(path, O_WRONLY | O_CREAT, 0644);
  if (f >= 0) close(f);
  char buf[4096] __attribute__((aligned(8)));
  int modify = 0, create = 0;
  for (int round = 0; round < 50 && !(modify && create); round++) {
    ssize_t n = read(ifd, buf, sizeof(buf));
    if (n <= 0) {
      cf_nap(10);
      continue;
    }
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *e = (struct inotify_event *)p;
      if (e->wd == wd_file && (e->mask & IN_MODIFY)) modify = 1;
      if (e->wd == wd_dir && (e->mask & IN_CREATE)) create = 1;
      p += sizeof(*e) + e->len;
    }
  }
  CF_CHECK(modify, "inotify: no IN_MODIFY on wd %d", wd_file);
  CF_CHECK(create, "inotify: no IN_CREATE on wd %d", wd_dir);
}

static void ChildCheck(void) {
  uint64_t seen = Mask(0);
  CF_CHECK(seen & 1, "child: epoll reports %#llx, want 0x1234", (unsigned long long)seen);
  const double once = Left(t_once);
  CF_CHECK(once > 2900 && once <= 3600, "child: t_once: %.1f s left", once);
  uint64_t v = ReadU64(e_cnt, "child e_cnt");
  CF_CHECK(v == 5, "child: e_cnt %llu, want 5", (unsigned long long)v);
  WriteU64(e_cnt, 5, "child e_cnt");
}

static void ParentCheck(void) {
  CheckTimers();
  CheckEpoll();
  CheckSignalfd();
  CheckInotify();
  cf_ask_child(child, "result.child");
  checks++;
}

static int Timer(int clock, int flags, time_t first_s, long first_ns, time_t every_s, long every_ns) {
  int fd = timerfd_create(clock, TFD_NONBLOCK);
  struct itimerspec its = {{every_s, every_ns}, {first_s, first_ns}};
  if (fd < 0 || ((first_s || first_ns) && timerfd_settime(fd, flags, &its, NULL) != 0)) cf_die("timerfd");
  return fd;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "fdkinds W");
  t_fast = Timer(CLOCK_MONOTONIC, 0, 0, 20000000, 0, 20000000);
  t_fired = Timer(CLOCK_MONOTONIC, 0, 0, 30000000, 100, 0);
  t_once = Timer(CLOCK_MONOTONIC, 0, 3600, 0, 0, 0);
  t_off = Timer(CLOCK_MONOTONIC, 0, 0, 0, 0, 0);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  t_abs = Timer(CLOCK_REALTIME, TFD_TIMER_ABSTIME, now.tv_sec + 3600, 0, 0, 0);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) cf_die("sigprocmask");
  sfd = signalfd(-1, &set, SFD_NONBLOCK);
  if (sfd < 0) cf_die("signalfd");

  char path[4200];
  snprintf(path, sizeof(path), "%s/watched.txt", cf_prog.workdir);
  int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (f < 0) cf_die("watched.txt");
  close(f);
  ifd = inotify_init1(IN_NONBLOCK);
  int first = ifd < 0 ? -1 : inotify_add_watch(ifd, path, IN_ATTRIB);
  if (first < 0 || inotify_rm_watch(ifd, first) != 0) cf_die("inotify");
  wd_file = inotify_add_watch(ifd, path, IN_MODIFY);
  wd_dir = inotify_add_watch(ifd, cf_prog.workdir, IN_CREATE);
  if (wd_file != 2 || wd_dir != 3) cf_die("inotify wds %d %d, want 2 and 3", wd_file, wd_dir);
  char buf[4096] __attribute__((aligned(8)));
  while (read(ifd, buf, sizeof(buf)) > 0) {
  }

  e_cnt = eventfd(5, EFD_NONBLOCK);
  e_sem = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
  if (e_cnt < 0 || e_sem < 0 || pipe2(pp, O_NONBLOCK) != 0) cf_die("eventfd/pipe");
  ep = epoll_create1(0);
  if (ep < 0) cf_die("epoll_create1");
  struct {
    int fd;
    uint32_t events;
    uint64_t data;
  } targets[] = {{e_cnt, EPOLLIN, 0x1234}, {e_sem, EPOLLIN, 0x1235}, {pp[0], EPOLLIN | EPOLLET, 0x5678},
                 {t_fast, EPOLLIN, 0x9abc}};
  for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
    struct epoll_event ev = {.events = targets[i].events, .data = {.u64 = targets[i].data}};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, targets[i].fd, &ev) != 0) cf_die("epoll_ctl");
  }

  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    cf_child_ready("ready.child");
    cf_child_loop(ChildCheck, "result.child");
  }
  char b[64];
  if (cf_wait_file("ready.child", b, sizeof(b)) != 0) cf_die("the child never got ready");
  cf_nap(100); /* t_fired has fired */
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      ParentCheck();
      cf_report();
    }
    cf_nap(20);
  }
}
