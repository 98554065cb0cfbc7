/* ghosts W: deleted-but-open regular files that a restore must recreate.
 *
 *   sparse   4 KiB of data at 4 KiB and at 12 KiB, size 20 KiB (holes at the
 *            head, middle and tail), mode 0751, owner uid+1/gid+1 (as root),
 *            mtime set to a fixed value, then unlinked (atime is not
 *            checked: the checks' own reads move it)
 *   big      2 GiB + 4 KiB, one page of data at the end (the driver dumps
 *            with a --ghost-limit far below its size)
 *   taken    unlinked, then a new file created under the same name
 *   gone     W/gone/f, unlinked, then W/gone removed
 *   tmpfile  an O_TMPFILE file of W (never had a name)
 * On SIGUSR1 it checks each one: still unlinked, its size, data, holes
 * (SEEK_DATA/SEEK_HOLE, when the file system tells them), mode, owner,
 * mtime and offset; that W/taken is the new file, untouched, and that
 * W/gone does not exist.
 */
#include "prog_common.h" /* first: it defines _GNU_SOURCE */

#include <sys/stat.h>

#define BLK 4096
#define SPARSE_SIZE (5 * BLK)
#define BIG_SIZE ((off_t)2 << 30)
#define ATIME 1000000000
#define MTIME 1200000000

enum { G_SPARSE, G_BIG, G_TAKEN, G_GONE, G_TMP, G_N };
static int fds[G_N];
static off_t offs[G_N] = {777, 100, 3, 5, 9};
static int holes_seen; /* the file system reports holes */
static struct stat sparse_st;

static unsigned char byte_of(int which, off_t off) { return (unsigned char)(which * 31 + off * 7 + off / 4096); }

static void fill(int which, off_t off, size_t len) {
  unsigned char buf[BLK];
  for (size_t i = 0; i < len; i++) buf[i] = byte_of(which, off + (off_t)i);
  if (pwrite(fds[which], buf, len, off) != (ssize_t)len) cf_die("pwrite %d", which);
}

static int same(int which, off_t off, size_t len) {
  unsigned char buf[BLK];
  if (pread(fds[which], buf, len, off) != (ssize_t)len) return 0;
  for (size_t i = 0; i < len; i++) {
    if (buf[i] != byte_of(which, off + (off_t)i)) return 0;
  }
  return 1;
}

static int zero(int which, off_t off, size_t len) {
  unsigned char buf[BLK];
  if (pread(fds[which], buf, len, off) != (ssize_t)len) return 0;
  for (size_t i = 0; i < len; i++) {
    if (buf[i]) return 0;
  }
  return 1;
}

static int reopen(int which) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[which]);
  return open(path, O_RDONLY);
}

static int open_unlinked(const char *name) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/%s", cf_prog.workdir, name);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) cf_die("open %s", path);
  if (unlink(path) != 0) cf_die("unlink %s", path);
  return fd;
}

static void setup(void) {
  char path[4200];
  fds[G_SPARSE] = open_unlinked("sparse");
  fill(G_SPARSE, BLK, BLK);
  fill(G_SPARSE, 3 * BLK, BLK);
  if (ftruncate(fds[G_SPARSE], SPARSE_SIZE) != 0) cf_die("ftruncate sparse");
  holes_seen = lseek(fds[G_SPARSE], 0, SEEK_DATA) == BLK && lseek(fds[G_SPARSE], BLK, SEEK_HOLE) == 2 * BLK;
  if (fchmod(fds[G_SPARSE], 0751) != 0) cf_die("fchmod");
  if (getuid() == 0 && fchown(fds[G_SPARSE], 4321, 4322) != 0) cf_die("fchown");
  struct timespec t[2] = {{ATIME, 5}, {MTIME, 7}};
  if (futimens(fds[G_SPARSE], t) != 0) cf_die("futimens");
  if (fstat(fds[G_SPARSE], &sparse_st) != 0) cf_die("fstat");

  fds[G_BIG] = open_unlinked("big");
  fill(G_BIG, BIG_SIZE, BLK);

  fds[G_TAKEN] = open_unlinked("taken");
  fill(G_TAKEN, 0, 100);
  snprintf(path, sizeof(path), "%s/taken", cf_prog.workdir);
  int fresh = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fresh < 0 || write(fresh, "fresh", 5) != 5) cf_die("create the new taken");
  close(fresh);

  snprintf(path, sizeof(path), "%s/gone", cf_prog.workdir);
  if (mkdir(path, 0755) != 0) cf_die("mkdir gone");
  fds[G_GONE] = open_unlinked("gone/f");
  fill(G_GONE, 0, 200);
  if (rmdir(path) != 0) cf_die("rmdir gone");

  fds[G_TMP] = open(cf_prog.workdir, O_RDWR | O_TMPFILE, 0600);
  if (fds[G_TMP] < 0) cf_die("O_TMPFILE");
  fill(G_TMP, 0, 300);

  for (int i = 0; i < G_N; i++) {
    if (lseek(fds[i], offs[i], SEEK_SET) != offs[i]) cf_die("lseek %d", i);
  }
}

static void check(void) {
  static const off_t sizes[G_N] = {SPARSE_SIZE, BIG_SIZE + BLK, 100, 200, 300};
  struct stat st;
  for (int i = 0; i < G_N; i++) {
    if (fstat(fds[i], &st) != 0) {
      cf_failf("fstat ghost %d: %s", i, strerror(errno));
      return;
    }
    CF_CHECK(st.st_nlink == 0, "ghost %d has %lu links", i, (unsigned long)st.st_nlink);
    CF_CHECK(st.st_size == sizes[i], "ghost %d: size %lld, want %lld", i, (long long)st.st_size, (long long)sizes[i]);
    CF_CHECK(lseek(fds[i], 0, SEEK_CUR) == offs[i], "ghost %d: offset moved", i);
  }
  CF_CHECK(zero(G_SPARSE, 0, BLK) && same(G_SPARSE, BLK, BLK) && zero(G_SPARSE, 2 * BLK, BLK) &&
               same(G_SPARSE, 3 * BLK, BLK) && zero(G_SPARSE, 4 * BLK, BLK),
           "sparse: data or holes differ");
  if (holes_seen) {
    /* Seeking moves the offset: seek on descriptions of our own. */
    int sp = reopen(G_SPARSE), big = reopen(G_BIG);
    CF_CHECK(lseek(sp, 0, SEEK_DATA) == BLK, "sparse: the head hole is gone");
    CF_CHECK(lseek(sp, BLK, SEEK_HOLE) == 2 * BLK, "sparse: the middle hole is gone");
    CF_CHECK(lseek(sp, 3 * BLK, SEEK_HOLE) == 4 * BLK, "sparse: the tail hole is gone");
    CF_CHECK(lseek(big, 0, SEEK_DATA) == BIG_SIZE, "big: the hole is gone");
    close(sp);
    close(big);
  }
  if (fstat(fds[G_SPARSE], &st) == 0) {
    CF_CHECK((st.st_mode & 07777) == 0751, "sparse: mode %o", st.st_mode & 07777);
    CF_CHECK(st.st_uid == sparse_st.st_uid && st.st_gid == sparse_st.st_gid, "sparse: owner %u:%u, want %u:%u",
             st.st_uid, st.st_gid, sparse_st.st_uid, sparse_st.st_gid);
    CF_CHECK(st.st_mtim.tv_sec == MTIME && st.st_mtim.tv_nsec == 7, "sparse: mtime %ld", (long)st.st_mtim.tv_sec);
  }
  CF_CHECK(same(G_BIG, BIG_SIZE, BLK) && zero(G_BIG, 0, BLK), "big: data differs");
  CF_CHECK(same(G_TAKEN, 0, 100), "taken: data differs");
  CF_CHECK(same(G_GONE, 0, 200), "gone: data differs");
  CF_CHECK(same(G_TMP, 0, 300), "tmpfile: data differs");

  char path[4200], buf[16] = {0};
  snprintf(path, sizeof(path), "%s/taken", cf_prog.workdir);
  int fd = open(path, O_RDONLY);
  CF_CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 5 && memcmp(buf, "fresh", 5) == 0, "W/taken is not the new file");
  if (fd >= 0) close(fd);
  snprintf(path, sizeof(path), "%s/gone", cf_prog.workdir);
  CF_CHECK(access(path, F_OK) != 0, "W/gone exists again");
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "ghosts W");
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
