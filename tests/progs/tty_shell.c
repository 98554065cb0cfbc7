/* tty_shell W: a shell job, run on a terminal whose master is outside the
 * tree (the driver starts it under script(1), which holds the master).
 *
 * Set up before W/ready: stdin, stdout and stderr are the job's terminal;
 * the program leaves the session of the shell that started it (it is not
 * a session leader), makes a process group of its own and puts it in the
 * foreground of the terminal, as a shell does for a foreground job; it
 * changes the terminal's termios (no ECHO, VINTR ^P) and window size
 * (40x100). W/tty holds the terminal's path.
 *
 * On SIGUSR1 it writes its terminal's path (fd 0) to W/tty again and
 * checks: fds 0-2 are one terminal, its controlling terminal (/proc tty_nr
 * and /dev/tty), with the changed termios and window size; its group is
 * its own and in the foreground; it does not lead its session.
 */
#include "prog_common.h"

#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>

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

static void write_tty_path(void) {
  char path[256] = "", line[300];
  ssize_t n = readlink("/proc/self/fd/0", path, sizeof(path) - 1);
  path[n > 0 ? n : 0] = 0;
  snprintf(line, sizeof(line), "%s\n", path);
  cf_write_file("tty", line);
}

static void check(void) {
  write_tty_path();
  struct stat sb[3];
  for (int i = 0; i < 3; i++) {
    if (fstat(i, &sb[i]) != 0 || !isatty(i)) {
      cf_failf("fd %d is no terminal", i);
      return;
    }
  }
  CF_CHECK(sb[0].st_rdev == sb[1].st_rdev && sb[0].st_rdev == sb[2].st_rdev, "fds 0-2 are not one terminal");
  CF_CHECK(stat_tty() == sb[0].st_rdev, "controlling terminal %#lx, fd 0 is %#lx", (long)stat_tty(),
           (long)sb[0].st_rdev);
  int t = open("/dev/tty", O_RDWR | O_NOCTTY);
  CF_CHECK(t >= 0, "open /dev/tty: %s", strerror(errno));
  if (t >= 0) close(t);
  struct termios tio;
  CF_CHECK(tcgetattr(0, &tio) == 0 && !(tio.c_lflag & ECHO) && tio.c_cc[VINTR] == 0x10,
           "termios: lflag %#x VINTR %#x", tio.c_lflag, tio.c_cc[VINTR]);
  struct winsize ws;
  CF_CHECK(ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 40 && ws.ws_col == 100, "window size %ux%u",
           ws.ws_row, ws.ws_col);
  CF_CHECK(getpgrp() == getpid(), "group %d, want its own", (int)getpgrp());
  CF_CHECK(tcgetpgrp(0) == getpgrp(), "foreground group %d, want its own %d", (int)tcgetpgrp(0), (int)getpgrp());
  CF_CHECK(getsid(0) != getpid(), "it leads its session");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "tty_shell W");
  signal(SIGHUP, SIG_IGN);
  if (!isatty(0)) cf_die("stdin is no terminal");
  if (setpgid(0, 0) != 0) cf_die("setpgid");
  signal(SIGTTOU, SIG_IGN);
  if (tcsetpgrp(0, getpid()) != 0) cf_die("tcsetpgrp");
  signal(SIGTTOU, SIG_DFL);
  struct termios tio;
  if (tcgetattr(0, &tio) != 0) cf_die("tcgetattr");
  tio.c_lflag &= ~ECHO;
  tio.c_cc[VINTR] = 0x10;
  if (tcsetattr(0, TCSANOW, &tio) != 0) cf_die("tcsetattr");
  struct winsize ws = {40, 100, 0, 0};
  if (ioctl(0, TIOCSWINSZ, &ws) != 0) cf_die("TIOCSWINSZ");
  write_tty_path();
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
