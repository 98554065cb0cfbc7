/* heapgrow W: a heap grown by brk, which must grow on as one [heap] VMA
 * after a restore, exactly as before the dump.
 *
 * Set up before W/ready: sbrk() grows the heap by 1 MiB, filled with a
 * pattern; /proc/self/maps then shows one [heap] VMA.
 * On SIGUSR1 the check: the pattern is intact, the heap grows by another
 * 256 KiB (filled too), and /proc/self/maps still shows exactly one [heap]
 * VMA, which ends at the new break. Each check grows the heap again.
 */
#include "prog_common.h"

#define FIRST (1UL << 20)
#define STEP (256UL << 10)

static unsigned char *base;
static size_t grown;

static unsigned char pattern(size_t i) { return (unsigned char)(i * 131 + (i >> 12)); }

static void fill(size_t from, size_t to) {
  for (size_t i = from; i < to; i++) base[i] = pattern(i);
}

/* The [heap] lines of /proc/self/maps: how many, and the end of the last.
 * Read with open/read into a static buffer: malloc (stdio) would move the
 * break itself. */
static int heap_vmas(unsigned long *end) {
  static char buf[1 << 16];
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = 0;
  int n = 0;
  for (char *line = buf; *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    unsigned long s, e;
    if (strstr(line, "[heap]") && sscanf(line, "%lx-%lx", &s, &e) == 2) {
      n++;
      *end = e;
    }
    if (!nl) break;
    line = nl + 1;
  }
  return n;
}

static void check(void) {
  for (size_t i = 0; i < grown; i++) {
    if (base[i] != pattern(i)) {
      cf_failf("heap byte %zu is %u, want %u", i, base[i], pattern(i));
      return;
    }
  }
  if (sbrk((intptr_t)STEP) == (void *)-1) {
    cf_failf("sbrk(%lu): %s", STEP, strerror(errno));
    return;
  }
  fill(grown, grown + STEP);
  grown += STEP;
  unsigned long end = 0;
  const int n = heap_vmas(&end);
  const unsigned long brk_now = (unsigned long)sbrk(0);
  CF_CHECK(n == 1, "%d [heap] VMAs after growing the heap, want 1", n);
  CF_CHECK(end >= brk_now && end - brk_now < CF_PAGE, "[heap] ends at %#lx, the break is %#lx", end, brk_now);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "heapgrow W");
  base = sbrk(0);
  if (sbrk((intptr_t)FIRST) == (void *)-1) cf_die("sbrk");
  grown = FIRST;
  fill(0, grown);
  unsigned long end;
  if (heap_vmas(&end) != 1) cf_die("no single [heap] VMA after sbrk");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
    cf_nap(20);
  }
}
