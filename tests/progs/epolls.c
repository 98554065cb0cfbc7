/* epolls W: epoll instances shared by a parent and its child.
 *
 * Parent, before the fork (the child inherits all of these):
 *   3 ev   eventfd, counter mode      4 evs  eventfd, semaphore mode
 *   5,6    pipe p (both non-blocking) 7 tfd  timerfd (one-shot, 1 ms)
 *   8 ep   epoll watching:  ev   EPOLLIN              data 0x1234567890abcdef
 *                           evs  EPOLLIN              data 0x5e5e
 *                           p[0] EPOLLIN|EPOLLET      data 0xe7
 *                           tfd  EPOLLIN              data 0x71
 *                           p[1] EPOLLOUT|EPOLLONESHOT data 0x0e (re-armed by each check)
 *                           q[1] EPOLLOUT|EPOLLONESHOT data 0xd15 (fired at setup: disarmed)
 *   9,10   pipe q
 *   11 ep2 epoll watching ev EPOLLIN data 0xe2
 * Child: 12 cev eventfd (counter), added to the shared ep as EPOLLIN data
 *   0xc0ffee (so only the child holds every target of ep); 13 cep, its own
 *   epoll, watching cev EPOLLIN|EPOLLET data 0xcafe.
 *
 * State before each check: ev 5, evs 3, one byte in p, tfd expired once.
 * Parent check: epoll_wait(ep) reports exactly ev, evs, p[0], tfd, p[1] with
 * their data and events; a second wait only the level-triggered ones (ev,
 * evs, tfd); ep2 reports ev; then everything is read (5, 1 1 1, "x", 1
 * expiration) and ep reports nothing. Then the child checks: ep is the
 * parent's (kcmp), nothing is ready; after writing 1 to cev, ep reports only
 * 0xc0ffee and cep 0xcafe. The parent then builds the state again.
 */
#include "prog_common.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>

static int ev, evs, p[2], q[2], tfd, ep, ep2, cev = -1, cep = -1;
static pid_t child;

#define D_EV 0x1234567890abcdefULL
#define D_EVS 0x5e5eULL
#define D_P0 0xe7ULL
#define D_TFD 0x71ULL
#define D_P1 0x0eULL
#define D_Q1 0xd15ULL
#define D_EP2 0xe2ULL
#define D_CEV 0xc0ffeeULL
#define D_CEP 0xcafeULL

static void Add(int epfd, int fd, uint32_t events, uint64_t data) {
  struct epoll_event e = {.events = events, .data.u64 = data};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0) cf_die("epoll_ctl add %d", fd);
}

/* What epoll_wait(|epfd|, no wait) reports, as "data/events," sorted by data. */
static void Ready(int epfd, char *out, size_t len) {
  struct epoll_event e[16];
  int n = epoll_wait(epfd, e, 16, 0);
  for (int i = 1; i < n; i++) {
    for (int j = i; j > 0 && e[j - 1].data.u64 > e[j].data.u64; j--) {
      struct epoll_event t = e[j];
      e[j] = e[j - 1];
      e[j - 1] = t;
    }
  }
  size_t off = 0;
  out[0] = 0;
  for (int i = 0; i < n && off < len; i++) {
    off += (size_t)snprintf(out + off, len - off, "%llx/%x,", (unsigned long long)e[i].data.u64, e[i].events);
  }
  if (n < 0) snprintf(out, len, "error %s", strerror(errno));
}

static void WantReady(int epfd, const char *want, const char *what) {
  char got[512];
  Ready(epfd, got, sizeof(got));
  CF_CHECK(strcmp(got, want) == 0, "%s: epoll_wait reports '%s', want '%s'", what, got, want);
}

static uint64_t Read8(int fd) {
  uint64_t v = 0;
  if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) return (uint64_t)-1;
  return v;
}

static void Write8(int fd, uint64_t v) {
  if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) cf_failf("write %d: %s", fd, strerror(errno));
}

static void BuildState(void) {
  Write8(ev, 5);
  Write8(evs, 3);
  if (write(p[1], "x", 1) != 1) cf_failf("write to pipe: %s", strerror(errno));
  struct itimerspec its = {{0, 0}, {0, 1000000}};
  timerfd_settime(tfd, 0, &its, NULL);
  struct epoll_event e = {.events = EPOLLOUT | EPOLLONESHOT, .data.u64 = D_P1};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &e) != 0) cf_failf("re-arm p[1]: %s", strerror(errno));
  cf_nap(20);
}

static void ChildCheck(void) {
  CF_CHECK(syscall(SYS_kcmp, getpid(), getppid(), 0 /* KCMP_FILE */, ep, ep) == 0,
           "the child's ep is not the parent's");
  WantReady(ep, "", "child, ep before");
  Write8(cev, 1);
  char want[64];
  snprintf(want, sizeof(want), "%llx/%x,", D_CEV, EPOLLIN);
  WantReady(ep, want, "child, ep after a write to cev");
  snprintf(want, sizeof(want), "%llx/%x,", D_CEP, EPOLLIN);
  WantReady(cep, want, "child, cep");
  CF_CHECK(Read8(cev) == 1, "cev");
  WantReady(ep, "", "child, ep at the end");
}

static void ParentCheck(void) {
  char want[512];
  snprintf(want, sizeof(want), "%llx/%x,%llx/%x,%llx/%x,%llx/%x,%llx/%x,", D_P1, EPOLLOUT, D_TFD, EPOLLIN, D_P0,
           EPOLLIN, D_EVS, EPOLLIN, D_EV, EPOLLIN);
  WantReady(ep, want, "ep");
  snprintf(want, sizeof(want), "%llx/%x,%llx/%x,%llx/%x,", D_TFD, EPOLLIN, D_EVS, EPOLLIN, D_EV, EPOLLIN);
  WantReady(ep, want, "ep, a second time (no edge-triggered, no one-shot)");
  snprintf(want, sizeof(want), "%llx/%x,", D_EP2, EPOLLIN);
  WantReady(ep2, want, "ep2");
  CF_CHECK(Read8(ev) == 5, "ev: not 5");
  for (int i = 0; i < 3; i++) CF_CHECK(Read8(evs) == 1, "evs: read %d not 1", i);
  char c = 0;
  CF_CHECK(read(p[0], &c, 1) == 1 && c == 'x', "pipe: no 'x'");
  CF_CHECK(Read8(tfd) == 1, "tfd: not one expiration");
  WantReady(ep, "", "ep once all is read");

  cf_ask_child(child, "result.child");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "epolls W");
  ev = eventfd(0, EFD_NONBLOCK);
  evs = eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK);
  if (ev != 3 || evs != 4 || pipe2(p, O_NONBLOCK) != 0) cf_die("eventfd/pipe");
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  ep = epoll_create1(0);
  if (tfd != 7 || ep != 8 || pipe2(q, O_NONBLOCK) != 0) cf_die("timerfd/epoll/pipe");
  ep2 = epoll_create1(EPOLL_CLOEXEC);
  if (ep2 != 11) cf_die("epoll_create1 gave %d", ep2);
  struct epoll_event e;
  Add(ep, q[1], EPOLLOUT | EPOLLONESHOT, D_Q1);
  if (epoll_wait(ep, &e, 1, 1000) != 1 || e.data.u64 != D_Q1) cf_die("q[1] did not fire");
  Add(ep, ev, EPOLLIN, D_EV);
  Add(ep, evs, EPOLLIN, D_EVS);
  Add(ep, p[0], EPOLLIN | EPOLLET, D_P0);
  Add(ep, tfd, EPOLLIN, D_TFD);
  Add(ep, p[1], EPOLLOUT | EPOLLONESHOT, D_P1);
  Add(ep2, ev, EPOLLIN, D_EP2);
  struct epoll_event drain[16];
  epoll_wait(ep, drain, 16, 0); /* consumes p[1]'s one shot: BuildState re-arms it */

  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    cev = eventfd(0, EFD_NONBLOCK);
    cep = epoll_create1(0);
    if (cev != 12 || cep != 13) cf_die("child: eventfd %d epoll %d", cev, cep);
    Add(ep, cev, EPOLLIN, D_CEV);
    Add(cep, cev, EPOLLIN | EPOLLET, D_CEP);
    cf_child_ready("ready.child");
    cf_child_loop(ChildCheck, "result.child");
  }
  char buf[64];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child never got ready");
  BuildState();
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      ParentCheck();
      BuildState();
      cf_report();
    }
    cf_nap(20);
  }
}
