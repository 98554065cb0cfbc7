/* counter W: a single-threaded busy loop that increments a counter forever.
 *
 * The simplest dump target: some initialized data, some bss, a little heap,
 * one thread always on the CPU (so a dump must stop it mid-computation).
 * On SIGUSR1 the loop keeps counting and, a few milliseconds later, checks
 *   - the counter went on increasing (two samples 5 ms apart),
 *   - the shadow value kept in step with the counter is consistent,
 *   - the globals (data and bss), the heap block and a stack value are intact.
 * The check runs inside the loop, so counting never stops while it samples.
 */
#include "prog_common.h"

static volatile uint64_t counter;        /* incremented continually */
static volatile uint64_t shadow;         /* always counter * 3 + 7, checked */
static int data_words[8] = {11, 22, 33, 44, 55, 66, 77, 88};
static char data_text[] = "counter: initialized data";
static uint32_t bss_words[1024];          /* filled at start */

#define HEAP_WORDS 4096

static uint64_t heap_expected(size_t i) { return i * 0x9E3779B97F4A7C15ULL ^ 0x5555; }

static void check_static(const uint64_t *heap, uint64_t stack_canary) {
  static const int kData[8] = {11, 22, 33, 44, 55, 66, 77, 88};
  for (int i = 0; i < 8; i++) CF_CHECK(data_words[i] == kData[i], "data_words[%d] = %d", i, data_words[i]);
  CF_CHECK(strcmp(data_text, "counter: initialized data") == 0, "data_text changed: '%.40s'", data_text);
  for (uint32_t i = 0; i < 1024; i++) {
    if (bss_words[i] != i * 7 + 1) {
      cf_failf("bss_words[%u] = %u", i, bss_words[i]);
      break;
    }
  }
  for (size_t i = 0; i < HEAP_WORDS; i++) {
    if (heap[i] != heap_expected(i)) {
      cf_failf("heap word %zu = %#llx", i, (unsigned long long)heap[i]);
      break;
    }
  }
  CF_CHECK(stack_canary == 0xC0FFEE1234ULL, "stack canary = %#llx", (unsigned long long)stack_canary);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "counter W");
  volatile uint64_t stack_canary = 0xC0FFEE1234ULL;
  for (uint32_t i = 0; i < 1024; i++) bss_words[i] = i * 7 + 1;
  uint64_t *heap = malloc(HEAP_WORDS * sizeof(uint64_t));
  if (!heap) cf_die("malloc");
  for (size_t i = 0; i < HEAP_WORDS; i++) heap[i] = heap_expected(i);
  cf_ready();

  /* Check state: 0 idle, 1 sampling (first sample taken at t0). */
  int checking = 0;
  uint64_t c0 = 0, t0 = 0;
  for (;;) {
    for (int i = 0; i < 4096; i++) {
      counter = counter + 1;
      shadow = counter * 3 + 7;
    }
    if (cf_take_usr1() && !checking) {
      checking = 1;
      c0 = counter;
      t0 = cf_now_ns();
    }
    if (checking && cf_now_ns() - t0 >= 5000000) {
      const uint64_t c1 = counter;
      CF_CHECK(c1 > c0, "counter did not advance: %llu then %llu", (unsigned long long)c0,
               (unsigned long long)c1);
      CF_CHECK(shadow == counter * 3 + 7, "shadow %llu does not match counter %llu", (unsigned long long)shadow,
               (unsigned long long)counter);
      check_static(heap, stack_canary);
      cf_report();
      checking = 0;
    }
    if ((counter & 0xFFFFF) < 4096) cf_check_lifetime();
  }
}
