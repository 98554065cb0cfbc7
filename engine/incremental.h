// Incremental dumps: pre-dump, --prev-images-dir and the image chain.
//
// A pre-dump saves the memory of a tree that keeps running: it is frozen
// only while its mappings are listed and scanned (and write tracking is
// armed), then released, and its pages are read while it runs. A page read
// that way may be torn by a concurrent write; that is harmless, because the
// image stores each page with the hash of the very bytes stored, and a later
// increment takes a page from its parent only when tracking saw no write
// since the parent's scan, or when the page's bytes hash the same as the
// parent's. Pages unmapped before they are read are left out.
//
// The chain: each image gets a random id (Inventory.image_id); an increment
// records its parent's id and path (Inventory.parent_id, .parent, and a
// `parent` symlink in the images directory, as CRIU makes), and stores a page
// that is unchanged as a PARENT range instead of its bytes. Restore follows
// the chain (restore/images.h) and refuses a parent that is missing,
// replaced (another id) or damaged before creating any process.
//
// Content compare works on any kernel: every image that may become a parent
// (a pre-dump, or a dump with --prev-images-dir or --track-mem) stores the
// XXH3-128 hash of each page with content. Shared memory objects (shmem,
// memfd) are not pre-dumped: the final dump saves them in full.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "pagemap/parent_pages.h"
#include "restore/images.h"

namespace cf::engine {

// The parent image of a dump, as the page dump uses it.
struct DumpParent {
  restore::ParentImage image;
  std::map<int32_t, pagemap::ParentPages> pages;  // by pid

  // The parent's pages of process |pid|, or null when it has none.
  const pagemap::ParentPages* PagesOf(pid_t pid) const;
  // Its pagemap of |pid|, or null.
  const img::PageMap* PageMapOf(pid_t pid) const;
};

// Opens the parent image |prev| (relative to |images_dir| unless absolute)
// of a dump into |images_dir| (empty: a stream without an images directory;
// |prev| is then relative to the current directory). With |link|, points the
// `parent` symlink of |images_dir| at it first (CRIU's layout).
Result<std::unique_ptr<DumpParent>> OpenDumpParent(const std::string& images_dir, const std::string& prev,
                                                   bool link);

// A fresh random image id (32 hex digits).
std::string NewImageId();

}  // namespace cf::engine
