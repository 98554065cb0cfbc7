/* files_nodes W: files without data of their own whose names were removed,
 * and O_PATH descriptors, that a restore must open again.
 *
 *   fifo     W/fifo, a FIFO with 300 bytes queued, read end held, unlinked
 *   dev      W/null, a character device node 1:3 (mode 0640), unlinked
 *   dir      W/a/b opened, then W/a/b and W/a removed
 *   cwd      W/cwd made the working directory, opened as well, then removed
 *   opath    W/file opened with O_PATH
 *   link     W/link -> "W/file", opened with O_PATH | O_NOFOLLOW
 *   glink    W/glink -> "some/target", opened so, then unlinked
 * On SIGUSR1 it checks each one: the type, the removed names (nlink 0, no
 * name in W), the FIFO's bytes, the device number and mode, that the cwd
 * and its fd are one directory still named W/cwd (deleted), that the O_PATH
 * descriptors kept O_PATH, and the symlinks' targets. Reading the FIFO
 * consumes its bytes: the check writes them back.
 */
#include "prog_common.h" /* first: it defines _GNU_SOURCE */

#include <sys/stat.h>
#include <sys/sysmacros.h>

#define FIFO_BYTES 300

static int fifo_rd, fifo_wr, dev_fd, dir_fd, cwd_fd, opath_fd, link_fd, glink_fd;
static char file_path[4200], cwd_link[4200];

static unsigned char fifo_byte(int i) { return (unsigned char)(i * 13 + 5); }

static void fill_fifo(void) {
  unsigned char buf[FIFO_BYTES];
  for (int i = 0; i < FIFO_BYTES; i++) buf[i] = fifo_byte(i);
  if (write(fifo_wr, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) cf_die("write the FIFO");
}

static void setup(void) {
  char p[4200], q[4200];
  const char *w = cf_prog.workdir;

  snprintf(p, sizeof(p), "%s/fifo", w);
  if (mkfifo(p, 0620) != 0 || chmod(p, 0620) != 0) cf_die("mkfifo");
  fifo_rd = open(p, O_RDONLY | O_NONBLOCK);
  fifo_wr = open(p, O_WRONLY | O_NONBLOCK);
  if (fifo_rd < 0 || fifo_wr < 0) cf_die("open the FIFO");
  fill_fifo();
  close(fifo_wr); /* the bytes stay: the read end holds the pipe */
  fifo_wr = -1;
  if (unlink(p) != 0) cf_die("unlink the FIFO");

  snprintf(p, sizeof(p), "%s/null", w);
  if (mknod(p, S_IFCHR | 0640, makedev(1, 3)) != 0) cf_die("mknod");
  if (chmod(p, 0640) != 0) cf_die("chmod the device");
  dev_fd = open(p, O_RDWR);
  if (dev_fd < 0 || unlink(p) != 0) cf_die("open and unlink the device");

  snprintf(p, sizeof(p), "%s/a", w);
  snprintf(q, sizeof(q), "%s/a/b", w);
  if (mkdir(p, 0755) != 0 || mkdir(q, 0750) != 0) cf_die("mkdir a/b");
  dir_fd = open(q, O_RDONLY | O_DIRECTORY);
  if (dir_fd < 0 || rmdir(q) != 0 || rmdir(p) != 0) cf_die("open and remove a/b");

  snprintf(p, sizeof(p), "%s/cwd", w);
  if (mkdir(p, 0700) != 0 || chdir(p) != 0) cf_die("mkdir and enter cwd");
  cwd_fd = open(".", O_RDONLY | O_DIRECTORY);
  if (cwd_fd < 0 || rmdir(p) != 0) cf_die("open and remove cwd");
  ssize_t n = readlink("/proc/self/cwd", cwd_link, sizeof(cwd_link) - 1);
  if (n <= 0) cf_die("readlink cwd");
  cwd_link[n] = 0;

  snprintf(file_path, sizeof(file_path), "%s/file", w);
  int f = open(file_path, O_WRONLY | O_CREAT, 0644);
  if (f < 0) cf_die("create file");
  close(f);
  opath_fd = open(file_path, O_PATH);
  if (opath_fd < 0) cf_die("open file O_PATH");

  snprintf(p, sizeof(p), "%s/link", w);
  if (symlink(file_path, p) != 0) cf_die("symlink");
  link_fd = open(p, O_PATH | O_NOFOLLOW);
  snprintf(p, sizeof(p), "%s/glink", w);
  if (symlink("some/target", p) != 0) cf_die("symlink glink");
  glink_fd = open(p, O_PATH | O_NOFOLLOW);
  if (link_fd < 0 || glink_fd < 0 || unlink(p) != 0) cf_die("open the symlinks");
}

static void check_fifo(void) {
  struct stat st;
  unsigned char buf[FIFO_BYTES + 1];
  CF_CHECK(fstat(fifo_rd, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_nlink == 0, "fifo: not a removed FIFO");
  CF_CHECK((st.st_mode & 07777) == 0620, "fifo: mode %o", st.st_mode & 07777);
  ssize_t n = read(fifo_rd, buf, sizeof(buf));
  CF_CHECK(n == FIFO_BYTES, "fifo: read %zd bytes, want %d", n, FIFO_BYTES);
  for (int i = 0; i < n && i < FIFO_BYTES; i++) {
    if (buf[i] != fifo_byte(i)) {
      cf_failf("fifo: byte %d differs", i);
      break;
    }
  }
  /* Put the bytes back, for the next check. */
  char p[64];
  snprintf(p, sizeof(p), "/proc/self/fd/%d", fifo_rd);
  fifo_wr = open(p, O_WRONLY | O_NONBLOCK);
  CF_CHECK(fifo_wr >= 0, "fifo: open a write end: %s", strerror(errno));
  if (fifo_wr >= 0) {
    fill_fifo();
    close(fifo_wr);
  }
}

static void check(void) {
  struct stat st, st2;
  char buf[4200];
  check_fifo();

  CF_CHECK(fstat(dev_fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) && st.st_nlink == 0,
           "dev: not the removed device 1:3");
  CF_CHECK((st.st_mode & 07777) == 0640, "dev: mode %o", st.st_mode & 07777);
  CF_CHECK(write(dev_fd, "x", 1) == 1, "dev: write: %s", strerror(errno));

  CF_CHECK(fstat(dir_fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0, "dir: not a removed directory");
  CF_CHECK((st.st_mode & 07777) == 0750, "dir: mode %o", st.st_mode & 07777);
  snprintf(buf, sizeof(buf), "%s/a", cf_prog.workdir);
  CF_CHECK(access(buf, F_OK) != 0, "dir: %s exists again", buf);

  CF_CHECK(stat(".", &st) == 0 && st.st_nlink == 0, "cwd: not a removed directory");
  CF_CHECK(fstat(cwd_fd, &st2) == 0 && st.st_ino == st2.st_ino && st.st_dev == st2.st_dev,
           "cwd: its fd is another directory");
  ssize_t n = readlink("/proc/self/cwd", buf, sizeof(buf) - 1);
  if (n > 0) buf[n] = 0;
  CF_CHECK(n > 0 && strcmp(buf, cwd_link) == 0, "cwd: now %s, was %s", n > 0 ? buf : "?", cwd_link);

  int fl = fcntl(opath_fd, F_GETFL);
  CF_CHECK(fl >= 0 && (fl & O_PATH), "opath: lost O_PATH (flags %#x)", fl);
  CF_CHECK(fstat(opath_fd, &st) == 0 && S_ISREG(st.st_mode) && stat(file_path, &st2) == 0 && st.st_ino == st2.st_ino,
           "opath: another file");

  CF_CHECK(fstat(link_fd, &st) == 0 && S_ISLNK(st.st_mode) && st.st_nlink == 1, "link: not the symlink");
  n = readlinkat(link_fd, "", buf, sizeof(buf) - 1);
  if (n > 0) buf[n] = 0;
  CF_CHECK(n > 0 && strcmp(buf, file_path) == 0, "link: points to %s", n > 0 ? buf : "?");
  CF_CHECK(fstat(glink_fd, &st) == 0 && S_ISLNK(st.st_mode) && st.st_nlink == 0, "glink: not a removed symlink");
  n = readlinkat(glink_fd, "", buf, sizeof(buf) - 1);
  if (n > 0) buf[n] = 0;
  CF_CHECK(n > 0 && strcmp(buf, "some/target") == 0, "glink: points to %s", n > 0 ? buf : "?");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "files_nodes W");
  umask(022);
  setup();
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
