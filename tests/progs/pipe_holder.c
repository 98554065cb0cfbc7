/* pipe_holder W MODE: holds descriptors of one kind a dump cannot take yet.
 *
 * MODE chooses the kind (one kind per run, so the refusal must name it):
 *   epollnest   an epoll instance watching another epoll instance
 *   epollclosed an epoll instance watching an eventfd by an fd number that
 *               was closed since (the eventfd lives on as a dup)
 *   pidfd       a pidfd of the process itself
 *   tty         the slave of a pseudo-terminal whose master a process
 *               outside the tree holds (an orphan that lives until the
 *               write end of its pipe, which we keep, closes)
 *   inet        an established TCP connection on 127.0.0.1, both ends (a dump
 *               without --tcp-established refuses it)
 *   unixbound   a unix stream socket bound to W/sock and listening, with a
 *               connection of its own waiting to be accepted that sent 5
 *               bytes already (they sit where no descriptor reaches)
 *   scmrights   a unix socket pair with a unix socket in flight (SCM_RIGHTS)
 *   flock       a regular file locked with flock(LOCK_EX)
 *   posixlock   a regular file with a POSIX record lock (F_SETLK)
 *   udpcork     a UDP socket corked (UDP_CORK) with 100 bytes sent but held
 *               back in its send queue, which nothing can read back
 *               in a 5-byte message
 * W/expect: "fd <n>" for each descriptor of that kind, then "kind <MODE>".
 * On SIGUSR1 it checks each descriptor still points at the same object
 * (/proc/self/fd link) and that a message is still queued (peeked).
 */
#include "prog_common.h"  /* first: it defines _GNU_SOURCE */

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <netinet/udp.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/file.h>
#include <sys/wait.h>

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
  if (strcmp(mode, "epollnest") == 0) {
    int inner = epoll_create1(0);
    fds[0] = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data = {.u64 = 7}};
    if (inner < 0 || fds[0] < 0 || epoll_ctl(fds[0], EPOLL_CTL_ADD, inner, &ev) != 0) cf_die("nested epoll");
    fds[1] = inner;
  } else if (strcmp(mode, "epollclosed") == 0) {
    int e = eventfd(0, 0);
    fds[0] = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data = {.u64 = 7}};
    if (e < 0 || fds[0] < 0 || epoll_ctl(fds[0], EPOLL_CTL_ADD, e, &ev) != 0) cf_die("epoll");
    fds[1] = dup(e);
    close(e);
  } else if (strcmp(mode, "pidfd") == 0) {
    fds[0] = (int)syscall(SYS_pidfd_open, getpid(), 0);
  } else if (strcmp(mode, "tty") == 0) {
    int m = posix_openpt(O_RDWR | O_NOCTTY), p[2];
    if (m < 0 || unlockpt(m) != 0 || pipe(p) != 0) cf_die("posix_openpt");
    fds[0] = open(ptsname(m), O_RDWR | O_NOCTTY);
    pid_t c = fork();
    if (c == 0) {
      if (fork() == 0) {
        char b;
        close(p[1]);
        while (read(p[0], &b, 1) < 0 && errno == EINTR) {
        }
        _exit(0);
      }
      _exit(0);
    }
    if (c < 0 || waitpid(c, NULL, 0) != c) cf_die("fork the master's holder");
    close(m);
    close(p[0]);
  } else if (strcmp(mode, "inet") == 0) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) != 0)
      cf_die("bind/listen 127.0.0.1");
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)) != 0) cf_die("connect");
    fds[1] = accept(l, NULL, NULL);
    if (fds[1] < 0) cf_die("accept");
    close(l);
  } else if (strcmp(mode, "udpcork") == 0) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(9); /* discard: nothing needs to listen, nothing is sent */
    int one = 1;
    char msg[100] = {1};
    fds[0] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)) != 0 ||
        setsockopt(fds[0], IPPROTO_UDP, UDP_CORK, &one, sizeof(one)) != 0 || send(fds[0], msg, sizeof(msg), 0) != 100)
      cf_die("corked UDP socket");
  } else if (strcmp(mode, "unixbound") == 0) {
    fds[0] = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s/sock", cf_prog.workdir);
    unlink(a.sun_path);
    if (fds[0] >= 0 && (bind(fds[0], (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fds[0], 1) != 0))
      cf_die("bind/listen %s", a.sun_path);
    fds[1] = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fds[1] < 0 || connect(fds[1], (struct sockaddr *)&a, sizeof(a)) != 0 || send(fds[1], "hello", 5, 0) != 5) {
      cf_die("connect/send %s", a.sun_path);
    }
  } else if (strcmp(mode, "scmrights") == 0) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) cf_die("socketpair");
    int passed = socket(AF_UNIX, SOCK_DGRAM, 0);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof(cbuf));
    struct iovec iov = {(void *)"hello", 5};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passed, sizeof(int));
    if (passed < 0 || sendmsg(fds[0], &msg, 0) != 5) cf_die("sendmsg SCM_RIGHTS");
    close(passed);
  } else if (strcmp(mode, "flock") == 0 || strcmp(mode, "posixlock") == 0) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/locked", cf_prog.workdir);
    fds[0] = open(path, O_RDWR | O_CREAT, 0600);
    if (fds[0] < 0) cf_die("open %s", path);
    if (strcmp(mode, "flock") == 0) {
      if (flock(fds[0], LOCK_EX) != 0) cf_die("flock");
    } else {
      struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
      if (fcntl(fds[0], F_SETLK, &fl) != 0) cf_die("fcntl F_SETLK");
    }
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
  if (strcmp(mode, "udpcork") == 0) {
    int unsent = 0;
    CF_CHECK(ioctl(fds[0], SIOCOUTQ, &unsent) == 0 && unsent > 0, "udpcork: the corked datagram is gone");
  }
  if (strcmp(mode, "scmrights") == 0) {
    char buf[16];
    ssize_t n = recv(fds[1], buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    CF_CHECK(n == 5, "scmrights: peeking gives %zd bytes, want the 5 queued", n);
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 2, "pipe_holder W epollnest|epollclosed|pidfd|tty|inet|unixbound|scmrights|flock|posixlock|udpcork");
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
