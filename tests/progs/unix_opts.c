/* Generic socket options of unix sockets (zdtm sock_opts00 sets SO_PASSCRED
 * on an unbound one):
 *   u  an unbound, unconnected stream socket: SO_PASSCRED, SO_RCVLOWAT 7,
 *      SO_RCVTIMEO 1.5 s, SO_SNDBUF locked at 50000;
 *   p  a stream socketpair: end 0 has SO_PASSCRED and SO_PEEK_OFF 2 with
 *      "hello" queued (the next peek gives "llo");
 *   d  a datagram socket bound to an abstract name with SO_PASSCRED and a
 *      classic BPF filter (accept all, 1 instruction), locked;
 *   l  a listener bound to an abstract name with SO_PASSCRED and
 *      SO_KEEPALIVE.
 * The check also proves SO_PASSCRED works: a message sent to d arrives with
 * SCM_CREDENTIALS naming the sender. Checked repeatedly (nothing is
 * consumed: the peek on p puts the offset back). */
#include "prog_common.h"

#include <linux/filter.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>


static int u, p[2], d, l;
static struct sockaddr_un d_addr;
static socklen_t d_len;

static int Opt(int fd, int opt) {
  int v = -12345;
  socklen_t len = sizeof(v);
  if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) != 0) return -12345;
  return v;
}

static void Set(int fd, int opt, int v, const char *what) {
  if (setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)) != 0) cf_die("%s: setsockopt: %s", what, strerror(errno));
}

static socklen_t Abstract(struct sockaddr_un *a, const char *tag) {
  memset(a, 0, sizeof(*a));
  a->sun_family = AF_UNIX;
  int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "cf-unix-opts-%s-%d", tag, (int)getpid());
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* A datagram to d must come with the sender's credentials. */
static void CheckCreds(void) {
  int s = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (s < 0 || sendto(s, "c", 1, 0, (struct sockaddr *)&d_addr, d_len) != 1) {
    cf_failf("d: send: %s", strerror(errno));
    if (s >= 0) close(s);
    return;
  }
  close(s);
  char b[4], cbuf[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec iov = {b, sizeof(b)};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
  ssize_t n = recvmsg(d, &m, MSG_DONTWAIT);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (n != 1 || !c || c->cmsg_type != SCM_CREDENTIALS) {
    cf_failf("d: the message came without SCM_CREDENTIALS (%zd)", n);
    return;
  }
  struct ucred cr;
  memcpy(&cr, CMSG_DATA(c), sizeof(cr));
  CF_CHECK(cr.pid == getpid(), "d: credentials of pid %d, want %d", (int)cr.pid, (int)getpid());
}

static void Check(void) {
  CF_CHECK(Opt(u, SO_PASSCRED) == 1, "u: SO_PASSCRED %d", Opt(u, SO_PASSCRED));
  CF_CHECK(Opt(u, SO_RCVLOWAT) == 7, "u: SO_RCVLOWAT %d", Opt(u, SO_RCVLOWAT));
  CF_CHECK(Opt(u, SO_SNDBUF) == 100000, "u: SO_SNDBUF %d", Opt(u, SO_SNDBUF));
  struct timeval tv = {0, 0};
  socklen_t len = sizeof(tv);
  CF_CHECK(getsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0 && tv.tv_sec == 1 && tv.tv_usec == 500000,
           "u: SO_RCVTIMEO %ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
  CF_CHECK(Opt(p[0], SO_PASSCRED) == 1, "p: SO_PASSCRED %d", Opt(p[0], SO_PASSCRED));
  CF_CHECK(Opt(p[1], SO_PASSCRED) == 0, "p: the other end has SO_PASSCRED");
  CF_CHECK(Opt(p[0], SO_PEEK_OFF) == 2, "p: SO_PEEK_OFF %d", Opt(p[0], SO_PEEK_OFF));
  char b[8] = {0};
  CF_CHECK(recv(p[0], b, sizeof(b), MSG_PEEK | MSG_DONTWAIT) == 3 && memcmp(b, "llo", 3) == 0,
           "p: a peek gives '%s', want 'llo'", b);
  Set(p[0], SO_PEEK_OFF, 2, "p");
  CF_CHECK(Opt(d, SO_PASSCRED) == 1, "d: SO_PASSCRED %d", Opt(d, SO_PASSCRED));
  CF_CHECK(Opt(d, SO_LOCK_FILTER) == 1, "d: the filter is not locked");
  len = 0;
  CF_CHECK(getsockopt(d, SOL_SOCKET, SO_GET_FILTER, NULL, &len) == 0 && len == 1, "d: a filter of %u instructions",
           (unsigned)len);
  CheckCreds();
  CF_CHECK(Opt(l, SO_PASSCRED) == 1, "l: SO_PASSCRED %d", Opt(l, SO_PASSCRED));
  CF_CHECK(Opt(l, SO_KEEPALIVE) == 1, "l: SO_KEEPALIVE %d", Opt(l, SO_KEEPALIVE));
  CF_CHECK(Opt(l, SO_ACCEPTCONN) == 1, "l: not listening");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "unix_opts W");
  u = socket(AF_UNIX, SOCK_STREAM, 0);
  d = socket(AF_UNIX, SOCK_DGRAM, 0);
  l = socket(AF_UNIX, SOCK_STREAM, 0);
  if (u < 0 || d < 0 || l < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, p) != 0) cf_die("socket: %s", strerror(errno));
  Set(u, SO_PASSCRED, 1, "u");
  Set(u, SO_RCVLOWAT, 7, "u");
  Set(u, SO_SNDBUF, 50000, "u");
  struct timeval tv = {1, 500000};
  if (setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) cf_die("u: SO_RCVTIMEO");
  Set(p[0], SO_PASSCRED, 1, "p");
  if (send(p[1], "hello", 5, 0) != 5) cf_die("p: send");
  Set(p[0], SO_PEEK_OFF, 2, "p");
  d_len = Abstract(&d_addr, "d");
  if (bind(d, (struct sockaddr *)&d_addr, d_len) != 0) cf_die("d: bind: %s", strerror(errno));
  Set(d, SO_PASSCRED, 1, "d");
  struct sock_filter all[] = {{BPF_RET | BPF_K, 0, 0, 0xffff}};
  struct sock_fprog prog = {1, all};
  if (setsockopt(d, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0) cf_die("d: filter: %s", strerror(errno));
  Set(d, SO_LOCK_FILTER, 1, "d");
  struct sockaddr_un la;
  socklen_t ll = Abstract(&la, "l");
  if (bind(l, (struct sockaddr *)&la, ll) != 0 || listen(l, 4) != 0) cf_die("l: %s", strerror(errno));
  Set(l, SO_PASSCRED, 1, "l");
  Set(l, SO_KEEPALIVE, 1, "l");
  Check();
  if (cf_prog.fail[0]) cf_die("setup: %s", cf_prog.fail);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
