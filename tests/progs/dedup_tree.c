/* dedup_tree W PAGES: many equal non-zero pages, in one process and across
 * two processes that do not share them copy-on-write (deduplication by
 * content within one dump).
 *
 * The parent maps three private anonymous regions of PAGES pages (PAGES a
 * multiple of 8):
 *   A  page i holds pattern i % 8: 8 distinct pages, each PAGES/8 times;
 *   B  page i holds pattern i % 8 with one byte flipped at an offset that
 *      depends on i: near-duplicates, none equal to another page;
 *   C  PAGES/2 pages at a different offset of another mapping (one page of
 *      random bytes first): page j holds pattern (j + 3) % 8.
 * Then it forks a child, which writes every page of A and C again with the
 * same bytes (its own copies: nothing shared by copy-on-write with the
 * parent) and maps a region E of PAGES/2 pages holding pattern (k + 5) % 8.
 * B stays shared copy-on-write (INHERITED in the child, not deduplicated).
 * W/expect gets the number of pages a dump can store as references: all
 * the pattern pages but the first of each pattern.
 *
 * On SIGUSR2 (once) the parent rewrites every 16th page of A with a unique
 * pattern and writes W/step; its other pages stay as they were (an
 * increment finds them in its parent image).
 *
 * On SIGUSR1 the parent asks the child; each checks every byte of its
 * regions.
 */
#include "prog_common.h"

#include <sys/mman.h>

static size_t pages;
static unsigned char *a, *b, *c, *e;
static unsigned char *c_map;
static int is_child;
static volatile sig_atomic_t usr2;
static int stepped;

static void on_usr2(int sig) {
  (void)sig;
  usr2 = 1;
}

static void pattern(unsigned char *page, size_t p) { cf_random_page(page, 0, 1000 + p); }

static void a_page(unsigned char *page, size_t i) {
  if (stepped && !is_child && i % 16 == 0) {
    cf_random_page(page, i, 77);
  } else {
    pattern(page, i % 8);
  }
}

static void b_page(unsigned char *page, size_t i) {
  pattern(page, i % 8);
  page[(i * 37 + 11) % CF_PAGE] ^= 0x5a;
}

static void *map_pages(size_t n) {
  void *p = mmap(NULL, n * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) cf_die("mmap: %s", strerror(errno));
  /* No huge pages: the counts below are per 4 KiB page. */
  if (madvise(p, n * CF_PAGE, MADV_NOHUGEPAGE) != 0) cf_die("madvise: %s", strerror(errno));
  return p;
}

static void fill_a_c(void) {
  for (size_t i = 0; i < pages; i++) a_page(a + i * CF_PAGE, i);
  for (size_t j = 0; j < pages / 2; j++) pattern(c + j * CF_PAGE, (j + 3) % 8);
}

static void check(void) {
  unsigned char want[CF_PAGE];
  for (size_t i = 0; i < pages; i++) {
    a_page(want, i);
    if (memcmp(want, a + i * CF_PAGE, CF_PAGE) != 0) {
      cf_failf("%s: page %zu of A differs", is_child ? "child" : "parent", i);
      return;
    }
    b_page(want, i);
    if (memcmp(want, b + i * CF_PAGE, CF_PAGE) != 0) {
      cf_failf("%s: page %zu of B (near-duplicates) differs", is_child ? "child" : "parent", i);
      return;
    }
  }
  cf_random_page(want, 0, 5);
  if (memcmp(want, c_map, CF_PAGE) != 0) cf_failf("the random page before C differs");
  for (size_t j = 0; j < pages / 2; j++) {
    pattern(want, (j + 3) % 8);
    if (memcmp(want, c + j * CF_PAGE, CF_PAGE) != 0) {
      cf_failf("%s: page %zu of C differs", is_child ? "child" : "parent", j);
      return;
    }
  }
  if (!is_child) return;
  for (size_t k = 0; k < pages / 2; k++) {
    pattern(want, (k + 5) % 8);
    if (memcmp(want, e + k * CF_PAGE, CF_PAGE) != 0) {
      cf_failf("child: page %zu of E differs", k);
      return;
    }
  }
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 2, "dedup_tree W PAGES");
  pages = (size_t)strtol(argv[2], NULL, 10);
  if (pages < 16 || pages % 8 != 0) cf_die("PAGES must be a multiple of 8, at least 16");
  a = map_pages(pages);
  b = map_pages(pages);
  c_map = map_pages(pages / 2 + 1);
  c = c_map + CF_PAGE;
  cf_random_page(c_map, 0, 5);
  fill_a_c();
  for (size_t i = 0; i < pages; i++) b_page(b + i * CF_PAGE, i);
  /* Pattern pages: 8 stored, every other one a reference. */
  char text[64];
  snprintf(text, sizeof(text), "%zu\n", (pages + pages / 2) * 2 + pages / 2 - 8);
  if (cf_write_file("expect", text) != 0) cf_die("write expect");

  pid_t child = fork();
  if (child < 0) cf_die("fork");
  if (child == 0) {
    is_child = 1;
    fill_a_c(); /* the same bytes, in pages of its own */
    e = map_pages(pages / 2);
    for (size_t k = 0; k < pages / 2; k++) pattern(e + k * CF_PAGE, (k + 5) % 8);
    cf_child_ready("ready.child");
    cf_child_loop(check, "result.child");
  }
  char buf[32];
  if (cf_wait_file("ready.child", buf, sizeof(buf)) != 0) cf_die("the child did not start");
  signal(SIGUSR2, on_usr2);
  cf_ready();
  for (;;) {
    if (usr2 && !stepped) {
      stepped = 1;
      for (size_t i = 0; i < pages; i += 16) a_page(a + i * CF_PAGE, i);
      cf_write_file("step", "1\n");
    }
    if (cf_take_usr1()) {
      check();
      cf_ask_child(child, "result.child");
      cf_report();
    }
    cf_nap(20);
  }
}
