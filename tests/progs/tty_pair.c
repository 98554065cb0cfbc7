/* tty_pair W: pseudo-terminals held inside the tree.
 *
 * Set up before W/ready:
 *   root R   opens a pair (master M) and forks S; a second pair (M2 and its
 *            slave S2) stays in R: S2 opened, then the pair locked again
 *            (TIOCSPTLCK), packet mode on (TIOCPKT).
 *   S        setsid(), opens M's slave without O_NOCTTY (it becomes S's
 *            controlling terminal), changes its termios (no ECHO, IXANY,
 *            VINTR ^P) and window size (33x111, 5x7 pixels), sets the
 *            slave exclusive (TIOCEXCL), opens /dev/tty, forks G.
 *   G        setpgid(0, 0): a group of its own in S's session; S makes it
 *            the terminal's foreground group.
 *   data     R writes "line one\nline two\npart" to M (two complete lines
 *            and a line being typed, for S to read); S writes "out1\n" to
 *            its slave (R reads "out1\r\n" from M: ONLCR).
 * W/ready.child holds S's pid, W/ready.grandchild G's.
 *
 * On SIGUSR1 R checks: M's settings (termios, window size), that M is the
 * controlling terminal of S's session (TIOCGSID) with G's group in the
 * foreground (TIOCGPGRP), that M reads exactly "out1\r\n"; M2 still locked
 * and in packet mode, S2 an end of M2's pair (TIOCGPTN against S2's
 * rdev), and a byte written to S2 reads as a data packet on M2. Then S
 * checks: it leads its session, its controlling terminal is its slave
 * (/proc/self/stat tty_nr, /dev/tty), the foreground group is G's
 * (through its /dev/tty descriptor too), the slave is exclusive, and it
 * reads "line one\n", "line two\n", then nothing more in canonical mode,
 * then "part" with canonical mode off for a moment; it asks G, which
 * checks it is in the foreground of its controlling terminal. Then each
 * puts its bytes back, so the next check (or the next dump) finds them.
 */
#include "prog_common.h"

#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>

static const char kInput[] = "line one\nline two\npart";
static const char kOutput[] = "out1\n";
static const char kOutputSeen[] = "out1\r\n";

static int m = -1, m2 = -1, s2 = -1;
static int slave = -1, devtty = -1;  /* S's */
static pid_t child = -1, grandchild = -1;

static void write_all(int fd, const char *s, const char *what) {
  size_t len = strlen(s), off = 0;
  while (off < len) {
    ssize_t n = write(fd, s + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      cf_failf("write %s: %s", what, strerror(errno));
      return;
    }
    off += (size_t)n;
  }
}

/* Reads what |fd| has now (O_NONBLOCK set on it). */
static ssize_t read_now(int fd, char *buf, size_t len) {
  for (int i = 0; i < 100; i++) {
    ssize_t n = read(fd, buf, len);
    if (n >= 0 || errno != EINTR) return n;
  }
  return -1;
}

/* /proc/self/stat field 7 (tty_nr) as a dev_t. */
static dev_t stat_tty(void) {
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  int ppid, pgrp, sid, tty_nr;
  char st;
  if (!p || sscanf(p + 1, " %c %d %d %d %d", &st, &ppid, &pgrp, &sid, &tty_nr) != 5) return 0;
  unsigned nr = (unsigned)tty_nr;
  return makedev((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00));
}

static void check_grandchild(void) {
  int t = open("/dev/tty", O_RDWR | O_NOCTTY);
  if (t < 0) {
    cf_failf("G: no controlling terminal: open /dev/tty: %s", strerror(errno));
    return;
  }
  /* /dev/tty's own inode tells nothing: the session does. */
  CF_CHECK(tcgetsid(t) == getsid(0), "G: its terminal belongs to session %d, not its own", (int)tcgetsid(t));
  CF_CHECK(major(stat_tty()) >= 136 && major(stat_tty()) < 144, "G: controlling terminal %#lx is no pts",
           (long)stat_tty());
  pid_t fg = tcgetpgrp(t);
  CF_CHECK(fg == getpgrp(), "G: foreground group %d, want its own %d", (int)fg, (int)getpgrp());
  CF_CHECK(getpgrp() == getpid(), "G: group %d, want its own", (int)getpgrp());
  close(t);
}

static void check_child(void) {
  struct stat sb, tsb;
  CF_CHECK(getsid(0) == getpid(), "S: session %d, want its own", (int)getsid(0));
  if (fstat(slave, &sb) != 0 || fstat(devtty, &tsb) != 0) {
    cf_failf("S: fstat: %s", strerror(errno));
    return;
  }
  CF_CHECK(stat_tty() == sb.st_rdev, "S: controlling terminal %#lx, want its slave %#lx", (long)stat_tty(),
           (long)sb.st_rdev);
  CF_CHECK(tcgetsid(slave) == getpid(), "S: tcgetsid(slave) %d", (int)tcgetsid(slave));
  int t = open("/dev/tty", O_RDWR | O_NOCTTY);
  if (t < 0) {
    cf_failf("S: open /dev/tty: %s", strerror(errno));
  } else {
    CF_CHECK(tcgetsid(t) == getpid(), "S: /dev/tty belongs to session %d", (int)tcgetsid(t));
    close(t);
  }
  CF_CHECK(tcgetpgrp(slave) == grandchild, "S: foreground group %d, want G's %d", (int)tcgetpgrp(slave),
           (int)grandchild);
  CF_CHECK(tcgetpgrp(devtty) == grandchild, "S: foreground group through its /dev/tty fd %d, want %d",
           (int)tcgetpgrp(devtty), (int)grandchild);
  int excl = 0;
  CF_CHECK(ioctl(slave, TIOCGEXCL, &excl) == 0 && excl == 1, "S: the slave is not exclusive");

  /* The queued input: two lines, then the line being typed. A background
   * group cannot read its terminal: S takes the foreground for a moment. */
  signal(SIGTTOU, SIG_IGN);
  tcsetpgrp(slave, getpgrp());
  char buf[256];
  ssize_t n = read_now(slave, buf, sizeof(buf));
  CF_CHECK(n == 9 && memcmp(buf, "line one\n", 9) == 0, "S: first line: %zd bytes", n);
  n = read_now(slave, buf, sizeof(buf));
  CF_CHECK(n == 9 && memcmp(buf, "line two\n", 9) == 0, "S: second line: %zd bytes", n);
  n = read_now(slave, buf, sizeof(buf));
  CF_CHECK(n < 0 && errno == EAGAIN, "S: a third line (%zd bytes)", n);
  struct termios tio, raw;
  tcgetattr(slave, &tio);
  raw = tio;
  raw.c_lflag &= ~ICANON;
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  tcsetattr(slave, TCSANOW, &raw);
  n = read_now(slave, buf, sizeof(buf));
  tcsetattr(slave, TCSANOW, &tio);
  CF_CHECK(n == 4 && memcmp(buf, "part", 4) == 0, "S: the line being typed: %zd bytes", n);
  tcsetpgrp(slave, grandchild);
  signal(SIGTTOU, SIG_DFL);
  cf_ask_child(grandchild, "result.grandchild");
  write_all(slave, kOutput, "the slave");
}

static void check_root(void) {
  struct termios tio;
  if (tcgetattr(m, &tio) != 0) {
    cf_failf("tcgetattr(M): %s", strerror(errno));
    return;
  }
  CF_CHECK(!(tio.c_lflag & ECHO) && (tio.c_lflag & ICANON), "M: lflag %#x", tio.c_lflag);
  CF_CHECK(tio.c_iflag & IXANY, "M: iflag %#x without IXANY", tio.c_iflag);
  CF_CHECK(tio.c_cc[VINTR] == 0x10, "M: VINTR %#x", tio.c_cc[VINTR]);
  struct winsize ws;
  CF_CHECK(ioctl(m, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 33 && ws.ws_col == 111 && ws.ws_xpixel == 5 &&
               ws.ws_ypixel == 7,
           "M: window size %ux%u", ws.ws_row, ws.ws_col);
  pid_t sid = 0, pgrp = 0;
  CF_CHECK(ioctl(m, TIOCGSID, &sid) == 0 && sid == child, "M: session %d, want S %d", (int)sid, (int)child);
  CF_CHECK(ioctl(m, TIOCGPGRP, &pgrp) == 0 && pgrp == grandchild, "M: foreground %d, want G %d", (int)pgrp,
           (int)grandchild);
  char buf[256];
  ssize_t n = read_now(m, buf, sizeof(buf));
  CF_CHECK(n == (ssize_t)strlen(kOutputSeen) && memcmp(buf, kOutputSeen, strlen(kOutputSeen)) == 0,
           "M: read %zd bytes, want \"out1\\r\\n\"", n);

  int locked = 0, pkt = 0;
  unsigned idx = 0;
  struct stat sb;
  CF_CHECK(ioctl(m2, TIOCGPTLCK, &locked) == 0 && locked == 1, "M2: not locked");
  CF_CHECK(ioctl(m2, TIOCGPKT, &pkt) == 0 && pkt == 1, "M2: not in packet mode");
  CF_CHECK(ioctl(m2, TIOCGPTN, &idx) == 0 && fstat(s2, &sb) == 0 && minor(sb.st_rdev) == idx,
           "S2 (%u:%u) is not the slave of M2 (pts %u)", major(sb.st_rdev), minor(sb.st_rdev), idx);
  write_all(s2, "x", "S2");
  for (int i = 0; i < 100; i++) {
    n = read_now(m2, buf, sizeof(buf));
    if (n > 0 || errno != EAGAIN) break;
    cf_nap(10);
  }
  CF_CHECK(n == 2 && buf[0] == TIOCPKT_DATA && buf[1] == 'x', "M2: read %zd bytes, want a data packet", n);

  cf_ask_child(child, "result.child");
  write_all(m, kInput, "M");
}

static void grandchild_main(void) {
  setpgid(0, 0);
  cf_child_ready("ready.grandchild");
  cf_child_loop(check_grandchild, "result.grandchild");
}

static void child_main(const char *name) {
  if (setsid() < 0) cf_die("setsid");
  slave = open(name, O_RDWR); /* no O_NOCTTY: our controlling terminal */
  if (slave < 0) cf_die("open %s", name);
  struct termios tio;
  if (tcgetattr(slave, &tio) != 0) cf_die("tcgetattr");
  tio.c_lflag &= ~ECHO;
  tio.c_iflag |= IXANY;
  tio.c_cc[VINTR] = 0x10;
  if (tcsetattr(slave, TCSANOW, &tio) != 0) cf_die("tcsetattr");
  struct winsize ws = {33, 111, 5, 7};
  if (ioctl(slave, TIOCSWINSZ, &ws) != 0) cf_die("TIOCSWINSZ");
  if (ioctl(slave, TIOCEXCL) != 0) cf_die("TIOCEXCL");
  devtty = open("/dev/tty", O_RDWR);
  if (devtty < 0) cf_die("open /dev/tty");
  int fl = fcntl(slave, F_GETFL);
  fcntl(slave, F_SETFL, fl | O_NONBLOCK);

  grandchild = fork();
  if (grandchild < 0) cf_die("fork");
  if (grandchild == 0) grandchild_main();
  setpgid(grandchild, grandchild);
  char buf[64];
  if (cf_wait_file("ready.grandchild", buf, sizeof(buf)) != 0) cf_die("no grandchild");
  signal(SIGTTOU, SIG_IGN);
  if (tcsetpgrp(slave, grandchild) != 0) cf_die("tcsetpgrp");
  signal(SIGTTOU, SIG_DFL);
  write_all(slave, kOutput, "the slave");
  cf_child_ready("ready.child");
  cf_child_loop(check_child, "result.child");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "tty_pair W");
  signal(SIGHUP, SIG_IGN);
  m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) cf_die("posix_openpt");
  char name[64];
  if (ptsname_r(m, name, sizeof(name)) != 0) cf_die("ptsname");
  m2 = posix_openpt(O_RDWR | O_NOCTTY);
  if (m2 < 0 || unlockpt(m2) != 0) cf_die("posix_openpt 2");
  char name2[64];
  if (ptsname_r(m2, name2, sizeof(name2)) != 0) cf_die("ptsname 2");
  s2 = open(name2, O_RDWR | O_NOCTTY);
  if (s2 < 0) cf_die("open %s", name2);
  int one = 1;
  if (ioctl(m2, TIOCSPTLCK, &one) != 0 || ioctl(m2, TIOCPKT, &one) != 0) cf_die("lock, packet mode");
  fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
  fcntl(m2, F_SETFL, fcntl(m2, F_GETFL) | O_NONBLOCK);

  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) child_main(name);
  char buf[64];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("no child");
  if (cf_wait_file("ready.grandchild", buf, sizeof(buf)) != 0) cf_die("no grandchild");
  grandchild = atoi(buf);
  write_all(m, kInput, "M");
  /* The echo is off: only S's bytes come to M. Let them arrive. */
  for (int i = 0; i < 100; i++) {
    int q = 0;
    if (ioctl(m, FIONREAD, &q) == 0 && q == (int)strlen(kOutputSeen)) break;
    cf_nap(10);
  }
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check_root();
      cf_report();
    }
    cf_nap(20);
    int st;
    if (waitpid(child, &st, WNOHANG) == child) cf_die("S exited (status %#x)", st);
  }
}
