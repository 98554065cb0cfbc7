#include "engine/incremental.h"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "common/fault.h"
#include "common/log.h"
#include "sched/page_pipeline.h"

namespace cf::engine {

const pagemap::ParentPages* DumpParent::PagesOf(pid_t pid) const {
  auto it = pages.find(pid);
  return it == pages.end() ? nullptr : &it->second;
}

const img::PageMap* DumpParent::PageMapOf(pid_t pid) const {
  auto it = image.pagemaps.find(pid);
  return it == image.pagemaps.end() ? nullptr : &it->second;
}

Result<std::unique_ptr<DumpParent>> OpenDumpParent(const std::string& images_dir, const std::string& prev,
                                                   bool link) {
  const std::string base = images_dir.empty() ? "." : images_dir;
  const std::string dir = prev[0] == '/' ? prev : base + "/" + prev;
  if (link) {
    const std::string at = base + "/parent";
    if (unlink(at.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("remove " + at);
    if (symlink(prev.c_str(), at.c_str()) != 0) return ErrnoStatus("link " + at + " to " + prev);
  }
  FAULT_POINT("parent-read");
  auto parent = std::make_unique<DumpParent>();
  ASSIGN_OR_RETURN(parent->image, restore::LoadParentImage(dir, "", base));
  for (const auto& [pid, pm] : parent->image.pagemaps) parent->pages.emplace(pid, sched::ParentPagesOf(pm));
  LOG_INFO("dump: parent image %s (%s): %zu processes", parent->image.dir.c_str(),
           parent->image.inventory.pre_dump() ? "pre-dump" : "dump", parent->image.pagemaps.size());
  return parent;
}

std::string NewImageId() {
  unsigned char b[16] = {};
  size_t got = 0;
  while (got < sizeof(b)) {
    const ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  char hex[33];
  for (size_t i = 0; i < sizeof(b); ++i) snprintf(hex + 2 * i, 3, "%02x", b[i]);
  return hex;
}

}  // namespace cf::engine
