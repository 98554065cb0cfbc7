/* unix_sockets W: unix sockets of every shape between a parent and its child.
 *
 * The parent (cwd W) holds:
 *   lst    SOCK_STREAM listener bound to W/lst.sock (mode 0640), backlog 5;
 *   acc    the connection it accepted from the child's |cli|;
 *   sql    SOCK_SEQPACKET listener bound to an abstract name;
 *   dsrv   SOCK_DGRAM bound to the relative path "dsrv.sock";
 *   ddel   SOCK_DGRAM bound to W/ddel.sock, whose file was then unlinked;
 *   unb    SOCK_STREAM neither bound nor connected;
 *   rp     a SOCK_DGRAM socketpair with one message in flight to rp[1]
 *          carrying descriptors (SCM_RIGHTS): both ends of a pipe holding
 *          "abc", and W/data open at offset 5; the parent closed its own.
 * The child holds:
 *   cli    connected to lst and accepted (acc): 3000 bytes queued towards
 *          the child, 2 writes of 700 bytes towards the parent;
 *   pend   connected to lst, not accepted yet;
 *   sqpend connected to sql, not accepted yet;
 *   dcli   SOCK_DGRAM connected to dsrv, 3 messages queued (10, 0, 500 bytes);
 *   dgone  SOCK_DGRAM connected to ddel, 1 message queued.
 *
 * On SIGUSR1 the parent checks names (getsockname, the file's mode), reads
 * what is queued for it (message boundaries kept, nothing more), accepts the
 * waiting connections (they must be there), then asks the child, which reads
 * its stream, writes "ping" on pend and sqpend and queues everything again
 * (new pending connections included); the parent reads the pings on the
 * connections it accepted and queues 3000 bytes for the child again. So the
 * same shapes are there for the next dump.
 */
#include "prog_common.h"

#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static int lst, acc, sql, dsrv, ddel, unb;        /* parent */
static int cli, pend, sqpend, dcli, dgone;       /* child */
static struct sockaddr_un lst_addr, sq_addr, dsrv_addr, ddel_addr;
static socklen_t lst_len, sq_len, dsrv_len;
static pid_t child;
static int rp[2];

/* Sends the pipe ends and W/data (offset 5) over rp, then closes them. */
static void ArmRights(void) {
  int p[2];
  char path[4200];
  snprintf(path, sizeof(path), "%s/data", cf_prog.workdir);
  int f = open(path, O_RDONLY);
  if (pipe(p) != 0 || f < 0 || write(p[1], "abc", 3) != 3 || lseek(f, 5, SEEK_SET) != 5) {
    cf_failf("rights: setup: %s", strerror(errno));
    return;
  }
  int fds[3] = {p[0], p[1], f};
  char cbuf[CMSG_SPACE(sizeof(fds))];
  memset(cbuf, 0, sizeof(cbuf));
  struct iovec iov = {"R", 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(fds));
  memcpy(CMSG_DATA(c), fds, sizeof(fds));
  if (sendmsg(rp[0], &m, 0) != 1) cf_failf("rights: sendmsg: %s", strerror(errno));
  close(p[0]), close(p[1]), close(f);
}

static void CheckRights(void) {
  int fds[3] = {-1, -1, -1};
  char cbuf[CMSG_SPACE(sizeof(fds))], b[8];
  struct iovec iov = {b, sizeof(b)};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
  ssize_t n = recvmsg(rp[1], &m, MSG_DONTWAIT);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (n != 1 || b[0] != 'R' || !c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(fds))) {
    cf_failf("rights: no message with 3 descriptors (%zd)", n);
    return;
  }
  memcpy(fds, CMSG_DATA(c), sizeof(fds));
  char got[8] = {0};
  if (read(fds[0], got, sizeof(got)) != 3 || memcmp(got, "abc", 3) != 0) cf_failf("rights: the pipe lost its bytes");
  if (write(fds[1], "z", 1) != 1 || read(fds[0], got, 1) != 1 || got[0] != 'z') cf_failf("rights: not one pipe");
  if (lseek(fds[2], 0, SEEK_CUR) != 5 || read(fds[2], got, 3) != 3 || memcmp(got, "567", 3) != 0) {
    cf_failf("rights: the file is not at offset 5");
  }
  for (int i = 0; i < 3; i++) close(fds[i]);
  ArmRights();
}

static const size_t kDgram[] = {10, 0, 500};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static unsigned char Pat(int stream, size_t msg, size_t off) {
  return (unsigned char)(off * 13 + msg * 7 + (size_t)stream * 31 + 1);
}

static socklen_t PathAddr(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof(*a));
  a->sun_family = AF_UNIX;
  snprintf(a->sun_path, sizeof(a->sun_path), "%s", path);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static int Sock(int type) {
  int s = socket(AF_UNIX, type, 0);
  if (s < 0) cf_die("socket: %s", strerror(errno));
  return s;
}

static void SendMsgs(int fd, int stream, const size_t *lens, size_t n) {
  unsigned char buf[4096];
  for (size_t m = 0; m < n; m++) {
    for (size_t i = 0; i < lens[m]; i++) buf[i] = Pat(stream, m, i);
    if (send(fd, buf, lens[m], MSG_DONTWAIT) != (ssize_t)lens[m]) cf_failf("send %d/%zu: %s", stream, m, strerror(errno));
  }
}

/* Reads messages |lens| (a stream: their bytes in a row) and then nothing. */
static void RecvMsgs(int fd, int stream, const size_t *lens, size_t n, int is_stream, const char *what) {
  unsigned char buf[8192];
  size_t total = 0;
  for (size_t m = 0; m < n; m++) total += lens[m];
  if (is_stream) {
    size_t got = 0;
    while (got < total) {
      ssize_t k = recv(fd, buf + got, total - got, MSG_DONTWAIT);
      if (k <= 0) {
        cf_failf("%s: %zu of %zu bytes (%s)", what, got, total, k < 0 ? strerror(errno) : "end of stream");
        return;
      }
      got += (size_t)k;
    }
    size_t off = 0;
    for (size_t m = 0; m < n; m++) {
      for (size_t i = 0; i < lens[m]; i++, off++) {
        if (buf[off] != Pat(stream, m, i)) {
          cf_failf("%s: byte %zu differs", what, off);
          return;
        }
      }
    }
  } else {
    for (size_t m = 0; m < n; m++) {
      ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (k != (ssize_t)lens[m]) {
        cf_failf("%s: message %zu has %zd bytes, want %zu (%s)", what, m, k, lens[m], k < 0 ? strerror(errno) : "");
        return;
      }
      for (size_t i = 0; i < lens[m]; i++) {
        if (buf[i] != Pat(stream, m, i)) {
          cf_failf("%s: message %zu byte %zu differs", what, m, i);
          return;
        }
      }
    }
  }
  if (recv(fd, buf, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN) cf_failf("%s: more is queued", what);
}

static void ExpectName(int fd, const void *want, socklen_t want_len, const char *what) {
  struct sockaddr_un a;
  socklen_t len = sizeof(a);
  if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    cf_failf("%s: getsockname: %s", what, strerror(errno));
  } else if (len != want_len || memcmp(&a, want, len) != 0) {
    cf_failf("%s: bound to another name (%u bytes, want %u)", what, (unsigned)len, (unsigned)want_len);
  }
}

static const size_t kDown[] = {3000};
static const size_t kUp[] = {700, 700};

/* The child's part that a check consumes. */
static void ChildArm(void) {
  pend = Sock(SOCK_STREAM);
  if (connect(pend, (struct sockaddr *)&lst_addr, sizeof(lst_addr)) != 0) cf_failf("connect pend: %s", strerror(errno));
  sqpend = Sock(SOCK_SEQPACKET);
  if (connect(sqpend, (struct sockaddr *)&sq_addr, sq_len) != 0) cf_failf("connect sqpend: %s", strerror(errno));
  SendMsgs(cli, 1, kUp, N(kUp));
  SendMsgs(dcli, 2, kDgram, N(kDgram));
  static const size_t one[] = {33};
  SendMsgs(dgone, 3, one, 1);
}

static void ChildCheck(void) {
  RecvMsgs(cli, 0, kDown, N(kDown), 1, "cli");
  struct sockaddr_un peer;
  socklen_t len = sizeof(peer);
  if (getpeername(dcli, (struct sockaddr *)&peer, &len) != 0 || strcmp(peer.sun_path, "dsrv.sock") != 0) {
    cf_failf("dcli: not connected to dsrv.sock");
  }
  if (send(pend, "ping", 4, 0) != 4) cf_failf("pend: %s", strerror(errno));
  if (send(sqpend, "ping", 4, 0) != 4) cf_failf("sqpend: %s", strerror(errno));
  close(pend);
  close(sqpend);
  ChildArm();
}

static void ReadPing(int fd, const char *what) {
  struct pollfd p = {fd, POLLIN, 0};
  char buf[8];
  if (poll(&p, 1, 10000) != 1 || recv(fd, buf, sizeof(buf), 0) != 4 || memcmp(buf, "ping", 4) != 0) {
    cf_failf("%s: no ping", what);
  }
}

/* A connection waiting in listener |fd| now, or -1. */
static int AcceptNow(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 0) != 1) {
    errno = EAGAIN;
    return -1;
  }
  return accept(fd, NULL, NULL);
}

static void ParentCheck(void) {
  struct stat st;
  char path[4200];
  snprintf(path, sizeof(path), "%s/lst.sock", cf_prog.workdir);
  if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || (st.st_mode & 0777) != 0640) cf_failf("lst.sock: mode or type");
  snprintf(path, sizeof(path), "%s/ddel.sock", cf_prog.workdir);
  if (access(path, F_OK) == 0) cf_failf("ddel.sock exists again");
  ExpectName(lst, &lst_addr, lst_len, "lst");
  ExpectName(sql, &sq_addr, sq_len, "sql");
  ExpectName(dsrv, &dsrv_addr, dsrv_len, "dsrv");
  struct sockaddr_un none;
  socklen_t len = sizeof(none);
  if (getsockname(unb, (struct sockaddr *)&none, &len) != 0 || len != sizeof(sa_family_t)) cf_failf("unb: a name");
  int type = 0;
  len = sizeof(type);
  if (getsockopt(unb, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) cf_failf("unb: type %d", type);

  RecvMsgs(acc, 1, kUp, N(kUp), 1, "acc");
  RecvMsgs(dsrv, 2, kDgram, N(kDgram), 0, "dsrv");
  static const size_t one[] = {33};
  RecvMsgs(ddel, 3, one, 1, 0, "ddel");
  int a1 = AcceptNow(lst);
  int s1 = AcceptNow(sql);
  if (a1 < 0) cf_failf("lst: no connection waiting (%s)", strerror(errno));
  if (s1 < 0) cf_failf("sql: no connection waiting (%s)", strerror(errno));
  int extra = AcceptNow(lst);
  if (extra >= 0) cf_failf("lst: two connections waiting");
  cf_ask_child(child, "result.child");
  if (a1 >= 0) ReadPing(a1, "lst's connection");
  if (s1 >= 0) ReadPing(s1, "sql's connection");
  close(a1);
  close(s1);
  if (extra >= 0) close(extra);
  SendMsgs(acc, 0, kDown, N(kDown));
  CheckRights();
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "unix_sockets W");
  if (chdir(cf_prog.workdir) != 0) cf_die("chdir");
  char path[4200];
  snprintf(path, sizeof(path), "%s/lst.sock", cf_prog.workdir);
  if (strlen(path) >= sizeof(lst_addr.sun_path)) cf_die("work directory too long for a socket path");
  lst_len = PathAddr(&lst_addr, path);
  unlink(path);
  lst = Sock(SOCK_STREAM);
  if (bind(lst, (struct sockaddr *)&lst_addr, sizeof(lst_addr)) != 0 || chmod(path, 0640) != 0 || listen(lst, 5) != 0) {
    cf_die("lst: %s", strerror(errno));
  }
  memset(&sq_addr, 0, sizeof(sq_addr));
  sq_addr.sun_family = AF_UNIX;
  int n = snprintf(sq_addr.sun_path + 1, sizeof(sq_addr.sun_path) - 1, "cf-unix-sq-%d", (int)getpid());
  sq_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
  sql = Sock(SOCK_SEQPACKET);
  if (bind(sql, (struct sockaddr *)&sq_addr, sq_len) != 0 || listen(sql, 3) != 0) cf_die("sql: %s", strerror(errno));
  unlink("dsrv.sock");
  socklen_t dl = dsrv_len = PathAddr(&dsrv_addr, "dsrv.sock");
  dsrv = Sock(SOCK_DGRAM);
  if (bind(dsrv, (struct sockaddr *)&dsrv_addr, dl) != 0) cf_die("dsrv: %s", strerror(errno));
  snprintf(path, sizeof(path), "%s/ddel.sock", cf_prog.workdir);
  PathAddr(&ddel_addr, path);
  unlink(path);
  ddel = Sock(SOCK_DGRAM);
  if (bind(ddel, (struct sockaddr *)&ddel_addr, sizeof(ddel_addr)) != 0) cf_die("ddel: %s", strerror(errno));
  unb = Sock(SOCK_STREAM);

  cli = Sock(SOCK_STREAM);
  if (connect(cli, (struct sockaddr *)&lst_addr, sizeof(lst_addr)) != 0) cf_die("cli: %s", strerror(errno));
  acc = accept(lst, NULL, NULL);
  if (acc < 0) cf_die("accept: %s", strerror(errno));
  dcli = Sock(SOCK_DGRAM);
  if (connect(dcli, (struct sockaddr *)&dsrv_addr, dl) != 0) cf_die("dcli: %s", strerror(errno));
  dgone = Sock(SOCK_DGRAM);
  if (connect(dgone, (struct sockaddr *)&ddel_addr, sizeof(ddel_addr)) != 0) cf_die("dgone: %s", strerror(errno));
  if (unlink(path) != 0) cf_die("unlink ddel.sock");

  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    close(lst), close(acc), close(sql), close(dsrv), close(ddel), close(unb);
    ChildArm();
    if (cf_prog.fail[0]) cf_die("child setup: %s", cf_prog.fail);
    cf_child_ready("ready.child");
    cf_child_loop(ChildCheck, "result.child");
  }
  close(cli), close(dcli), close(dgone);
  if (cf_write_file("data", "0123456789") != 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, rp) != 0) cf_die("rights setup");
  ArmRights();
  SendMsgs(acc, 0, kDown, N(kDown));
  if (cf_prog.fail[0]) cf_die("setup: %s", cf_prog.fail);
  char buf[64];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child never got ready");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      ParentCheck();
      cf_report();
    }
    cf_nap(20);
  }
}
