/* vdso_moved W VDSO_AT PATTERN_AT PAGES: moves its own vDSO block ([vvar]
 * .. [vdso]) to VDSO_AT with mremap (0: to a free place about 1 GiB lower,
 * the kernel's pick), then maps PAGES anonymous pages
 * holding a pattern at PATTERN_AT (addresses in hex; both places must be
 * free once the block left its first place).
 *
 * Run without address randomization (setarch -R), the block of the process
 * that restores it (criu-fast, also under setarch -R) has a known place: the
 * test puts the pattern, or the block's dumped place, over it.
 *
 * glibc keeps the vDSO's old address, so after the move the program calls
 * no vDSO function: it reads the clock by syscall and sleeps by nanosleep.
 * On SIGUSR1 it checks that its [vdso] is still where it moved it, starts
 * with an ELF header, that its block is whole, and that the pattern is
 * intact.
 */
#include "prog_common.h"

#include <sys/mman.h>
#include <sys/syscall.h>

static uint64_t block_start, block_len, vdso_start, vdso_len;
static unsigned char *pattern;
static size_t pattern_len;

static unsigned char pattern_byte(size_t i) { return (unsigned char)(i * 131 + 17); }

/* Finds the [vvar]..[vdso] block and the [vdso] mapping in /proc/self/maps.
 * Returns 0 when both were found. */
static int find_block(uint64_t *start, uint64_t *len, uint64_t *vstart, uint64_t *vlen) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  char line[512];
  uint64_t lo = 0, hi = 0;
  *vstart = *vlen = 0;
  while (fgets(line, sizeof(line), f)) {
    unsigned long a, b;
    if (sscanf(line, "%lx-%lx", &a, &b) != 2) continue;
    const int vdso = strstr(line, "[vdso]") != NULL;
    if (!vdso && !strstr(line, "[vvar]") && !strstr(line, "[vvar_vclock]")) continue;
    if (lo == 0 || a < lo) lo = a;
    if (b > hi) hi = b;
    if (vdso) {
      *vstart = a;
      *vlen = b - a;
    }
  }
  fclose(f);
  if (lo == 0 || *vstart == 0) return -1;
  *start = lo;
  *len = hi - lo;
  return 0;
}

static uint64_t raw_now_ns(void) {
  struct timespec ts;
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void check(void) {
  uint64_t s, l, vs, vl;
  if (find_block(&s, &l, &vs, &vl) != 0) {
    cf_failf("no [vdso] in /proc/self/maps");
    return;
  }
  CF_CHECK(s == block_start && l == block_len, "vDSO block at %#lx+%#lx, moved to %#lx+%#lx", (unsigned long)s,
           (unsigned long)l, (unsigned long)block_start, (unsigned long)block_len);
  CF_CHECK(vs == vdso_start && vl == vdso_len, "[vdso] at %#lx+%#lx, was %#lx+%#lx", (unsigned long)vs,
           (unsigned long)vl, (unsigned long)vdso_start, (unsigned long)vdso_len);
  if (vs == vdso_start) CF_CHECK(memcmp((const void *)vs, "\x7f" "ELF", 4) == 0, "no ELF header at [vdso]");
  for (size_t i = 0; i < pattern_len; i++) {
    if (pattern[i] != pattern_byte(i)) {
      cf_failf("pattern byte %zu at %p is %u", i, (void *)(pattern + i), pattern[i]);
      break;
    }
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 4, "vdso_moved W VDSO_AT PATTERN_AT PAGES");
  uint64_t to = strtoull(argv[2], NULL, 16);
  const uint64_t pattern_at = strtoull(argv[3], NULL, 16);
  pattern_len = strtoull(argv[4], NULL, 10) * CF_PAGE;
  uint64_t old_start, old_len, old_vdso, vl;
  if (find_block(&old_start, &old_len, &old_vdso, &vl) != 0) cf_die("no vDSO block in /proc/self/maps");
  if (to % CF_PAGE || pattern_at % CF_PAGE || pattern_len == 0) cf_die("bad arguments");
  block_len = old_len;
  vdso_len = vl;
  /* Through a spot 1 GiB lower (a hint): mremap refuses to move onto an
   * overlapping range. */
  void *tmp = mmap((void *)(old_start - (1UL << 30)), old_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (tmp == MAP_FAILED) cf_die("reserve a spot for the vDSO block");
  if ((void *)syscall(SYS_mremap, old_start, old_len, old_len, MREMAP_MAYMOVE | MREMAP_FIXED, tmp) != tmp) {
    cf_die("mremap of the vDSO block");
  }
  if (to != 0) {
    void *probe = mmap((void *)to, old_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (probe == MAP_FAILED) cf_die("%#lx is taken", (unsigned long)to);
    if ((void *)syscall(SYS_mremap, tmp, old_len, old_len, MREMAP_MAYMOVE | MREMAP_FIXED, to) != (void *)to) {
      cf_die("mremap of the vDSO block");
    }
  } else {
    to = (uint64_t)tmp;  /* it stays at the spot the kernel gave */
  }
  block_start = to;
  vdso_start = old_vdso - old_start + to;
  pattern = mmap((void *)pattern_at, pattern_len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (pattern == MAP_FAILED) cf_die("map the pattern at %#lx", (unsigned long)pattern_at);
  for (size_t i = 0; i < pattern_len; i++) pattern[i] = pattern_byte(i);
  cf_prog.lifetime_ns = 0; /* cf_nap's clock is glibc's, through the old vDSO */
  const char *life = getenv("CF_PROG_LIFETIME");
  const long secs = life ? strtol(life, NULL, 10) : 600;
  const uint64_t start = raw_now_ns();
  cf_ready();
  for (;;) {
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    if (secs > 0 && raw_now_ns() - start > (uint64_t)secs * 1000000000ULL) exit(3);
    if (cf_take_usr1()) {
      check();
      cf_report();
    }
  }
}
