/* files_mmap W: a deleted file mapped into memory, as a restore must map it
 * again: the mappings and the descriptor must reach one file.
 *
 *   W/f      3 pages ('a', 'b', 'c' pages), then:
 *            page 0 mapped private read-only, page 1 private read-write
 *            (not written), pages 0-2 shared read-write; an fd kept; unlinked
 *   W/g      1 page, mapped private through a second name W/g2 (a hard
 *            link), both names unlinked, no fd kept
 * On SIGUSR1 it checks the contents through every mapping, then that a
 * write through the fd shows in the untouched private page and in the shared
 * mapping, and that a write through the shared mapping shows through the fd
 * (the file is one file again), and puts the bytes back.
 */
#include "prog_common.h" /* first: it defines _GNU_SOURCE */

#include <sys/mman.h>
#include <sys/stat.h>

static int fd;
static char *priv_ro, *priv_rw, *shared, *other;

static void page_fill(int f, int page, char c) {
  char buf[CF_PAGE];
  memset(buf, c, sizeof(buf));
  if (pwrite(f, buf, sizeof(buf), (off_t)page * (off_t)CF_PAGE) != (ssize_t)sizeof(buf)) cf_die("pwrite");
}

static void setup(void) {
  char p[4200], q[4200];
  snprintf(p, sizeof(p), "%s/f", cf_prog.workdir);
  fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) cf_die("create f");
  page_fill(fd, 0, 'a');
  page_fill(fd, 1, 'b');
  page_fill(fd, 2, 'c');
  priv_ro = mmap(NULL, CF_PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
  priv_rw = mmap(NULL, CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, CF_PAGE);
  shared = mmap(NULL, 3 * CF_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (priv_ro == MAP_FAILED || priv_rw == MAP_FAILED || shared == MAP_FAILED) cf_die("mmap f");
  if (unlink(p) != 0) cf_die("unlink f");

  snprintf(p, sizeof(p), "%s/g", cf_prog.workdir);
  snprintf(q, sizeof(q), "%s/g2", cf_prog.workdir);
  int g = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (g < 0) cf_die("create g");
  page_fill(g, 0, 'g');
  if (link(p, q) != 0 || unlink(p) != 0) cf_die("link g");
  close(g);
  g = open(q, O_RDONLY);
  if (g < 0) cf_die("open g2");
  other = mmap(NULL, CF_PAGE, PROT_READ, MAP_PRIVATE, g, 0);
  if (other == MAP_FAILED || unlink(q) != 0) cf_die("mmap g2");
  close(g);
}

static int all(const char *p, char c) {
  for (size_t i = 0; i < CF_PAGE; i++) {
    if (p[i] != c) return 0;
  }
  return 1;
}

static void check(void) {
  struct stat st;
  CF_CHECK(fstat(fd, &st) == 0 && st.st_nlink == 0 && st.st_size == 3 * (off_t)CF_PAGE, "f: not the deleted file");
  CF_CHECK(all(priv_ro, 'a'), "private page 0 lost its contents");
  CF_CHECK(all(priv_rw, 'b'), "private page 1 lost its contents");
  CF_CHECK(all(shared, 'a') && all(shared + CF_PAGE, 'b') && all(shared + 2 * CF_PAGE, 'c'),
           "the shared mapping lost its contents");
  CF_CHECK(all(other, 'g'), "the mapping of g lost its contents");
  /* One file behind the fd and the mappings. */
  page_fill(fd, 1, 'B');
  CF_CHECK(priv_rw[0] == 'B' && shared[CF_PAGE] == 'B', "a write through the fd does not reach the mappings");
  shared[2 * CF_PAGE] = 'C';
  char c = 0;
  CF_CHECK(pread(fd, &c, 1, 2 * (off_t)CF_PAGE) == 1 && c == 'C', "a write through the shared mapping does not reach the fd");
  page_fill(fd, 1, 'b');
  shared[2 * CF_PAGE] = 'c';
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "files_mmap W");
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
