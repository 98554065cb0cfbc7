#include "kinds/fork_cow.h"

#include <string>

namespace cf::kinds {

bool ForkInherits(const img::Vma& v) {
  if (v.shmem_id() != 0 || v.huge_page_size() != 0) return false;
  // Private file mappings too (their written pages are anonymous copies),
  // but not an AIO ring or a packet socket's rings.
  const bool file = v.kind() == img::Vma::FILE_PRIVATE && !v.has_aio() && v.path().rfind("socket:", 0) != 0;
  if (v.kind() != img::Vma::ANON_PRIVATE && !file) return false;
  const std::string flags = " " + v.vmflags() + " ";
  for (const char* f : {" dc ", " wf ", " dp "}) {
    if (flags.find(f) != std::string::npos) return false;
  }
  return true;
}

bool SameAfterFork(const img::Vma& child, const img::Vma& parent) {
  return ForkInherits(child) && ForkInherits(parent) && child.kind() == parent.kind() &&
         child.start() == parent.start() && child.end() == parent.end() && child.prot() == parent.prot() &&
         child.flags() == parent.flags() && child.vmflags() == parent.vmflags() && child.pgoff() == parent.pgoff() &&
         child.dev() == parent.dev() && child.inode() == parent.inode() && child.path() == parent.path();
}

}  // namespace cf::kinds
