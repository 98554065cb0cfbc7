// Write tracking without soft-dirty bits: userfaultfd write-protect in async
// mode (UFFD_FEATURE_WP_ASYNC, Linux 6.7).
//
// A VMA registered with a userfaultfd in write-protect mode, with the async
// feature, needs no handler: the first write to a write-protected page just
// clears the page's protection in the kernel (one minor fault), and
// PAGEMAP_SCAN reports such pages as PAGE_IS_WRITTEN; PM_SCAN_WP_MATCHING
// protects them again in the same walk (pagemap/scan.h ScanWritten). With
// WP_UNPOPULATED, pages never touched are protected too, so a page that
// appears later also reads as written.
//
// The userfaultfd belongs to the target's mm: it is made inside the target
// (engine/track.h makes it there by a remote system call and takes a copy)
// and may be used from any process after that. Registration lasts as long as
// some descriptor of it is open; closing the last one unregisters every VMA
// and drops the write protection. Whoever holds it between two dumps is
// engine/track.h's business.
#pragma once

#include <linux/userfaultfd.h>

#include <cstdint>

#include "common/fd.h"
#include "common/status.h"

// Linux 6.7 uapi; Debian 12's headers predate some of it.
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

namespace cf::pagemap {

// A userfaultfd of this process's mm (user-mode faults only, non-blocking,
// close-on-exec), its API handshake done with |features|.
Result<UniqueFd> OpenUserfaultfd(uint64_t features = 0);

// Turns on the write-tracking features on a fresh userfaultfd (UFFDIO_API).
Status EnableWriteTracking(int uffd);

// Registers [start, end) with |uffd| for missing pages, to be filled by
// UFFDIO_COPY (restore/memory.h, RegisterCopyFill). False, with nothing
// left registered, when the range cannot be (a VMA userfaultfd refuses,
// or no UFFDIO_COPY for it).
Result<bool> RegisterForCopy(int uffd, uint64_t start, uint64_t end);

// Undoes a registration of [start, end).
Status Unregister(int uffd, uint64_t start, uint64_t end);

// Registers [start, end) (whole VMAs) for write tracking with |uffd|.
// Returns false, with nothing changed, when the range cannot be tracked: a
// VMA of a kind userfaultfd refuses, or one already registered with another
// userfaultfd (EBUSY). Registering again with the same one is allowed.
Result<bool> RegisterForTracking(int uffd, uint64_t start, uint64_t end);

// True when this kernel offers async write-protect (checked once).
bool WriteTrackingSupported();

}  // namespace cf::pagemap
