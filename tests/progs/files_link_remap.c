/* files_link_remap W: a file opened by a name that was since removed, while
 * another hard link of it remains (what CRIU's --link-remap is for).
 *
 *   W/f      created, 1000 bytes written, hard-linked as W/other, then
 *            W/f unlinked; the fd kept at offset 1000 (O_RDWR)
 * On SIGUSR1 it checks that the fd is still the file W/other names (same
 * device and inode, 1000 bytes), at its offset, and that a write through
 * the fd shows through W/other (then truncates it back).
 */
#include "prog_common.h" /* first: it defines _GNU_SOURCE */

#include <sys/stat.h>

static int fd;
static char other[4200];

static void check(void) {
  struct stat a, b;
  CF_CHECK(fstat(fd, &a) == 0 && stat(other, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
           "the fd is not the file W/other names");
  CF_CHECK(a.st_size == 1000 && a.st_nlink == 1, "size %ld, nlink %lu", (long)a.st_size, (unsigned long)a.st_nlink);
  CF_CHECK(lseek(fd, 0, SEEK_CUR) == 1000, "offset %ld", (long)lseek(fd, 0, SEEK_CUR));
  CF_CHECK(pwrite(fd, "z", 1, 1000) == 1 && stat(other, &b) == 0 && b.st_size == 1001,
           "a write through the fd does not show through W/other");
  if (ftruncate(fd, 1000) != 0) cf_failf("truncate: %s", strerror(errno));
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "files_link_remap W");
  char f[4200];
  snprintf(f, sizeof(f), "%s/f", cf_prog.workdir);
  snprintf(other, sizeof(other), "%s/other", cf_prog.workdir);
  fd = open(f, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) cf_die("create f");
  char buf[1000];
  memset(buf, '0', sizeof(buf));
  if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) cf_die("write f");
  if (link(f, other) != 0 || unlink(f) != 0) cf_die("link f as other, unlink f");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
