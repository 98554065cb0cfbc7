/* Leases (F_SETLEASE), active and being broken:
 *   r    O_RDONLY, a read lease;
 *   w    O_WRONLY, a write lease (and a dup of it);
 *   rb   O_RDONLY, a read lease an O_WRONLY open is breaking (to none);
 *   wb   O_WRONLY, a write lease an O_RDONLY open is breaking (to read);
 *   cb   O_RDWR, a write lease an O_WRONLY open is breaking (to none),
 *        then held by a child only: the parent, which took the lease,
 *        stays the description's owner (zdtm's file_lease04);
 * the breaks signal us with SIGUSR2 (F_SETSIG), counted by a handler.
 * Check: F_GETLEASE gives each type (a breaking lease: the type it goes
 * to), and no break signal came after the setup (a restore must not send
 * the program one). */
#include "prog_common.h"

enum { kR = 40, kW = 41, kWDup = 42, kRb = 43, kWb = 44, kCb = 45 };

static volatile sig_atomic_t breaks;

static void on_break(int sig) {
  (void)sig;
  breaks++;
}

static void open_at(const char *name, int flags, int at) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", cf_prog.workdir, name);
  int fd = open(path, flags | O_CREAT, 0644);
  if (fd < 0 || dup2(fd, at) < 0) cf_die("open %s", path);
  close(fd);
}

static void lease(int fd, int type) {
  if (fcntl(fd, F_SETSIG, SIGUSR2) != 0 || fcntl(fd, F_SETLEASE, type) != 0) cf_die("lease on fd %d", fd);
}

static void start_break(const char *name, int flags) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", cf_prog.workdir, name);
  int fd = open(path, flags | O_NONBLOCK);
  if (fd >= 0 || errno != EWOULDBLOCK) cf_die("break the lease of %s", name);
}

static void check_lease(int fd, int want, const char *what) {
  int got = fcntl(fd, F_GETLEASE);
  CF_CHECK(got == want, "%s (fd %d): lease type %d, want %d (errno %d)", what, fd, got, want, errno);
}

static void check_child(void) { check_lease(kCb, F_UNLCK, "the child's lease being broken"); }

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "desc_lease W");
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_break;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGUSR2, &sa, NULL) != 0) cf_die("sigaction");

  open_at("r", O_RDONLY, kR);
  open_at("w", O_WRONLY, kW);
  open_at("rb", O_RDONLY, kRb);
  open_at("wb", O_WRONLY, kWb);
  if (dup2(kW, kWDup) < 0) cf_die("dup");
  lease(kR, F_RDLCK);
  lease(kW, F_WRLCK);
  lease(kRb, F_RDLCK);
  lease(kWb, F_WRLCK);
  open_at("cb", O_RDWR, kCb);
  lease(kCb, F_WRLCK);
  start_break("rb", O_WRONLY);
  start_break("wb", O_RDONLY);
  start_break("cb", O_WRONLY);
  for (int i = 0; i < 200 && breaks < 3; i++) cf_nap(5);
  if (breaks != 3) cf_die("%d break signals, want 3", (int)breaks);
  const int setup_breaks = breaks;
  pid_t child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    cf_child_ready("ready.child");
    cf_child_loop(check_child, "result.child");
  }
  close(kCb);
  char buf[32];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("no child");
  cf_ready();

  for (;;) {
    if (cf_take_usr1()) {
      check_lease(kR, F_RDLCK, "read lease");
      check_lease(kW, F_WRLCK, "write lease");
      check_lease(kWDup, F_WRLCK, "write lease through a dup");
      check_lease(kRb, F_UNLCK, "read lease being broken");
      check_lease(kWb, F_RDLCK, "write lease being broken to read");
      cf_ask_child(child, "result.child");
      CF_CHECK(breaks == setup_breaks, "%d break signals since the setup", (int)breaks - setup_breaks);
      cf_report();
    }
    cf_nap(20);
  }
}
