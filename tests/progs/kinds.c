/* One process holding descriptors of the kinds named on the command line,
 * each with some state, for the round-trip test of the kinds registry
 * (tests/e2e/test_kinds_round_trip.sh): the test dumps it, restores it,
 * dumps it again and compares each kind's saved state.
 *
 * Usage: kinds W KIND...   KIND is a kind's key in `show` (kinds/<kind>.cc):
 * pipe, fifo, unix_socket, eventfd, timerfd, signalfd, inotify, epoll,
 * memfd, reg, dir, chr. Adding a kind adds its case here.
 *
 * The self-check (SIGUSR1) only says PASS: what is compared is what
 * criu-fast sees, before and after; each kind's own e2e test checks its
 * behaviour in the restored program.
 */
#include "prog_common.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

static void must(int ok, const char *what) {
  if (!ok) cf_die("%s: %s", what, strerror(errno));
}

static void write_all(int fd, const void *buf, size_t len, const char *what) {
  must(write(fd, buf, len) == (ssize_t)len, what);
}

static void make(const char *kind) {
  char path[4096];
  if (strcmp(kind, "pipe") == 0) {
    int p[2];
    must(pipe2(p, O_NONBLOCK) == 0, "pipe");
    char data[1000];
    for (size_t i = 0; i < sizeof(data); ++i) data[i] = (char)(i * 7);
    write_all(p[1], data, sizeof(data), "fill pipe");
  } else if (strcmp(kind, "fifo") == 0) {
    snprintf(path, sizeof(path), "%s/fifo", cf_prog.workdir);
    must(mkfifo(path, 0600) == 0, "mkfifo");
    int fd = open(path, O_RDWR | O_NONBLOCK);
    must(fd >= 0, "open fifo");
    write_all(fd, "fifo bytes", 10, "fill fifo");
  } else if (strcmp(kind, "unix_socket") == 0) {
    int sv[2];
    must(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair dgram");
    write_all(sv[0], "first", 5, "send");
    write_all(sv[0], "second message", 14, "send");
    must(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair stream");
    write_all(sv[1], "a stream of bytes", 17, "send");
    must(shutdown(sv[1], SHUT_WR) == 0, "shutdown");
  } else if (strcmp(kind, "eventfd") == 0) {
    must(eventfd(7, EFD_SEMAPHORE) >= 0, "eventfd");
    must(eventfd(123, EFD_NONBLOCK) >= 0, "eventfd");
  } else if (strcmp(kind, "timerfd") == 0) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    must(fd >= 0, "timerfd_create");
    struct itimerspec its = {{1000, 0}, {500, 0}};
    must(timerfd_settime(fd, 0, &its, NULL) == 0, "timerfd_settime");
    fd = timerfd_create(CLOCK_REALTIME, 0);
    must(fd >= 0, "timerfd_create");
  } else if (strcmp(kind, "signalfd") == 0) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGRTMIN + 3);
    must(signalfd(-1, &set, SFD_NONBLOCK) >= 0, "signalfd");
  } else if (strcmp(kind, "inotify") == 0) {
    int fd = inotify_init1(IN_NONBLOCK);
    must(fd >= 0, "inotify_init1");
    snprintf(path, sizeof(path), "%s/watched", cf_prog.workdir);
    int f = open(path, O_WRONLY | O_CREAT, 0644);
    must(f >= 0, "create watched file");
    close(f);
    must(inotify_add_watch(fd, cf_prog.workdir, IN_CREATE | IN_DELETE) >= 0, "watch dir");
    must(inotify_add_watch(fd, path, IN_MODIFY | IN_ONESHOT) >= 0, "watch file");
  } else if (strcmp(kind, "epoll") == 0) {
    int ep = epoll_create1(0);
    int ev = eventfd(1, 0);
    must(ep >= 0 && ev >= 0, "epoll_create1/eventfd");
    struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.u64 = 0x1234567890abcdefULL};
    must(epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) == 0, "epoll_ctl");
  } else if (strcmp(kind, "memfd") == 0) {
    int fd = memfd_create("cf-kinds", 0);
    must(fd >= 0, "memfd_create");
    char page[4096];
    for (int i = 0; i < 3; ++i) {
      memset(page, 'a' + i, sizeof(page));
      write_all(fd, page, sizeof(page), "fill memfd");
    }
    must(lseek(fd, 100, SEEK_SET) == 100, "seek memfd");
  } else if (strcmp(kind, "reg") == 0) {
    snprintf(path, sizeof(path), "%s/file", cf_prog.workdir);
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND, 0640);
    must(fd >= 0, "open file");
    write_all(fd, "0123456789", 10, "fill file");
    must(lseek(fd, 5, SEEK_SET) == 5, "seek file");
    snprintf(path, sizeof(path), "%s/deleted", cf_prog.workdir);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    must(fd >= 0, "open deleted");
    write_all(fd, "gone but open", 13, "fill deleted");
    must(unlink(path) == 0, "unlink");
  } else if (strcmp(kind, "dir") == 0) {
    must(open(cf_prog.workdir, O_RDONLY | O_DIRECTORY) >= 0, "open dir");
  } else if (strcmp(kind, "chr") == 0) {
    must(open("/dev/null", O_WRONLY) >= 0, "open /dev/null");
    must(open("/dev/zero", O_RDONLY | O_CLOEXEC) >= 0, "open /dev/zero");
  } else {
    cf_die("unknown kind %s", kind);
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 2, "kinds W KIND...");
  for (int i = 2; i < argc; ++i) make(argv[i]);
  cf_ready();
  for (;;) {
    cf_check_lifetime();
    if (cf_take_usr1()) cf_report();
    cf_nap(20);
  }
}
