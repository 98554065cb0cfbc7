/* Files in flight in unix socket queues (SCM_RIGHTS) whose pipe the process
 * tree holds too, as zdtm's scm00, scm01 and scm09 build them:
 *   a  a datagram pair with the read end of pipe A in flight; the parent
 *      keeps A's write end only (the read end exists only in the queue);
 *   b  a stream pair with the read end of pipe B in flight; the parent keeps
 *      that very descriptor too (one open file description in both places);
 *   c  a datagram pair whose sending end was closed, with the read end of
 *      pipe C in flight; the parent keeps C's write end;
 *   d  across processes: the child holds a datagram pair with the read end
 *      of pipe D in flight; the parent keeps D's write end.
 * After restore each received descriptor must be a read end of the pipe
 * whose write end the process holds (a byte written there comes out), and
 * for b the received descriptor shares its file status flags with the one
 * kept (O_NONBLOCK set through one shows through the other).
 * Checked once: the check takes the descriptors out of the queues. */
#include "prog_common.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>


static int a_sk[2], b_sk[2], c_sk[2], d_sk[2];
static int a_w, b_r, b_w, c_w, d_w;

static void SendFd(int via, int fd, const char *what) {
  char cbuf[CMSG_SPACE(sizeof(int))];
  memset(cbuf, 0, sizeof(cbuf));
  struct iovec iov = {"F", 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (sendmsg(via, &m, 0) != 1) cf_die("%s: sendmsg: %s", what, strerror(errno));
}

static int RecvFd(int via, const char *what) {
  int fd = -1;
  char cbuf[CMSG_SPACE(sizeof(int))], b[4];
  struct iovec iov = {b, sizeof(b)};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
  ssize_t n = recvmsg(via, &m, MSG_DONTWAIT);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (n != 1 || b[0] != 'F' || !c || c->cmsg_type != SCM_RIGHTS) {
    cf_failf("%s: no message with a descriptor (%zd: %s)", what, n, n < 0 ? strerror(errno) : "");
    return -1;
  }
  memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return fd;
}

/* A byte written to |w| must come out of the received read end. */
static void CheckPipe(int via, int w, const char *what) {
  int r = RecvFd(via, what);
  if (r < 0) return;
  char got = 0;
  const char want = what[0];
  if (write(w, &want, 1) != 1) {
    cf_failf("%s: write to the pipe: %s", what, strerror(errno));
  } else if (read(r, &got, 1) != 1 || got != want) {
    cf_failf("%s: the received descriptor is not the read end of the held pipe", what);
  }
  if ((fcntl(r, F_GETFL) & O_ACCMODE) != O_RDONLY) cf_failf("%s: the received end is not read-only", what);
  if (via == b_sk[1]) {
    /* One open file description: flags set through one show through the other. */
    int fl = fcntl(b_r, F_GETFL);
    if (fcntl(b_r, F_SETFL, fl | O_NONBLOCK) != 0 || !(fcntl(r, F_GETFL) & O_NONBLOCK)) {
      cf_failf("%s: the received descriptor is not the one kept", what);
    }
    fcntl(b_r, F_SETFL, fl);
  }
  close(r);
}

/* The parent wrote "d" to D before asking. */
static void ChildCheck(void) {
  int r = RecvFd(d_sk[1], "d");
  char got = 0;
  if (r >= 0 && (read(r, &got, 1) != 1 || got != 'd')) cf_failf("d: the received descriptor is not D's read end");
  if (r >= 0) close(r);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "unix_flight_shared W");
  /* A held write end whose pipe lost its reader must fail the check, not kill. */
  signal(SIGPIPE, SIG_IGN);
  int a[2], b[2], c[2], d[2];
  if (pipe(a) || pipe(b) || pipe(c) || pipe(d)) cf_die("pipe: %s", strerror(errno));
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, a_sk) || socketpair(AF_UNIX, SOCK_STREAM, 0, b_sk) ||
      socketpair(AF_UNIX, SOCK_DGRAM, 0, c_sk)) {
    cf_die("socketpair: %s", strerror(errno));
  }
  SendFd(a_sk[0], a[0], "a");
  close(a[0]);
  a_w = a[1];
  SendFd(b_sk[0], b[0], "b");
  b_r = b[0], b_w = b[1];
  SendFd(c_sk[0], c[0], "c");
  close(c[0]);
  close(c_sk[0]);
  c_w = c[1];

  pid_t child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, d_sk) != 0) cf_die("child: socketpair: %s", strerror(errno));
    SendFd(d_sk[0], d[0], "d");
    close(d[0]), close(d[1]), close(d_sk[0]);
    cf_child_ready("ready.child");
    cf_child_loop(ChildCheck, "result.child");
  }
  close(d[0]);
  d_w = d[1];
  char buf[64];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child never got ready");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      CheckPipe(a_sk[1], a_w, "a");
      CheckPipe(b_sk[1], b_w, "b");
      CheckPipe(c_sk[1], c_w, "c");
      /* The child received D's read end: the parent writes, the child reads. */
      if (write(d_w, "d", 1) != 1) cf_failf("d: write: %s", strerror(errno));
      cf_ask_child(child, "result.child");
      cf_report();
    }
    cf_nap(20);
  }
}
