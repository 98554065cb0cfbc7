/* files_chroot W: a child that chroot-ed, namespace files, and a working
 * directory in /proc/PID of a process that died.
 *
 *   parent   holds /proc/self/ns/net and /proc/self/ns/uts open; its cwd is
 *            /proc/PID of a short-lived child, killed and reaped since
 *   child    chroot(W/root) with its cwd left outside (in W), W/root/inside
 *            open; it reports into W/root (its "/")
 * On SIGUSR1 the parent checks that its namespace files are still its own
 * namespaces and that its cwd is a dead /proc directory still (getcwd
 * fails with ENOENT, the link reads "/proc/N (deleted)"), then asks the child, which checks that "/" is W/root (the
 * inode it had), that it opens /inside by that name and gets the file its fd
 * holds, and that its cwd is still W (outside its root).
 */
#include "prog_common.h" /* first: it defines _GNU_SOURCE */

#include <sys/stat.h>
#include <sys/wait.h>

static int ns_net, ns_uts;
static struct stat root_st, cwd_st, inside_st;
static int inside_fd;

static int same_ns(int fd, const char *name) {
  struct stat a, b;
  char p[64];
  snprintf(p, sizeof(p), "/proc/self/ns/%s", name);
  return fstat(fd, &a) == 0 && stat(p, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static void check_child(void) {
  struct stat st;
  CF_CHECK(stat("/", &st) == 0 && st.st_ino == root_st.st_ino && st.st_dev == root_st.st_dev,
           "the root is not W/root");
  CF_CHECK(fstat(inside_fd, &st) == 0 && st.st_ino == inside_st.st_ino, "the fd is another file");
  int fd = open("/inside", O_RDONLY);
  CF_CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == inside_st.st_ino, "/inside is not W/root/inside");
  if (fd >= 0) close(fd);
  CF_CHECK(stat(".", &st) == 0 && st.st_ino == cwd_st.st_ino, "the cwd is not W");
}

static void check(void) {
  CF_CHECK(same_ns(ns_net, "net"), "the net namespace file is of another namespace");
  CF_CHECK(same_ns(ns_uts, "uts"), "the uts namespace file is of another namespace");
  char buf[4200];
  errno = 0;
  CF_CHECK(getcwd(buf, sizeof(buf)) == NULL && errno == ENOENT, "getcwd gives %s (errno %d), want ENOENT",
           errno ? "an error" : buf, errno);
  ssize_t n = readlink("/proc/self/cwd", buf, sizeof(buf) - 1);
  if (n > 0) buf[n] = 0;
  CF_CHECK(n > 0 && strncmp(buf, "/proc/", 6) == 0 && strstr(buf, " (deleted)"), "the cwd is %s",
           n > 0 ? buf : "unreadable");
}

/* The cwd becomes /proc/PID of a child that then dies. */
static void enter_dead_proc_dir(void) {
  pid_t c = fork();
  if (c < 0) cf_die("fork");
  if (c == 0) {
    for (;;) pause();
  }
  char p[64];
  snprintf(p, sizeof(p), "/proc/%d", (int)c);
  if (chdir(p) != 0) cf_die("chdir %s", p);
  kill(c, SIGKILL);
  if (waitpid(c, NULL, 0) != c) cf_die("waitpid");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "files_chroot W");
  char root[4200], inside[4300];
  snprintf(root, sizeof(root), "%s/root", cf_prog.workdir);
  snprintf(inside, sizeof(inside), "%s/inside", root);
  if (mkdir(root, 0755) != 0) cf_die("mkdir root");
  int f = open(inside, O_WRONLY | O_CREAT, 0644);
  if (f < 0) cf_die("create inside");
  close(f);
  ns_net = open("/proc/self/ns/net", O_RDONLY);
  ns_uts = open("/proc/self/ns/uts", O_RDONLY);
  if (ns_net < 0 || ns_uts < 0) cf_die("open the namespace files");

  pid_t child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    if (chdir(cf_prog.workdir) != 0 || stat(".", &cwd_st) != 0) cf_die("chdir W");
    if (stat(root, &root_st) != 0 || chroot(root) != 0) cf_die("chroot");
    inside_fd = open("/inside", O_RDONLY);
    if (inside_fd < 0 || fstat(inside_fd, &inside_st) != 0) cf_die("open /inside");
    cf_prog.workdir = "/"; /* W/root, as the parent sees it */
    cf_child_ready("ready.child");
    cf_child_loop(check_child, "result.child");
  }
  char buf[64];
  if (cf_wait_file("root/ready.child", buf, sizeof(buf)) != 0) cf_die("the child did not start");
  enter_dead_proc_dir();
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_ask_child(child, "root/result.child");
      cf_report();
    }
    cf_nap(20);
  }
}
