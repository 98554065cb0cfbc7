/* shmem W: memory shared by a parent and its child through shared anonymous
 * memory and memfds, and memfd descriptors.
 *
 * Parent, before forking:
 *   A   128 MiB MAP_SHARED|MAP_ANONYMOUS; pages 0..1023 random (seed 1)
 *   M   8 MiB memfd "cf-shared" mapped shared; pages 0..255 text; its fd is
 *       kept at offset 12345 with seals SHRINK|GROW
 *   P   1 MiB memfd "cf-private" filled by write() (seed 3), mapped private;
 *       page 5 then rewritten in the mapping (seed 4: a private copy)
 * Child, after the fork: writes A pages 16200..16711 (seed 2, across the
 * 64 MiB mark) and M pages
 * 1024..1535 (seed 5), which the parent never touches before a dump (so they
 * are in no page table of the parent), and maps B, 1 MiB of its own shared
 * anonymous memory (seed 6).
 *
 * The child keeps the parent's memfd descriptor (one open file description,
 * one offset).
 *
 * On SIGUSR1 the parent checks everything, writes a new generation number g
 * into A page 5000 and M page 1800, moves the memfd's offset to 20000 + g,
 * and signals the child (which wants that offset: still one description); the child checks
 * what it sees (g included: the same memory), writes g into A page 5001 and
 * M page 1801, and answers in W/result.child; the parent then wants g there:
 * memory shared again after a restore, in both directions.
 */
#include "prog_common.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define A_PAGES 32768UL
#define M_PAGES 2048UL
#define P_PAGES 256UL
#define B_PAGES 256UL

static unsigned char *A, *M, *P, *B;
static int mfd, pfd;
static pid_t child;
static uint64_t gen;

static void CheckRandom(const unsigned char *p, size_t first, size_t n, uint64_t seed, const char *what) {
  static unsigned char want[CF_PAGE];
  for (size_t pg = first; pg < first + n; pg++) {
    cf_random_page(want, pg, seed);
    if (memcmp(p + pg * CF_PAGE, want, CF_PAGE) != 0) {
      cf_failf("%s: page %zu differs", what, pg);
      return;
    }
  }
}

static void CheckText(const unsigned char *p, size_t first, size_t n, const char *what) {
  static unsigned char want[CF_PAGE];
  for (size_t pg = first; pg < first + n; pg++) {
    cf_text_page(want, pg);
    if (memcmp(p + pg * CF_PAGE, want, CF_PAGE) != 0) {
      cf_failf("%s: page %zu differs", what, pg);
      return;
    }
  }
}

static void CheckZero(const unsigned char *p, size_t first, size_t n, const char *what) {
  for (size_t pg = first; pg < first + n; pg++) {
    const uint64_t *w = (const uint64_t *)(p + pg * CF_PAGE);
    for (size_t i = 0; i < CF_PAGE / 8; i++) {
      if (w[i] != 0) {
        cf_failf("%s: page %zu is not zero", what, pg);
        return;
      }
    }
  }
}

static uint64_t *Word(unsigned char *p, size_t pg) { return (uint64_t *)(p + pg * CF_PAGE); }

static void CheckCommon(void) {
  CheckRandom(A, 0, 1024, 1, "A (parent's pages)");
  CheckRandom(A, 16200, 512, 2, "A (child's pages)");
  CheckZero(A, 1024, 3000, "A");
  CheckZero(A, 17000, 15000, "A");
  CheckText(M, 0, 256, "M (parent's pages)");
  CheckRandom(M, 1024, 512, 5, "M (child's pages)");
  CheckZero(M, 256, 700, "M");
}

static void ChildCheck(void) {
  CheckCommon();
  CheckRandom(B, 0, B_PAGES, 6, "B");
  const uint64_t g = *Word(A, 5000);
  CF_CHECK(g != 0 && *Word(M, 1800) == g, "the child sees generation %llu in A and %llu in M",
           (unsigned long long)g, (unsigned long long)*Word(M, 1800));
  *Word(A, 5001) = g;
  *Word(M, 1801) = g;
  /* mfd is the parent's open file description (inherited): one offset. */
  const off_t pos = lseek(mfd, 0, SEEK_CUR);
  CF_CHECK(pos == (off_t)(20000 + g), "child: memfd offset %lld, the parent set %llu (not one description?)",
           (long long)pos, (unsigned long long)(20000 + g));
}

static void ParentCheck(void) {
  CheckCommon();
  CheckRandom(P, 0, 5, 3, "P");
  CheckRandom(P, 5, 1, 4, "P (private copy)");
  CheckRandom(P, 6, P_PAGES - 6, 3, "P");
  static unsigned char page[CF_PAGE], want[CF_PAGE];
  CF_CHECK(pread(pfd, page, CF_PAGE, 5 * CF_PAGE) == (ssize_t)CF_PAGE, "pread cf-private: %s", strerror(errno));
  cf_random_page(want, 5, 3);
  CF_CHECK(memcmp(page, want, CF_PAGE) == 0, "cf-private page 5 in the file has the private copy's bytes");
  CF_CHECK(lseek(mfd, 0, SEEK_CUR) == 12345, "memfd offset %lld, want 12345", (long long)lseek(mfd, 0, SEEK_CUR));
  CF_CHECK(fcntl(mfd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "memfd seals %#x", fcntl(mfd, F_GET_SEALS));
  char link[256] = "";
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
  ssize_t n = readlink(path, link, sizeof(link) - 1);
  if (n > 0) link[n] = 0;
  CF_CHECK(strncmp(link, "/memfd:cf-shared", 16) == 0, "memfd fd links to %s", link);
  CF_CHECK(ftruncate(mfd, 4 * CF_PAGE) != 0 && errno == EPERM, "a sealed memfd could shrink");

  gen++;
  *Word(A, 5000) = gen;
  *Word(M, 1800) = gen;
  lseek(mfd, (off_t)(20000 + gen), SEEK_SET);
  cf_ask_child(child, "result.child");
  lseek(mfd, 12345, SEEK_SET);
  CF_CHECK(*Word(A, 5001) == gen && *Word(M, 1801) == gen,
           "the parent sees %llu in A and %llu in M after the child wrote %llu", (unsigned long long)*Word(A, 5001),
           (unsigned long long)*Word(M, 1801), (unsigned long long)gen);
}

static unsigned char *Map(size_t pages, int prot, int flags, int fd) {
  void *p = mmap(NULL, pages * CF_PAGE, prot, flags, fd, 0);
  if (p == MAP_FAILED) cf_die("mmap");
  return p;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "shmem W");
  A = Map(A_PAGES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
  cf_fill_random(A, 1024, 1);

  mfd = (int)syscall(SYS_memfd_create, "cf-shared", MFD_ALLOW_SEALING);
  if (mfd < 0) cf_die("memfd_create");
  if (ftruncate(mfd, (off_t)(M_PAGES * CF_PAGE)) != 0) cf_die("ftruncate");
  M = Map(M_PAGES, PROT_READ | PROT_WRITE, MAP_SHARED, mfd);
  cf_fill_text(M, 256);
  if (lseek(mfd, 12345, SEEK_SET) != 12345) cf_die("lseek");
  if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) cf_die("F_ADD_SEALS");

  pfd = (int)syscall(SYS_memfd_create, "cf-private", 0);
  if (pfd < 0) cf_die("memfd_create");
  static unsigned char page[CF_PAGE];
  for (size_t pg = 0; pg < P_PAGES; pg++) {
    cf_random_page(page, pg, 3);
    if (write(pfd, page, CF_PAGE) != (ssize_t)CF_PAGE) cf_die("write");
  }
  P = Map(P_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE, pfd);
  cf_random_page(P + 5 * CF_PAGE, 5, 4);

  child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    close(pfd);
    for (size_t pg = 0; pg < 512; pg++) cf_random_page(A + (16200 + pg) * CF_PAGE, 16200 + pg, 2);
    for (size_t pg = 0; pg < 512; pg++) cf_random_page(M + (1024 + pg) * CF_PAGE, 1024 + pg, 5);
    B = Map(B_PAGES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1);
    cf_fill_random(B, B_PAGES, 6);
    cf_child_ready("ready.child");
    cf_child_loop(ChildCheck, "result.child");
  }
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
