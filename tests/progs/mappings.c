/* mappings W: memory mappings of every kind a restore must rebuild, and libc
 * used after a restore (the program is dynamically linked).
 *
 * Files live in W/maps:
 *   private.dat  20 pages of a known pattern; pages 4..15 are mapped
 *                MAP_PRIVATE|PROT_READ|PROT_WRITE at file offset 4 pages.
 *                Mapping pages 1 and 7 are overwritten, page 2 only in its
 *                first 100 bytes (copy-on-write pages: the file keeps its
 *                data); pages 0, 3 and 4 are read, the others never touched.
 *   shared.dat   8 pages of a known pattern, all mapped MAP_SHARED|PROT_READ|
 *                PROT_WRITE. Pages 0..3 are overwritten through the mapping
 *                and msync'ed before the program says ready.
 * Anonymous regions:
 *   none   4 pages written, then mprotect(PROT_NONE)
 *   ro     3 pages written, then mprotect(PROT_READ)
 *   split  9 pages written, then pages 3..5 mprotect(PROT_READ) and pages
 *          6..8 mprotect(PROT_READ|PROT_EXEC): three VMAs rw-p, r--p, r-xp
 *   sparse 6 pages, only page 3 written; untouched: 3 pages never touched
 *          (neither may have a page in memory after restore that it did not
 *          have before: mincore)
 * W/layout lists the regions ("<start hex> <end hex> <name>").
 *
 * On SIGUSR1 it checks, from inside:
 *   - /proc/self/maps: each region's VMAs with their start, end, perms,
 *     offset and path;
 *   - private mapping: written bytes hold the written data, all others the
 *     file's data; private.dat itself is unchanged (read with pread);
 *   - shared mapping: the pages written before the dump are in the mapping
 *     and in the file, and so are the pages an earlier check wrote. Then
 *     each check writes pages 4..5 anew through the mapping and msyncs (the
 *     file must see it), and page 6 of the file with pwrite (the mapping must
 *     see it): the mapping really is shared with the file;
 *   - none: still ---p; mprotect to RW finds the data; back to PROT_NONE;
 *   - ro and split: the data, the perms;
 *   - libc: snprintf (with %f), strtod, strlen, qsort, malloc/free of small
 *     and large (mmap'ed) blocks, getpid against the raw syscall,
 *     clock_gettime (vDSO) against the raw syscall.
 */
#include "prog_common.h"  /* first: it defines _GNU_SOURCE */

#include <sys/mman.h>
#include <sys/syscall.h>

#define PRIV_FILE_PAGES 20
#define PRIV_OFF_PAGES 4
#define PRIV_MAP_PAGES 12
#define SHARED_PAGES 8
#define NONE_PAGES 4
#define RO_PAGES 3
#define SPLIT_PAGES 9

static char priv_path[4096], shared_path[4096];
static unsigned char *priv, *shared, *none_r, *ro_r, *split_r, *sparse_r, *untouched_r;
static int shared_gen; /* checks so far: each writes pages 4..6 of shared.dat anew */
static pid_t start_pid;

/* The patterns: distinct per file/region and per byte. */
static unsigned char file_byte(int which, size_t off) { return (unsigned char)((off * 131 + off / 4096 * 7 + which * 53) ^ 0x5a); }
static unsigned char cow_byte(size_t off) { return (unsigned char)(off * 17 + 3); }
static unsigned char shared_byte(int gen, size_t off) { return (unsigned char)(off * 29 + gen * 101 + 1); }
static unsigned char anon_byte(int region, size_t off) { return (unsigned char)(off * 11 + region * 37 + off / 4096); }

static void fill_file(const char *path, int which, size_t pages) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) cf_die("create %s", path);
  unsigned char buf[CF_PAGE];
  for (size_t pg = 0; pg < pages; pg++) {
    for (size_t i = 0; i < CF_PAGE; i++) buf[i] = file_byte(which, pg * CF_PAGE + i);
    if (write(fd, buf, CF_PAGE) != (ssize_t)CF_PAGE) cf_die("write %s", path);
  }
  close(fd);
}

/* |pages| read-write pages between two PROT_NONE ones, so that they merge
 * with no other mapping. */
static unsigned char *map_apart(size_t pages) {
  unsigned char *p = mmap(NULL, (pages + 2) * CF_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED || mprotect(p + CF_PAGE, pages * CF_PAGE, PROT_READ | PROT_WRITE) != 0) cf_die("map apart");
  return p + CF_PAGE;
}

static unsigned char *map_anon(size_t pages, int region) {
  unsigned char *p = mmap(NULL, pages * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) cf_die("mmap anon %zu pages", pages);
  for (size_t i = 0; i < pages * CF_PAGE; i++) p[i] = anon_byte(region, i);
  return p;
}

/* Is byte |i| of the private mapping one that was written? */
static int priv_written(size_t i) {
  const size_t pg = i / CF_PAGE, in = i % CF_PAGE;
  return pg == 1 || pg == 7 || (pg == 2 && in < 100);
}

static void setup(void) {
  char dir[4000];
  snprintf(dir, sizeof(dir), "%s/maps", cf_prog.workdir);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) cf_die("mkdir %s", dir);
  snprintf(priv_path, sizeof(priv_path), "%s/private.dat", dir);
  snprintf(shared_path, sizeof(shared_path), "%s/shared.dat", dir);
  fill_file(priv_path, 1, PRIV_FILE_PAGES);
  fill_file(shared_path, 2, SHARED_PAGES);

  int fd = open(priv_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) cf_die("open %s", priv_path);
  priv = mmap(NULL, PRIV_MAP_PAGES * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, PRIV_OFF_PAGES * CF_PAGE);
  if (priv == MAP_FAILED) cf_die("mmap %s", priv_path);
  close(fd);
  volatile unsigned char sink = 0;
  sink ^= priv[0] ^ priv[3 * CF_PAGE + 5] ^ priv[4 * CF_PAGE + 4095];
  (void)sink;
  for (size_t i = 0; i < PRIV_MAP_PAGES * CF_PAGE; i++) {
    if (priv_written(i)) priv[i] = cow_byte(i);
  }

  fd = open(shared_path, O_RDWR | O_CLOEXEC);
  if (fd < 0) cf_die("open %s", shared_path);
  shared = mmap(NULL, SHARED_PAGES * CF_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (shared == MAP_FAILED) cf_die("mmap %s", shared_path);
  close(fd);
  for (size_t i = 0; i < 4 * CF_PAGE; i++) shared[i] = shared_byte(1, i);
  if (msync(shared, SHARED_PAGES * CF_PAGE, MS_SYNC) != 0) cf_die("msync");

  none_r = map_anon(NONE_PAGES, 1);
  if (mprotect(none_r, NONE_PAGES * CF_PAGE, PROT_NONE) != 0) cf_die("mprotect none");
  ro_r = map_anon(RO_PAGES, 2);
  if (mprotect(ro_r, RO_PAGES * CF_PAGE, PROT_READ) != 0) cf_die("mprotect ro");
  split_r = map_anon(SPLIT_PAGES, 3);
  if (mprotect(split_r + 3 * CF_PAGE, 3 * CF_PAGE, PROT_READ) != 0) cf_die("mprotect split r");
  if (mprotect(split_r + 6 * CF_PAGE, 3 * CF_PAGE, PROT_READ | PROT_EXEC) != 0) cf_die("mprotect split rx");
  sparse_r = map_apart(6);
  untouched_r = map_apart(3);
  memset(sparse_r + 3 * CF_PAGE, 0x5a, CF_PAGE);

  char layout[1024];
  int off = 0;
#define REGION(p, pages, name)                                                                          \
  off += snprintf(layout + off, sizeof(layout) - (size_t)off, "%lx %lx %s\n", (unsigned long)(p), \
                  (unsigned long)((p) + (pages) * CF_PAGE), name)
  REGION(priv, PRIV_MAP_PAGES, "private");
  REGION(shared, SHARED_PAGES, "shared");
  REGION(none_r, NONE_PAGES, "none");
  REGION(ro_r, RO_PAGES, "ro");
  REGION(split_r, SPLIT_PAGES, "split");
  REGION(sparse_r, 6, "sparse");
  REGION(untouched_r, 3, "untouched");
#undef REGION
  if (cf_write_file("layout", layout) != 0) cf_die("write layout");
  start_pid = getpid();
}

/* ---- /proc/self/maps ------------------------------------------------------ */

/* Checks that /proc/self/maps has a VMA [start, end) with these perms, page
 * offset (bytes) and path ("" for anonymous memory). */
static void check_vma(const char *what, const void *start, const void *end, const char *perms, unsigned long off,
                      const char *path) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) {
    cf_failf("%s: fopen /proc/self/maps: %s", what, strerror(errno));
    return;
  }
  char line[4608];
  int found = 0;
  while (fgets(line, sizeof(line), f)) {
    unsigned long a, b, o;
    char pm[8], dev[16];
    unsigned long ino;
    int n = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &a, &b, pm, &o, dev, &ino, &n) < 6) continue;
    if (a != (unsigned long)start) continue;
    found = 1;
    char *p = line + n;
    p[strcspn(p, "\n")] = '\0';
    CF_CHECK(b == (unsigned long)end, "%s: VMA at %lx ends at %lx, want %lx", what, a, b, (unsigned long)end);
    CF_CHECK(strcmp(pm, perms) == 0, "%s: VMA at %lx has perms %s, want %s", what, a, pm, perms);
    CF_CHECK(o == off, "%s: VMA at %lx has offset %lx, want %lx", what, a, o, off);
    CF_CHECK(strcmp(p, path) == 0, "%s: VMA at %lx has path '%s', want '%s'", what, a, p, path);
    break;
  }
  fclose(f);
  CF_CHECK(found, "%s: no VMA starts at %p in /proc/self/maps", what, start);
}

/* [start, end) lies inside one anonymous VMA with |perms|. After the
 * program's own mprotect the kernel may merge the range with a compatible
 * neighbour, so no VMA need start at |start| then. */
static void check_covered(const char *what, const void *start, const void *end, const char *perms) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) {
    cf_failf("%s: fopen /proc/self/maps: %s", what, strerror(errno));
    return;
  }
  char line[4608];
  int found = 0;
  while (fgets(line, sizeof(line), f)) {
    unsigned long a, b, o, ino;
    char pm[8], dev[16];
    int n = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &a, &b, pm, &o, dev, &ino, &n) < 6) continue;
    if (a > (unsigned long)start || b < (unsigned long)end) continue;
    found = 1;
    char *p = line + n;
    p[strcspn(p, "\n")] = '\0';
    CF_CHECK(strcmp(pm, perms) == 0, "%s: VMA %lx-%lx has perms %s, want %s", what, a, b, pm, perms);
    CF_CHECK(ino == 0 && p[0] != '/', "%s: VMA %lx-%lx maps '%s', want anonymous memory", what, a, b, p);
    break;
  }
  fclose(f);
  CF_CHECK(found, "%s: no VMA covers %p-%p in /proc/self/maps", what, start, end);
}

/* ---- the checks -------------------------------------------------------------- */

static int read_file(const char *path, unsigned char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = pread(fd, buf, len, 0);
  close(fd);
  return n == (ssize_t)len ? 0 : -1;
}

static void check_private(void) {
  check_vma("private file mapping", priv, priv + PRIV_MAP_PAGES * CF_PAGE, "rw-p", PRIV_OFF_PAGES * CF_PAGE,
            priv_path);
  for (size_t i = 0; i < PRIV_MAP_PAGES * CF_PAGE; i++) {
    const unsigned char want = priv_written(i) ? cow_byte(i) : file_byte(1, PRIV_OFF_PAGES * CF_PAGE + i);
    if (priv[i] != want) {
      cf_failf("private mapping: byte %zu (page %zu, %s) is %#x, want %#x", i, i / CF_PAGE,
               priv_written(i) ? "written" : "file data", priv[i], want);
      break;
    }
  }
  static unsigned char buf[PRIV_FILE_PAGES * CF_PAGE];
  if (read_file(priv_path, buf, sizeof(buf)) != 0) {
    cf_failf("private.dat: cannot read %zu bytes: %s", sizeof(buf), strerror(errno));
    return;
  }
  for (size_t i = 0; i < sizeof(buf); i++) {
    if (buf[i] != file_byte(1, i)) {
      cf_failf("private.dat changed: byte %zu is %#x, want %#x", i, buf[i], file_byte(1, i));
      break;
    }
  }
}

/* What shared.dat (and so the mapping) must hold at byte |i|. */
static unsigned char shared_want(size_t i) {
  const size_t pg = i / CF_PAGE;
  if (pg < 4) return shared_byte(1, i);
  if (shared_gen > 0 && pg < 6) return shared_byte(2 * shared_gen + 2, i);
  if (shared_gen > 0 && pg == 6) return shared_byte(2 * shared_gen + 3, i);
  return file_byte(2, i);
}

static void check_shared_contents(const char *when) {
  static unsigned char buf[SHARED_PAGES * CF_PAGE];
  for (size_t i = 0; i < sizeof(buf); i++) {
    if (shared[i] != shared_want(i)) {
      cf_failf("shared mapping (%s): byte %zu (page %zu) is %#x, want %#x", when, i, i / CF_PAGE, shared[i],
               shared_want(i));
      return;
    }
  }
  if (read_file(shared_path, buf, sizeof(buf)) != 0) {
    cf_failf("shared.dat: cannot read: %s", strerror(errno));
    return;
  }
  for (size_t i = 0; i < sizeof(buf); i++) {
    if (buf[i] != shared_want(i)) {
      cf_failf("shared.dat (%s): byte %zu (page %zu) is %#x, want %#x", when, i, i / CF_PAGE, buf[i],
               shared_want(i));
      return;
    }
  }
}

static void check_shared(void) {
  check_vma("shared file mapping", shared, shared + SHARED_PAGES * CF_PAGE, "rw-s", 0, shared_path);
  check_shared_contents("as left");
  if (cf_prog.fail[0]) return;
  shared_gen++;
  /* Through the mapping into the file... */
  for (size_t i = 4 * CF_PAGE; i < 6 * CF_PAGE; i++) shared[i] = shared_byte(2 * shared_gen + 2, i);
  if (msync(shared, SHARED_PAGES * CF_PAGE, MS_SYNC) != 0) cf_failf("msync: %s", strerror(errno));
  /* ...and through the file into the mapping. */
  static unsigned char page[CF_PAGE];
  for (size_t i = 0; i < CF_PAGE; i++) page[i] = shared_byte(2 * shared_gen + 3, 6 * CF_PAGE + i);
  int fd = open(shared_path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || pwrite(fd, page, CF_PAGE, 6 * CF_PAGE) != (ssize_t)CF_PAGE) {
    cf_failf("shared.dat: pwrite page 6: %s", strerror(errno));
  }
  if (fd >= 0) close(fd);
  check_shared_contents("after writing more");
}

static void check_anon(const char *what, const unsigned char *p, size_t pages, int region) {
  for (size_t i = 0; i < pages * CF_PAGE; i++) {
    if (p[i] != anon_byte(region, i)) {
      cf_failf("%s: byte %zu (page %zu) is %#x, want %#x", what, i, i / CF_PAGE, p[i], anon_byte(region, i));
      return;
    }
  }
}

static void check_regions(void) {
  check_vma("PROT_NONE region", none_r, none_r + NONE_PAGES * CF_PAGE, "---p", 0, "");
  if (mprotect(none_r, NONE_PAGES * CF_PAGE, PROT_READ | PROT_WRITE) != 0) {
    cf_failf("mprotect PROT_NONE region to RW: %s", strerror(errno));
  } else {
    check_covered("PROT_NONE region made RW", none_r, none_r + NONE_PAGES * CF_PAGE, "rw-p");
    check_anon("PROT_NONE region", none_r, NONE_PAGES, 1);
    if (mprotect(none_r, NONE_PAGES * CF_PAGE, PROT_NONE) != 0) cf_failf("mprotect back to PROT_NONE");
  }
  check_vma("read-only region", ro_r, ro_r + RO_PAGES * CF_PAGE, "r--p", 0, "");
  check_anon("read-only region", ro_r, RO_PAGES, 2);
  check_vma("split region, part 1", split_r, split_r + 3 * CF_PAGE, "rw-p", 0, "");
  check_vma("split region, part 2", split_r + 3 * CF_PAGE, split_r + 6 * CF_PAGE, "r--p", 0, "");
  check_vma("split region, part 3", split_r + 6 * CF_PAGE, split_r + 9 * CF_PAGE, "r-xp", 0, "");
  check_anon("split region", split_r, SPLIT_PAGES, 3);
  /* The writable part is still writable. */
  split_r[100] ^= 0xff;
  split_r[100] ^= 0xff;
}

/* Pages of |p| in memory (mincore), as a bit mask; checked before any is
 * touched. */
static unsigned resident(const unsigned char *p, size_t pages) {
  unsigned char vec[8];
  if (mincore((void *)p, pages * CF_PAGE, vec) != 0) cf_die("mincore");
  unsigned mask = 0;
  for (size_t i = 0; i < pages; i++) mask |= (vec[i] & 1u) << i;
  return mask;
}

static void check_untouched(void) {
  unsigned got = resident(sparse_r, 6);
  CF_CHECK(got == 1u << 3, "sparse region: pages in memory %#x, want only page 3 (%#x)", got, 1u << 3);
  got = resident(untouched_r, 3);
  CF_CHECK(got == 0, "untouched region: pages in memory %#x, want none", got);
  CF_CHECK(sparse_r[3 * CF_PAGE] == 0x5a && sparse_r[4 * CF_PAGE - 1] == 0x5a, "sparse region: page 3 lost its data");
}

static int cmp_int(const void *a, const void *b) {
  const int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static void check_libc(void) {
  char buf[256];
  int n = snprintf(buf, sizeof(buf), "%d-%s-%.3f-%llx", 42, "mappings", 3.14159, 0xdeadbeefULL);
  CF_CHECK(n == (int)strlen(buf) && strcmp(buf, "42-mappings-3.142-deadbeef") == 0, "snprintf gave '%s'", buf);
  CF_CHECK(strlen("criu-fast restore") == 17, "strlen");
  char *end = NULL;
  double d = strtod("2.5e3xyz", &end);
  CF_CHECK(d == 2500.0 && end && strcmp(end, "xyz") == 0, "strtod gave %f", d);

  int *v = malloc(1000 * sizeof(int));
  if (!v) {
    cf_failf("malloc small: %s", strerror(errno));
    return;
  }
  uint64_t s = 12345;
  for (int i = 0; i < 1000; i++) v[i] = (int)(cf_rand_next(&s) % 100000);
  qsort(v, 1000, sizeof(int), cmp_int);
  for (int i = 1; i < 1000; i++) {
    if (v[i - 1] > v[i]) {
      cf_failf("qsort: not sorted at %d", i);
      break;
    }
  }
  free(v);
  /* Above the mmap threshold: a new mapping after the restore. */
  unsigned char *big = malloc(8 << 20);
  if (!big) {
    cf_failf("malloc 8 MB: %s", strerror(errno));
  } else {
    memset(big, 0x77, 8 << 20);
    CF_CHECK(big[(8 << 20) - 1] == 0x77, "big block");
    free(big);
  }

  CF_CHECK(getpid() == (pid_t)syscall(SYS_getpid), "getpid %d, syscall says %ld", (int)getpid(), syscall(SYS_getpid));
  CF_CHECK(getpid() == start_pid, "pid %d, was %d", (int)getpid(), (int)start_pid);
  struct timespec a, b, c;
  clock_gettime(CLOCK_REALTIME, &a);
  syscall(SYS_clock_gettime, CLOCK_REALTIME, &b);
  clock_gettime(CLOCK_REALTIME, &c);
  const long long na = a.tv_sec * 1000000000LL + a.tv_nsec, nb = b.tv_sec * 1000000000LL + b.tv_nsec,
                  nc = c.tv_sec * 1000000000LL + c.tv_nsec;
  CF_CHECK(na <= nb + 1000000 && nb <= nc + 1000000, "CLOCK_REALTIME: vDSO %lld, syscall %lld, vDSO %lld", na, nb,
           nc);
  clock_gettime(CLOCK_MONOTONIC, &a);
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
  const long long ma = a.tv_sec * 1000000000LL + a.tv_nsec, mb = b.tv_sec * 1000000000LL + b.tv_nsec;
  CF_CHECK(ma <= mb && mb - ma < 1000000000LL, "CLOCK_MONOTONIC: vDSO %lld, syscall %lld", ma, mb);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "mappings W");
  setup();
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check_untouched();
      check_private();
      check_shared();
      check_regions();
      check_libc();
      cf_report();
    }
    cf_nap(20);
  }
}
