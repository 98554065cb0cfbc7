/* mem_aio W: AIO rings (io_setup) holding completed events not yet reaped.
 *
 *   big     io_setup(64): a ring of nr events (255 here). nr + 10 one-byte
 *           writes to /dev/null are submitted, each with its number in
 *           aio_data; they complete at once, and all but the last 20 are
 *           reaped as it goes: the tail has wrapped round and sits behind
 *           the head, with 20 events between them.
 *   mid     io_setup(8): 12 writes, the first 5 reaped: the head is behind
 *           the tail, which has not wrapped.
 *   small   io_setup(1), never used.
 *
 * On SIGUSR1: each ring is still at the address that is its context id,
 * with the same size, head and tail (the kernel's own tail too: the next
 * completion lands there); big: 5 events are reaped with their numbers in
 * order and 5 more writes submitted (so there are always events pending);
 * mid: every pending event is reaped and 3 more writes submitted (the next
 * check finds 3 pending, or none pending with the head and tail not at 0);
 * small answers io_getevents with no event.
 */
#include "prog_common.h"

#include <linux/aio_abi.h>
#include <sys/syscall.h>

struct ring_header {
  unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};

/* A ring and what the program expects of it. */
struct ring {
  const char *name;
  aio_context_t ctx;
  unsigned nr, head, tail;
  uint64_t next_submit, next_reap; /* aio_data numbers */
};

static struct ring big = {.name = "big"}, mid = {.name = "mid"}, small = {.name = "small"};
static int null_fd;
static char byte;

static volatile struct ring_header *Header(const struct ring *r) { return (volatile struct ring_header *)r->ctx; }

static int Submit(struct ring *r) {
  struct iocb cb;
  memset(&cb, 0, sizeof(cb));
  cb.aio_fildes = (uint32_t)null_fd;
  cb.aio_lio_opcode = IOCB_CMD_PWRITE;
  cb.aio_buf = (uint64_t)(uintptr_t)&byte;
  cb.aio_nbytes = 1;
  cb.aio_data = r->next_submit;
  struct iocb *list[1] = {&cb};
  if (syscall(SYS_io_submit, r->ctx, 1L, list) != 1) {
    cf_failf("%s: io_submit of write %llu: errno %d", r->name, (unsigned long long)r->next_submit, errno);
    return -1;
  }
  r->next_submit++;
  r->tail = (r->tail + 1) % r->nr;
  return 0;
}

/* Reaps |n| events; each must carry the next number. */
static int Reap(struct ring *r, unsigned n) {
  struct io_event ev[32];
  struct timespec wait = {2, 0};
  if (n > 32) n = 32;
  long got = syscall(SYS_io_getevents, r->ctx, (long)n, (long)n, ev, &wait);
  if (got != (long)n) {
    cf_failf("%s: io_getevents gave %ld events, want %u (errno %d)", r->name, got, n, errno);
    return -1;
  }
  for (unsigned i = 0; i < n; i++) {
    if (ev[i].data != r->next_reap || ev[i].res != 1) {
      cf_failf("%s: event %u: data %llu res %lld, want data %llu res 1", r->name, i, (unsigned long long)ev[i].data,
               (long long)ev[i].res, (unsigned long long)r->next_reap);
      return -1;
    }
    r->next_reap++;
  }
  r->head = (r->head + n) % r->nr;
  return 0;
}

/* The ring is at its context id, as big as it was, with the head and tail
 * expected. */
static int Same(const struct ring *r) {
  volatile struct ring_header *h = Header(r);
  if (h->magic != 0xa10a10a1 || h->nr != r->nr || h->head != r->head || h->tail != r->tail) {
    cf_failf("%s ring at %#llx: magic %#x, %u events, head %u, tail %u; want %u events, head %u, tail %u", r->name,
             (unsigned long long)r->ctx, h->magic, h->nr, h->head, h->tail, r->nr, r->head, r->tail);
    return -1;
  }
  return 0;
}

static void Check(void) {
  if (Same(&big) == 0 && Reap(&big, 5) == 0) {
    for (int i = 0; i < 5; i++) Submit(&big);
    Same(&big);
  }
  if (Same(&mid) == 0 && Reap(&mid, (unsigned)(mid.next_submit - mid.next_reap)) == 0) {
    for (int i = 0; i < 3; i++) Submit(&mid);
    Same(&mid);
  }
  if (Same(&small) == 0) {
    struct io_event ev;
    struct timespec zero = {0, 0};
    long got = syscall(SYS_io_getevents, small.ctx, 0L, 1L, &ev, &zero);
    CF_CHECK(got == 0, "small ring: io_getevents gave %ld (errno %d)", got, errno);
  }
}

static void Setup(struct ring *r, unsigned events) {
  if (syscall(SYS_io_setup, events, &r->ctx) != 0) cf_die("io_setup(%u)", events);
  r->nr = Header(r)->nr;
}

int main(int argc, char **argv) {
  cf_init(argc, argv, 1, "mem_aio W");
  null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0) cf_die("open /dev/null");
  Setup(&big, 64);
  Setup(&mid, 8);
  Setup(&small, 1);
  if (big.nr < 40) cf_die("the big ring holds only %u events", big.nr);
  for (unsigned i = 0; i < big.nr + 10; i++) {
    if (Submit(&big) != 0) cf_die("%s", cf_prog.fail);
    if (big.next_submit - big.next_reap > 20 && Reap(&big, 1) != 0) cf_die("%s", cf_prog.fail);
  }
  for (int i = 0; i < 12; i++) {
    if (Submit(&mid) != 0) cf_die("%s", cf_prog.fail);
  }
  if (Reap(&mid, 5) != 0) cf_die("%s", cf_prog.fail);
  if (Same(&big) != 0 || Same(&mid) != 0 || Same(&small) != 0) cf_die("%s", cf_prog.fail);
  if (big.tail >= big.head || mid.tail <= mid.head) cf_die("setup: the big ring's tail should be behind its head");
  cf_ready();
  for (;;) {
    if (cf_take_usr1()) {
      Check();
      cf_report();
    }
    cf_nap(20);
  }
}
