// AIO rings: the completion ring io_setup() maps into the process ("/[aio]"
// in maps, a shared mapping of the kernel's aio file). The context id that
// io_submit() and io_getevents() take is the ring's address.
//
// Dump. The ring is read from the frozen process: its header (the number of
// events it holds, the head where the program reaps, the tail where the
// kernel writes) and the events themselves. Requests still in flight are not
// seen (nor waited for, as CRIU does not): a request the kernel completes
// after the dump is lost with the old process.
//
// Restore. A new context is made in the restored process with io_setup(),
// asking for the number of events that gives a ring of the same size (the
// kernel doubles the request and adds two). The kernel keeps its own copy of
// the tail, so the new ring's tail is moved to the saved one by submitting
// that many one-byte writes to /dev/null, which complete at once; the head
// is the program's, set in the ring as the writes are reaped. Then the saved
// events are copied into the ring and the ring is moved (mremap, which the
// kernel follows: the context id becomes the new address) into its slot;
// the restorer moves it to its old address with the other VMAs.
#pragma once

#include <sys/types.h>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"
#include "pagemap/vma.h"

namespace cf::kinds {

// Whether |v| is an AIO ring.
bool IsAioRing(const pagemap::VmaInfo& v);

// Reads AIO ring |v| of frozen process |pid| into |m|.
Status DescribeAioRing(pid_t pid, const pagemap::VmaInfo& v, img::Vma* m);

// Makes AIO ring |v| (v.aio()) again in this process, at |addr|.
Status RestoreAioRing(const img::Vma& v, uint64_t addr);

// --- check
// io_setup, then the ring moved by mremap still answers io_getevents.
ProbeResult ProbeAioRemap();

}  // namespace cf::kinds
