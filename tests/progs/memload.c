/* memload W SIZE_MB [mix|random|text|zero]: a memory workload for benchmarks.
 *
 * Maps SIZE_MB of private anonymous memory and fills it:
 *   mix (default)  1/3 random bytes, 1/3 zero pages, 1/3 ASCII text
 *   random         all random bytes (incompressible)
 *   text           all ASCII text (compresses well)
 *   zero           all zero pages
 * Zero pages are touched by reading only, so the kernel maps its shared zero
 * page there (present, but nothing to store). Every page is touched before
 * W/ready is written; then the program idles. On SIGUSR1 it compares a hash
 * of the whole mapping with the one taken at setup.
 */
#include "prog_common.h"  /* first: it defines _GNU_SOURCE */

#include <sys/mman.h>

int main(int argc, char **argv) {
  cf_init(argc, argv, 2, "memload W SIZE_MB [mix|random|text|zero]");
  const long mb = strtol(argv[2], NULL, 10);
  const char *pattern = argc > 3 ? argv[3] : "mix";
  if (mb < 1) cf_die("bad SIZE_MB '%s'", argv[2]);
  const size_t total = (size_t)mb * 256;
  unsigned char *base = mmap(NULL, total * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) cf_die("mmap %ld MB", mb);

  size_t n_random = 0, n_zero = 0;
  if (strcmp(pattern, "mix") == 0) {
    n_random = total / 3;
    n_zero = total / 3;
  } else if (strcmp(pattern, "random") == 0) {
    n_random = total;
  } else if (strcmp(pattern, "zero") == 0) {
    n_zero = total;
  } else if (strcmp(pattern, "text") != 0) {
    errno = EINVAL;
    cf_die("unknown pattern '%s'", pattern);
  }
  cf_fill_random(base, n_random, 0xBE7C4ULL);
  volatile unsigned char sink = 0;
  for (size_t pg = n_random; pg < n_random + n_zero; pg++) sink ^= base[pg * CF_PAGE];
  (void)sink;
  cf_fill_text(base + (n_random + n_zero) * CF_PAGE, total - n_random - n_zero);
  const uint64_t hash = cf_hash(base, total * CF_PAGE);
  cf_ready();

  for (;;) {
    if (cf_take_usr1()) {
      CF_CHECK(cf_hash(base, total * CF_PAGE) == hash, "memory hash changed");
      cf_report();
    }
    cf_nap(50);
  }
}
