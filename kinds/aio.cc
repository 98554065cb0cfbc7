// AIO rings, dump and restore (see aio.h).
#include "kinds/aio.h"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/log.h"

namespace cf::kinds {
namespace {

// The head of the ring (struct aio_ring in fs/aio.c), then |nr| io_events.
struct RingHeader {
  uint32_t id;  // the kernel's index of the context: the new one's stays
  uint32_t nr;
  uint32_t head;
  uint32_t tail;
  uint32_t magic;
  uint32_t compat_features;
  uint32_t incompat_features;
  uint32_t header_length;
};
static_assert(sizeof(RingHeader) == 32 && sizeof(io_event) == 32, "the kernel's aio_ring layout");

constexpr uint32_t kRingMagic = 0xa10a10a1;
constexpr uint32_t kCompatFeatures = 1;

uint32_t EventsIn(uint64_t len) { return static_cast<uint32_t>((len - sizeof(RingHeader)) / sizeof(io_event)); }

// Destroys a context made here unless disarmed.
class ContextGuard {
 public:
  explicit ContextGuard(aio_context_t ctx) : ctx_(ctx) {}
  ~ContextGuard() {
    if (ctx_ != 0) syscall(SYS_io_destroy, ctx_);
  }
  void Disarm() { ctx_ = 0; }
  void Moved(aio_context_t to) { ctx_ = to; }

 private:
  aio_context_t ctx_;
};

// Brings the kernel's tail of the new ring |ctx| (empty, with |nr| events)
// to |tail| and the ring's head to |head|. Each one-byte write to /dev/null
// completes as it is submitted, moving the tail by one. When the tail is
// behind the head (it wrapped), the writes go once round the ring first: the
// kernel counts the events completed since the ring was made, and that count
// must agree with the head and tail it finds. The writes before |head| are
// reaped by moving the head (the program's side of the ring) over them, so
// the ring never fills.
Status MoveTail(aio_context_t ctx, uint32_t nr, uint32_t head, uint32_t tail) {
  auto* ring = reinterpret_cast<volatile RingHeader*>(ctx);
  if (head == 0 && tail == 0) return OkStatus();
  const uint32_t count = tail < head ? nr + tail : tail;
  UniqueFd null(open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (!null.valid()) return ErrnoStatus("open /dev/null");
  char byte = 0;
  iocb cb;
  memset(&cb, 0, sizeof(cb));
  cb.aio_fildes = static_cast<uint32_t>(null.get());
  cb.aio_lio_opcode = IOCB_CMD_PWRITE;
  cb.aio_buf = reinterpret_cast<uint64_t>(&byte);
  cb.aio_nbytes = 1;
  std::vector<iocb*> batch(std::min(count, nr - 1), &cb);
  uint32_t done = 0;
  int refused = 0;
  while (done < count) {
    const long want = std::min<long>(count - done, static_cast<long>(batch.size()));
    const long got = syscall(SYS_io_submit, ctx, want, batch.data());
    if (got < 0 && errno != EAGAIN) return ErrnoStatus("io_submit to move the ring's tail");
    if (got <= 0) {
      // The kernel hands out free slots in batches per CPU; it looks at the
      // head again when they run out. Twice in a row with none is an error.
      if (++refused > 2) return Errorf("the new ring takes no more requests after %u of %u", done, count);
    } else {
      refused = 0;
      done += static_cast<uint32_t>(got);
    }
    ring->head = std::min(done, head);
  }
  if (ring->tail != tail) return Errorf("the new ring's tail is %u after %u writes, wanted %u", ring->tail, count, tail);
  return OkStatus();
}

}  // namespace

bool IsAioRing(const pagemap::VmaInfo& v) { return v.path == "/[aio]" && v.shared; }

Status DescribeAioRing(pid_t pid, const pagemap::VmaInfo& v, img::Vma* m) {
  const uint64_t len = v.end - v.start;
  if (len < 4096 || len % 4096 != 0) return Errorf("process %d: AIO ring %#lx-%#lx has an odd size", pid, v.start, v.end);
  std::string bytes(len, '\0');
  iovec local{bytes.data(), len};
  iovec remote{reinterpret_cast<void*>(v.start), len};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(len)) {
    return ErrnoStatus("process " + std::to_string(pid) + ": read AIO ring at " + std::to_string(v.start));
  }
  RingHeader h;
  memcpy(&h, bytes.data(), sizeof(h));
  if (h.magic != kRingMagic || h.compat_features != kCompatFeatures || h.incompat_features != 0 ||
      h.header_length != sizeof(RingHeader) || h.nr != EventsIn(len) || h.head >= h.nr || h.tail >= h.nr) {
    return Errorf("process %d: AIO ring %#lx is not one this kernel made (magic %#x, %u events, head %u, tail %u)",
                  pid, v.start, h.magic, h.nr, h.head, h.tail);
  }
  img::AioRing* r = m->mutable_aio();
  r->set_nr(h.nr);
  r->set_head(h.head);
  r->set_tail(h.tail);
  r->set_events(bytes.substr(sizeof(RingHeader)));
  LOG_INFO("aio: process %d ring %#lx: %u events, head %u, tail %u", pid, v.start, h.nr, h.head, h.tail);
  return OkStatus();
}

Status RestoreAioRing(const img::Vma& v, uint64_t addr) {
  const img::AioRing& r = v.aio();
  const uint64_t len = v.end() - v.start();
  const std::string what = "AIO ring " + std::to_string(v.start());
  if (len < 4096 || r.nr() != EventsIn(len) || r.nr() < 3 || r.head() >= r.nr() || r.tail() >= r.nr() ||
      r.events().size() != len - sizeof(RingHeader)) {
    return Errorf("%s: bad ring in the image (%u events in %lu bytes, head %u, tail %u)", what.c_str(), r.nr(), len,
                  r.head(), r.tail());
  }
  // The kernel makes room for 2 * max(n, 4 * possible CPUs) + 2 events,
  // rounded up to whole pages: this n gives the old ring's pages back.
  const unsigned n = (r.nr() - 2) / 2;
  aio_context_t ctx = 0;
  if (syscall(SYS_io_setup, n, &ctx) != 0) return ErrnoStatus(what + ": io_setup(" + std::to_string(n) + ")");
  ContextGuard guard(ctx);
  auto* ring = reinterpret_cast<volatile RingHeader*>(ctx);
  if (ring->nr != r.nr()) {
    return Errorf("%s: io_setup(%u) made a ring of %u events, the old one had %u (more CPUs here?)", what.c_str(), n,
                  ring->nr, r.nr());
  }
  RETURN_IF_ERROR(MoveTail(ctx, r.nr(), r.head(), r.tail()).WithContext(what));
  memcpy(reinterpret_cast<char*>(ctx) + sizeof(RingHeader), r.events().data(), r.events().size());
  void* moved = mremap(reinterpret_cast<void*>(ctx), len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
                       reinterpret_cast<void*>(addr));
  if (moved == MAP_FAILED) return ErrnoStatus(what + ": move the ring into its slot");
  guard.Disarm();
  return OkStatus();
}

// --- check

ProbeResult ProbeAioRemap() {
  aio_context_t ctx = 0;
  if (syscall(SYS_io_setup, 1, &ctx) != 0) return ProbeFailed("io_setup", errno);
  ContextGuard guard(ctx);
  const uint32_t nr = reinterpret_cast<volatile RingHeader*>(ctx)->nr;
  const size_t len = (sizeof(RingHeader) + nr * sizeof(io_event) + 4095) & ~size_t{4095};
  void* to = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (to == MAP_FAILED) return ProbeFailed("mmap", errno);
  void* moved = mremap(reinterpret_cast<void*>(ctx), len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  if (moved == MAP_FAILED) {
    const int err = errno;
    munmap(to, len);
    return ProbeFailed("mremap of an AIO ring", err);
  }
  const aio_context_t at = reinterpret_cast<aio_context_t>(moved);
  guard.Moved(at);
  io_event ev;
  timespec zero{0, 0};
  const long got = syscall(SYS_io_getevents, at, 0, 1, &ev, &zero);
  if (got != 0) return ProbeFailed("io_getevents on the moved ring", got < 0 ? errno : EIO);
  return {true, ""};
}

}  // namespace cf::kinds
