/* pipe_holder W MODE: holds descriptors of one kind a dump cannot take yet.
 *
 * MODE chooses the kind (one kind per run, so the refusal must name it):
 *   pipe        a pipe, 5 bytes queued in it
 *   socketpair  an AF_UNIX stream socketpair, 5 bytes queued
 *   eventfd     an eventfd with counter 42
 *   epoll       an empty epoll instance
 *   timerfd     a CLOCK_MONOTONIC timerfd armed for 1000 s
 *   signalfd    a signalfd for SIGUSR2 (blocked)
 *   inotify     an inotify instance watching W
 *   tty         the master of a pseudo-terminal
 * W/expect: "fd <n>" for each descriptor of that kind, then "kind <MODE>".
 * On SIGUSR1 it checks each descriptor still points at the same object
 * (/proc/self/fd link) and that queued data or counters are intact (the data
 * is looked at with FIONREAD, not consumed; the eventfd counter is read and
 * written back).
 */
#include "prog_common.h"  /* first: it defines _GNU_SOURCE */

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

static int fds[2] = {-1, -1};
static char links[2][256];
static const char *mode;

static void read_link(int fd, char *out, size_t len) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, out, len - 1);
  out[n > 0 ? n : 0] = '\0';
}

static void setup(void) {
  if (strcmp(mode, "pipe") == 0) {
    if (pipe(fds) != 0) cf_die("pipe");
    if (write(fds[1], "hello", 5) != 5) cf_die("write pipe");
  } else if (strcmp(mode, "socketpair") == 0) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) cf_die("socketpair");
    if (write(fds[0], "hello", 5) != 5) cf_die("write socket");
  } else if (strcmp(mode, "eventfd") == 0) {
    fds[0] = eventfd(42, 0);
  } else if (strcmp(mode, "epoll") == 0) {
    fds[0] = epoll_create1(0);
  } else if (strcmp(mode, "timerfd") == 0) {
    fds[0] = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {{1000, 0}, {1000, 0}};
    if (fds[0] >= 0 && timerfd_settime(fds[0], 0, &its, NULL) != 0) cf_die("timerfd_settime");
  } else if (strcmp(mode, "signalfd") == 0) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) cf_die("sigprocmask");
    fds[0] = signalfd(-1, &set, 0);
  } else if (strcmp(mode, "inotify") == 0) {
    fds[0] = inotify_init1(0);
    if (fds[0] >= 0 && inotify_add_watch(fds[0], cf_prog.workdir, IN_DELETE_SELF) < 0) cf_die("inotify_add_watch");
  } else if (strcmp(mode, "tty") == 0) {
    fds[0] = posix_openpt(O_RDWR | O_NOCTTY);
  } else {
    errno = EINVAL;
    cf_die("unknown mode '%s'", mode);
  }
  if (fds[0] < 0) cf_die("%s: cannot create", mode);
  for (int i = 0; i < 2; i++) {
    if (fds[i] >= 0) read_link(fds[i], links[i], sizeof(links[i]));
  }
}

static void check(void) {
  for (int i = 0; i < 2; i++) {
    if (fds[i] < 0) continue;
    char now[256];
    read_link(fds[i], now, sizeof(now));
    CF_CHECK(strcmp(now, links[i]) == 0, "fd %d is now '%s', was '%s'", fds[i], now, links[i]);
  }
  if (strcmp(mode, "pipe") == 0 || strcmp(mode, "socketpair") == 0) {
    int queued = -1;
    const int rd = strcmp(mode, "pipe") == 0 ? fds[0] : fds[1];
    CF_CHECK(ioctl(rd, FIONREAD, &queued) == 0 && queued == 5, "%s: %d bytes queued, want 5", mode, queued);
  } else if (strcmp(mode, "eventfd") == 0) {
    uint64_t v = 0;
    CF_CHECK(read(fds[0], &v, 8) == 8 && v == 42, "eventfd counter %llu, want 42", (unsigned long long)v);
    if (v && write(fds[0], &v, 8) != 8) cf_failf("eventfd: cannot write the counter back");
  } else if (strcmp(mode, "timerfd") == 0) {
    struct itimerspec its;
    CF_CHECK(timerfd_gettime(fds[0], &its) == 0 && its.it_interval.tv_sec == 1000 &&
                 (its.it_value.tv_sec > 0 || its.it_value.tv_nsec > 0),
             "timerfd no longer armed every 1000 s");
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 2, "pipe_holder W pipe|socketpair|eventfd|epoll|timerfd|signalfd|inotify|tty");
  mode = argv[2];
  setup();
  char expect[256];
  int off = 0;
  for (int i = 0; i < 2; i++) {
    if (fds[i] >= 0) off += snprintf(expect + off, sizeof(expect) - (size_t)off, "fd %d\n", fds[i]);
  }
  snprintf(expect + off, sizeof(expect) - (size_t)off, "kind %s\n", mode);
  if (cf_write_file("expect", expect) != 0) cf_die("write expect");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
