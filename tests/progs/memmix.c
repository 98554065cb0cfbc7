/* memmix W SIZE_MB: anonymous memory of three kinds, to check what a dump stores.
 *
 * One private anonymous mapping of SIZE_MB is split in thirds (page-aligned):
 *   random  bytes from a fixed-seed PRNG: every page must be stored;
 *   zero    every page touched by reading only (the kernel maps the shared zero
 *           page), and every fourth page also written with zeros (a real page
 *           full of zeros): no page of this third should be stored;
 *   text    repeated ASCII lines: every page must be stored.
 * Plus a malloc'ed linked list on the heap.
 * W/layout gets one line per region: "<start hex> <end hex> <kind>".
 * On SIGUSR1 every byte is verified: a hash per region is compared with the one
 * computed at setup; a mismatch is then located (first bad page) for the report.
 */
#include "prog_common.h"  /* first: it defines _GNU_SOURCE */

#include <sys/mman.h>

#define SEED 0x1234567887654321ULL

struct node {
  struct node *next;
  uint64_t value;
  char name[24];
};

struct region {
  const char *kind;
  unsigned char *start;
  size_t npages;
  uint64_t hash;
};

static struct region regions[3];
static struct node *list_head;
static uint64_t list_sum;

static void build_list(void) {
  for (uint64_t i = 0; i < 2000; i++) {
    struct node *n = malloc(sizeof(*n));
    if (!n) cf_die("malloc");
    n->value = i * i + 17;
    snprintf(n->name, sizeof(n->name), "node-%llu", (unsigned long long)i);
    n->next = list_head;
    list_head = n;
    list_sum += n->value;
  }
}

static void check_list(void) {
  uint64_t sum = 0, count = 0;
  char want[24];
  for (struct node *n = list_head; n; n = n->next) {
    uint64_t i = 1999 - count;
    snprintf(want, sizeof(want), "node-%llu", (unsigned long long)i);
    if (n->value != i * i + 17 || strcmp(n->name, want) != 0) {
      cf_failf("heap list node %llu corrupt", (unsigned long long)i);
      return;
    }
    sum += n->value;
    if (++count > 2000) break;
  }
  CF_CHECK(count == 2000 && sum == list_sum, "heap list: %llu nodes, sum %llu", (unsigned long long)count,
           (unsigned long long)sum);
}

/* Locates the first bad page of a region whose hash changed. */
static void locate(const struct region *r) {
  unsigned char *want = malloc(CF_PAGE);
  if (!want) {
    cf_failf("region %s: hash mismatch", r->kind);
    return;
  }
  for (size_t pg = 0; pg < r->npages; pg++) {
    const unsigned char *p = r->start + pg * CF_PAGE;
    if (strcmp(r->kind, "random") == 0) {
      cf_random_page(want, pg, SEED);
    } else if (strcmp(r->kind, "zero") == 0) {
      memset(want, 0, CF_PAGE);
    } else {
      cf_text_page(want, pg);
    }
    if (memcmp(p, want, CF_PAGE) != 0) {
      free(want);
      cf_failf("region %s: page %zu (addr %p) differs", r->kind, pg, (const void *)p);
      return;
    }
  }
  free(want);
  cf_failf("region %s: hash mismatch", r->kind);
}

static void check_all(void) {
  for (int i = 0; i < 3; i++) {
    const struct region *r = &regions[i];
    if (cf_hash(r->start, r->npages * CF_PAGE) != r->hash) locate(r);
  }
  check_list();
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 2, "memmix W SIZE_MB");
  long mb = strtol(argv[2], NULL, 10);
  if (mb < 1) cf_die("bad SIZE_MB '%s'", argv[2]);
  const size_t total = (size_t)mb * 256;
  const size_t third = total / 3;
  unsigned char *base = mmap(NULL, total * CF_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) cf_die("mmap %ld MB", mb);

  regions[0] = (struct region){"random", base, third, 0};
  regions[1] = (struct region){"zero", base + third * CF_PAGE, third, 0};
  regions[2] = (struct region){"text", base + 2 * third * CF_PAGE, total - 2 * third, 0};

  cf_fill_random(regions[0].start, regions[0].npages, SEED);
  volatile unsigned char sink = 0;
  for (size_t pg = 0; pg < regions[1].npages; pg++) {
    unsigned char *p = regions[1].start + pg * CF_PAGE;
    sink ^= p[0];                          /* read: maps the zero page */
    if (pg % 4 == 1) memset(p, 0, CF_PAGE); /* written, but with zeros */
  }
  (void)sink;
  cf_fill_text(regions[2].start, regions[2].npages);
  for (int i = 0; i < 3; i++) regions[i].hash = cf_hash(regions[i].start, regions[i].npages * CF_PAGE);
  build_list();

  char layout[512];
  int off = 0;
  for (int i = 0; i < 3; i++) {
    off += snprintf(layout + off, sizeof(layout) - (size_t)off, "%lx %lx %s\n", (unsigned long)regions[i].start,
                    (unsigned long)(regions[i].start + regions[i].npages * CF_PAGE), regions[i].kind);
  }
  if (cf_write_file("layout", layout) != 0) cf_die("write layout");
  cf_ready();

  for (;;) {
    if (cf_take_usr1()) {
      check_all();
      cf_report();
    }
    cf_nap(20);
  }
}
