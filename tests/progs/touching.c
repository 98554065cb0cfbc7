/* touching W: private anonymous VMAs that touch, which the kernel keeps
 * apart, must come back as the same VMAs: restore premaps such memory at its
 * own address where it can (restore/memory.cc, InPlace), and two touching
 * VMAs mapped there at once would merge.
 *
 * Set up before W/ready, inside one reserved range of 16 pages:
 *   A  pages 0-1   read-write, written
 *   B  pages 2-3   read-write, written, made elsewhere and moved next to A
 *                  (its own anon_vma and page offset: not merged with A)
 *   C  page 4      read-only, written before its mprotect
 *   D  page 5      read-write, never touched
 *   E  pages 6-7   read-write, written, moved next to D
 *   -  page 8      the reservation (PROT_NONE)
 *   F  pages 9-10  read-write, written
 *   G  page 11     read-write, written, moved next to F
 *   -  pages 12-15 the reservation (PROT_NONE)
 * The lines of /proc/self/maps inside the range are saved.
 * On SIGUSR1 the check: every written page holds its pattern, D is still
 * not in memory, and the maps lines of the range are the saved ones.
 */
#include "prog_common.h"

#include <sys/mman.h>

#define PAGES 16

static unsigned char *base;
static char want[4096];

static void fill(unsigned char *p, size_t pages, unsigned seed) {
  for (size_t i = 0; i < pages * CF_PAGE; i++) p[i] = (unsigned char)(i * 7 + seed);
}

static int filled(const unsigned char *p, size_t pages, unsigned seed) {
  for (size_t i = 0; i < pages * CF_PAGE; i++) {
    if (p[i] != (unsigned char)(i * 7 + seed)) return 0;
  }
  return 1;
}

/* Maps |pages| read-write pages elsewhere, writes them and moves them to
 * page |at| of the range. */
static void move_in(size_t at, size_t pages, unsigned seed) {
  unsigned char *p = mmap(NULL, pages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) cf_die("map");
  fill(p, pages, seed);
  if (mremap(p, pages * CF_PAGE, pages * CF_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, base + at * CF_PAGE) == MAP_FAILED) {
    cf_die("mremap");
  }
}

static void map_at(size_t at, size_t pages) {
  if (mmap(base + at * CF_PAGE, pages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
           0) == MAP_FAILED) {
    cf_die("map at page %zu", at);
  }
}

/* The maps lines (address range and perms) inside the range, into |out|. */
static void range_maps(char *out, size_t len) {
  static char buf[1 << 20];
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) cf_die("open maps");
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  size_t used = 0;
  out[0] = 0;
  const unsigned long lo = (unsigned long)base, hi = lo + PAGES * CF_PAGE;
  for (char *line = buf; *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    unsigned long s, e;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && s < hi && e > lo) {
      int w = snprintf(out + used, len - used, "%lx-%lx %s\n", s - lo, e - lo, perms);
      if (w < 0 || (size_t)w >= len - used) cf_die("maps lines too long");
      used += (size_t)w;
    }
    if (!nl) break;
    line = nl + 1;
  }
}

static void check(void) {
  CF_CHECK(filled(base, 2, 1), "A lost its data");
  CF_CHECK(filled(base + 2 * CF_PAGE, 2, 2), "B lost its data");
  CF_CHECK(filled(base + 4 * CF_PAGE, 1, 3), "C lost its data");
  CF_CHECK(filled(base + 6 * CF_PAGE, 2, 4), "E lost its data");
  CF_CHECK(filled(base + 9 * CF_PAGE, 2, 5), "F lost its data");
  CF_CHECK(filled(base + 11 * CF_PAGE, 1, 6), "G lost its data");
  unsigned char vec = 0;
  CF_CHECK(mincore(base + 5 * CF_PAGE, CF_PAGE, &vec) == 0 && !(vec & 1), "D is in memory");
  static char got[4096];
  range_maps(got, sizeof(got));
  CF_CHECK(strcmp(got, want) == 0, "the VMAs of the range changed: want\n%sgot\n%s", want, got);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "touching W");
  base = mmap(NULL, PAGES * CF_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) cf_die("reserve");
  map_at(0, 2);
  fill(base, 2, 1);
  move_in(2, 2, 2);
  map_at(4, 1);
  fill(base + 4 * CF_PAGE, 1, 3);
  if (mprotect(base + 4 * CF_PAGE, CF_PAGE, PROT_READ) != 0) cf_die("mprotect C");
  map_at(5, 1);
  move_in(6, 2, 4);
  map_at(9, 2);
  fill(base + 9 * CF_PAGE, 2, 5);
  move_in(11, 1, 6);
  range_maps(want, sizeof(want));
  /* The layout this test is about: A and B, E and D, F and G apart. */
  int lines = 0;
  for (const char *p = want; *p; p++) lines += *p == '\n';
  if (lines != 9) cf_die("%d VMAs in the range after setup, want 9:\n%s", lines, want);
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
