/* mem_aio W: AIO rings (io_setup) holding completed events not yet reaped.
 *
 *   big     io_setup(64): a ring of nr events (255 here). nr + 10 one-byte
 *           writes to /dev/null are submitted, each with its number in
 *           aio_data; they complete at once, and all but the last 20 are
 *           reaped as it goes: the tail has wrapped round and sits behind
 *           the head, with 20 events between them.
 *   small   io_setup(1), never used.
 *
 * On SIGUSR1: each ring is still at the address that is its context id,
 * with the same size, head and tail (the kernel's own tail too: the next
 * completion lands there); 5 events are reaped with their numbers in order,
 * and 5 more writes submitted (so there are always events pending, and the
 * next check expects the moved head and tail); small answers io_getevents
 * with no event.
 */
#include "prog_common.h"

#include <linux/aio_abi.h>
#include <sys/syscall.h>

struct ring {
  unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
  struct io_event events[];
};

#define PENDING 20
#define STEP 5

static aio_context_t big, small;
static unsigned big_nr, small_nr;
static unsigned want_head, want_tail;  /* of big */
static uint64_t next_submit, next_reap; /* aio_data numbers */
static int null_fd;
static char byte;

static long Submit(aio_context_t ctx, uint64_t data) {
  struct iocb cb;
  memset(&cb, 0, sizeof(cb));
  cb.aio_fildes = (uint32_t)null_fd;
  cb.aio_lio_opcode = IOCB_CMD_PWRITE;
  cb.aio_buf = (uint64_t)(uintptr_t)&byte;
  cb.aio_nbytes = 1;
  cb.aio_data = data;
  struct iocb *list[1] = {&cb};
  return syscall(SYS_io_submit, ctx, 1, list);
}

/* Reaps |n| events of big; each must carry the next number. 0 or -1. */
static int Reap(unsigned n, int during_check) {
  struct io_event ev[STEP];
  struct timespec wait = {2, 0};
  long got = syscall(SYS_io_getevents, big, (long)n, (long)n, ev, &wait);
  if (got != (long)n) {
    if (during_check) cf_failf("io_getevents gave %ld events, want %u (errno %d)", got, n, errno);
    return -1;
  }
  for (unsigned i = 0; i < n; i++) {
    if (ev[i].data != next_reap || ev[i].res != 1) {
      if (during_check) {
        cf_failf("event %u: data %llu res %lld, want data %llu res 1", i, (unsigned long long)ev[i].data,
                 (long long)ev[i].res, (unsigned long long)next_reap);
      }
      return -1;
    }
    next_reap++;
  }
  return 0;
}

static void Check(void) {
  volatile struct ring *r = (volatile struct ring *)big;
  CF_CHECK(r->magic == 0xa10a10a1 && r->nr == big_nr, "big ring at %#llx: magic %#x, %u events (want %u)",
           (unsigned long long)big, r->magic, r->nr, big_nr);
  CF_CHECK(r->head == want_head && r->tail == want_tail, "big ring: head %u tail %u, want %u %u", r->head, r->tail,
           want_head, want_tail);
  if (cf_prog.fail[0]) return;
  if (Reap(STEP, 1) != 0) return;
  for (unsigned i = 0; i < STEP; i++) {
    if (Submit(big, next_submit) != 1) {
      cf_failf("io_submit %u after the check's reaping: errno %d", i, errno);
      return;
    }
    next_submit++;
  }
  want_head = (want_head + STEP) % big_nr;
  want_tail = (want_tail + STEP) % big_nr;
  CF_CHECK(r->head == want_head && r->tail == want_tail, "big ring after 5 more: head %u tail %u, want %u %u",
           r->head, r->tail, want_head, want_tail);

  volatile struct ring *s = (volatile struct ring *)small;
  CF_CHECK(s->magic == 0xa10a10a1 && s->nr == small_nr && s->head == 0 && s->tail == 0,
           "small ring: magic %#x nr %u (want %u) head %u tail %u", s->magic, s->nr, small_nr, s->head, s->tail);
  struct io_event ev;
  struct timespec zero = {0, 0};
  long got = syscall(SYS_io_getevents, small, 0L, 1L, &ev, &zero);
  CF_CHECK(got == 0, "small ring: io_getevents gave %ld (errno %d)", got, errno);
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "mem_aio W");
  null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0) cf_die("open /dev/null");
  if (syscall(SYS_io_setup, 64, &big) != 0) cf_die("io_setup(64)");
  if (syscall(SYS_io_setup, 1, &small) != 0) cf_die("io_setup(1)");
  big_nr = ((struct ring *)big)->nr;
  small_nr = ((struct ring *)small)->nr;
  if (big_nr < 2 * PENDING) cf_die("big ring holds only %u events", big_nr);
  for (unsigned i = 0; i < big_nr + 10; i++) {
    if (Submit(big, next_submit) != 1) cf_die("io_submit %u", i);
    next_submit++;
    if (next_submit - next_reap > PENDING && Reap(1, 0) != 0) cf_die("reap after %u", i);
  }
  want_tail = (big_nr + 10) % big_nr;
  want_head = (want_tail + big_nr - PENDING) % big_nr;
  volatile struct ring *r = (volatile struct ring *)big;
  if (r->head != want_head || r->tail != want_tail || r->tail >= r->head) {
    cf_die("setup: head %u tail %u, want %u %u with the tail behind", r->head, r->tail, want_head, want_tail);
  }
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
