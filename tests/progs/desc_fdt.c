/* Descriptor tables shared between processes (clone with CLONE_FILES, not
 * CLONE_VM), the shape zdtm's fdt_shared makes:
 *
 *   main ── a (shares main's table) ── g (shares it too)
 *        │                          └─ h (its own copy, made by a)
 *        └─ b (shares main's table)
 *
 * Before the dump main opens a pipe at 60/61, then a makes h, then main
 * opens /dev/null at 70: h has the pipe but not 70.
 *
 * Check (main): kcmp says a, b and g share main's table and h does not;
 * fd 70 is there and 200 is not; main opens W/probe at fd 200, and each
 * sharer must find that very file at 200 (and 60, 61, 70), while h must
 * find the pipe only; then main closes 200 for the next check. */
#include "prog_common.h"

#include <linux/kcmp.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>

enum { kPipeR = 60, kPipeW = 61, kNull = 70, kProbe = 200 };

static char probe_path[4200];

static pid_t clone_files(int share) {
  return (pid_t)syscall(SYS_clone, (share ? CLONE_FILES : 0) | SIGCHLD, NULL, NULL, NULL, 0);
}

static int is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static void check_probe(int want_open) {
  struct stat a, b;
  if (!want_open) {
    CF_CHECK(!is_open(kProbe), "fd %d of main's is open in a process with its own table", kProbe);
    CF_CHECK(!is_open(kNull), "fd %d (opened after the copy) is in the copied table", kNull);
    CF_CHECK(is_open(kPipeR) && is_open(kPipeW), "the pipe is missing from the copied table");
    return;
  }
  CF_CHECK(is_open(kPipeR) && is_open(kPipeW) && is_open(kNull), "the shared table lost a descriptor");
  if (fstat(kProbe, &a) != 0 || stat(probe_path, &b) != 0) {
    cf_failf("fd %d main opened is not in the shared table (errno %d)", kProbe, errno);
    return;
  }
  CF_CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "fd %d is not W/probe", kProbe);
}

static void check_sharer(void) { check_probe(1); }
static void check_copy(void) { check_probe(0); }

static pid_t read_pid(const char *name) {
  char buf[64];
  if (cf_wait_file(name, buf, sizeof(buf)) != 0) cf_die("no %s", name);
  return (pid_t)atoi(buf);
}

static int same_table(pid_t a, pid_t b) { return syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0; }

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "desc_fdt W");
  snprintf(probe_path, sizeof(probe_path), "%s/probe", cf_prog.workdir);
  if (cf_write_file("probe", "probe\n") != 0) cf_die("write probe");
  int p[2];
  if (pipe(p) != 0 || dup2(p[0], kPipeR) < 0 || dup2(p[1], kPipeW) < 0) cf_die("pipe");
  close(p[0]);
  close(p[1]);

  pid_t a = clone_files(1);
  if (a < 0) cf_die("clone a");
  if (a == 0) {
    pid_t g = clone_files(1);
    if (g == 0) {
      cf_child_ready("pid.g");
      cf_child_loop(check_sharer, "result.g");
    }
    pid_t h = clone_files(0);
    if (h == 0) {
      cf_child_ready("pid.h");
      cf_child_loop(check_copy, "result.h");
    }
    if (g < 0 || h < 0) _exit(1);
    cf_child_ready("pid.a");
    cf_child_loop(check_sharer, "result.a");
  }
  pid_t b = clone_files(1);
  if (b < 0) cf_die("clone b");
  if (b == 0) {
    cf_child_ready("pid.b");
    cf_child_loop(check_sharer, "result.b");
  }
  const pid_t g = read_pid("pid.g"), h = read_pid("pid.h");
  (void)read_pid("pid.a");
  (void)read_pid("pid.b");
  int n = open("/dev/null", O_RDONLY);
  if (n < 0 || dup2(n, kNull) < 0) cf_die("open /dev/null");
  close(n);
  cf_ready();

  for (;;) {
    if (cf_take_usr1()) {
      CF_CHECK(same_table(getpid(), a) && same_table(getpid(), b) && same_table(getpid(), g),
               "a child no longer shares main's descriptor table");
      CF_CHECK(!same_table(getpid(), h), "the child with a copied table shares main's");
      CF_CHECK(!is_open(kProbe), "fd %d is open before the check", kProbe);
      int fd = open(probe_path, O_RDONLY);
      if (fd < 0 || dup2(fd, kProbe) < 0) cf_failf("open probe: errno %d", errno);
      if (fd >= 0) close(fd);
      cf_ask_child(a, "result.a");
      cf_ask_child(b, "result.b");
      cf_ask_child(g, "result.g");
      cf_ask_child(h, "result.h");
      close(kProbe);
      cf_report();
    }
    cf_nap(20);
  }
}
