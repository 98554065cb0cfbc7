/* unix_flight_epoll W [pipe]: an epoll instance in flight (SCM_RIGHTS) in a unix
 * socket's queue, which no process holds any more (zdtm's scm05).
 *
 *   sk[0], sk[1]  a datagram socket pair
 *   ep            watches sk[1] for EPOLLIN (data 'r') and sk[0] for
 *                 EPOLLOUT (data 'w'); sent twice through sk[0] (so twice
 *                 in sk[1]'s queue), then closed
 *
 * With "pipe", the instance also watches the read end of a pipe the process
 * holds (what criu-fast refuses to dump; no check is made then).
 *
 * On SIGUSR1: both messages carry the same instance, whose fdinfo lists
 * sk[1] and sk[0] by their numbers; while a message is queued it reports
 * both targets, once the queue is empty only 'w'. The instances are closed
 * and sent again for the next check.
 */
#include "prog_common.h"

#include <sys/epoll.h>
#include <sys/socket.h>

static int sk[2];

static void SendFd(int fd) {
  char c = 0, buf[CMSG_SPACE(sizeof(int))];
  memset(buf, 0, sizeof(buf));
  struct iovec iov = {&c, 1};
  struct msghdr h = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof(buf)};
  struct cmsghdr *ch = CMSG_FIRSTHDR(&h);
  ch->cmsg_level = SOL_SOCKET;
  ch->cmsg_type = SCM_RIGHTS;
  ch->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(ch), &fd, sizeof(fd));
  if (sendmsg(sk[0], &h, 0) != 1) cf_die("sendmsg");
}

static int RecvFd(void) {
  char c, buf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {&c, 1};
  struct msghdr h = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof(buf)};
  if (recvmsg(sk[1], &h, MSG_DONTWAIT) != 1) return -1;
  struct cmsghdr *ch = CMSG_FIRSTHDR(&h);
  if (ch == NULL || ch->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(ch), sizeof(fd));
  return fd;
}

// The data of the events |ep| reports now, as a sorted string.
static void Events(int ep, char *out) {
  struct epoll_event ev[4];
  int n = epoll_wait(ep, ev, 4, 0), k = 0;
  for (int i = 0; i < n; ++i) out[k++] = (char)ev[i].data.u64;
  out[k] = 0;
  if (k == 2 && out[0] > out[1]) {
    char t = out[0];
    out[0] = out[1];
    out[1] = t;
  }
}

static void Check(void) {
  int e1 = RecvFd();
  CF_CHECK(e1 >= 0, "no epoll instance in the first message");
  if (e1 < 0) return;
  char got[8];
  Events(e1, got);
  CF_CHECK(strcmp(got, "rw") == 0, "with a message queued, the instance reports '%s' (want 'rw')", got);
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", e1);
  FILE *f = fopen(path, "r");
  int tfd, n0 = 0, n1 = 0, other = 0;
  while (f && fgets(line, sizeof(line), f)) {
    if (sscanf(line, "tfd: %d", &tfd) == 1) {
      n0 += tfd == sk[0];
      n1 += tfd == sk[1];
      other += tfd != sk[0] && tfd != sk[1];
    }
  }
  if (f) fclose(f);
  CF_CHECK(n0 == 1 && n1 == 1 && other == 0, "fdinfo lists tfd %d %d times, %d %d times, others %d times", sk[0], n0,
           sk[1], n1, other);
  int e2 = RecvFd();
  CF_CHECK(e2 >= 0, "no epoll instance in the second message");
  if (e2 < 0) return;
  struct stat s1, s2;
  CF_CHECK(fstat(e1, &s1) == 0 && fstat(e2, &s2) == 0 && s1.st_ino == s2.st_ino,
           "the two messages carry different instances");
  Events(e2, got);
  CF_CHECK(strcmp(got, "w") == 0, "with the queue empty, the instance reports '%s' (want 'w')", got);
  // For the next round.
  SendFd(e1);
  SendFd(e2);
  close(e1);
  close(e2);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "unix_flight_epoll W [pipe]");
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sk)) cf_die("socketpair");
  int ep = epoll_create1(0);
  if (ep < 0) cf_die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 'r'};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, sk[1], &ev)) cf_die("epoll_ctl");
  ev.events = EPOLLOUT;
  ev.data.u64 = 'w';
  if (epoll_ctl(ep, EPOLL_CTL_ADD, sk[0], &ev)) cf_die("epoll_ctl");
  if (argc > 2 && strcmp(argv[2], "pipe") == 0) {
    int p[2];
    if (pipe(p)) cf_die("pipe");
    ev.events = EPOLLIN;
    ev.data.u64 = 'p';
    if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev)) cf_die("epoll_ctl");
  }
  SendFd(ep);
  SendFd(ep);
  close(ep);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
