// Memory a child shares copy-on-write with its parent after fork: which
// VMAs fork hands down as they are. The dump stores the child's pages that
// still share their frame with the parent's as INHERITED (engine/page_dump.h);
// restore fills the parent first and hands those VMAs down by fork again, so
// the pages come back shared (restore/memory.h).
#pragma once

#include "criu_fast.pb.h"

namespace cf::kinds {

// Private memory that fork copies as it is, anonymous or a file's (whose
// written pages are anonymous copies): not dropped at fork (MADV_DONTFORK,
// VmFlag "dc"), not wiped ("wf"), not droppable ("dp"), and neither a shared
// object, hugetlb memory, an AIO ring nor a socket's rings.
bool ForkInherits(const img::Vma& v);

// Whether the child's |child| and the parent's |parent| are one VMA that
// fork handed down: both inherited as above, with the same kind, range,
// protection, flags, VmFlags and file.
bool SameAfterFork(const img::Vma& child, const img::Vma& parent);

}  // namespace cf::kinds
