// Loading a checkpoint's images for restore: the inventory and, per process,
// its core and pagemap, with every record's checksum verified.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "restore/memory.h"

namespace cf::restore {

// The counts of |pm|'s ranges the new process reads instead of them
// (restore/memory.h, PagemapSummary).
PagemapSummary SummarizePagemap(const img::PageMap& pm);

struct ProcessImages {
  img::Process core;
  img::PageMap pagemap;
  std::string pages_path;  // pages-PID.img
  // Incremental dumps: this process's pages in the parent images, nearest
  // first (a null pagemap where a parent has none of its pages).
  PageChain parents;
  // Every process's pages in this image (ImageSet::image_pages[0]).
  const ImagePages* image = nullptr;
  // Its family in ImageSet::processes (LinkFamily): the parent's index (-1
  // for the root), the children's indexes in image order.
  int parent = -1;
  std::vector<size_t> children;
  // Its pagemap's ranges counted for the new process (SummarizePagemap).
  PagemapSummary summary;

  // Where its memory comes from: this image, then the parents.
  PageChain chain() const;
};

// A parent image (pre-dump, or a dump an increment was made against): what
// restore reads of it is its pagemaps and pages.
struct ParentImage {
  std::string dir;
  img::Inventory inventory;
  std::map<int32_t, img::PageMap> pagemaps;  // by pid
  std::map<int32_t, std::string> pages_paths;
};

// The parent directory of the image in |dir| whose inventory is |inv|:
// CRIU's `parent` symlink in |dir| (when |use_link|), else the inventory's
// parent path (relative to |dir|).
Result<std::string> ParentDirOf(const std::string& dir, const img::Inventory& inv, bool use_link = true);

// Loads the parent image in |parent_dir|: its inventory and every pagemap.
// Checks that it is the image a child (in |child_dir|) was made against
// (|expected_id|, unless empty) and that its files are whole (checksums,
// chunks inside the pages files).
Result<ParentImage> LoadParentImage(const std::string& parent_dir, const std::string& expected_id,
                                    const std::string& child_dir);

struct ImageSet {
  std::string dir;
  img::Inventory inventory;
  std::vector<ProcessImages> processes;  // root first
  std::map<uint32_t, img::Shmem> shmems;  // shared memory objects, by id
  std::map<uint32_t, uint64_t> huge_shmems;  // hugetlb objects among them: page size, by id
  std::vector<ParentImage> parents;       // the chain of parent images, nearest first
  // Every process's pages per level of the chain ([0]: this image, [i]: the
  // parent parents[i-1]), where DUP references are resolved. The page
  // chains point into it and into |processes|: an ImageSet is moved, never
  // copied, once loaded.
  std::vector<ImagePages> image_pages;
};

// Every DUP range of an image's pagemaps (|image|: by pid) refers to pages
// that the named process of the same image stores as DATA; |dir| names the
// image in errors. LoadImages and LoadParentImage check it.
Status CheckDupRefs(const std::map<int32_t, const img::PageMap*>& image, const std::string& dir);

// Sets every process's |parent| and |children| from the pids in the cores
// (LoadImages does), so that no process looks for its family in the whole
// tree: a tree of N processes would cost N*N otherwise.
void LinkFamily(ImageSet* set);

// Fails with a clear message when the directory holds no complete image
// (no inventory.img: an interrupted dump) or a file is corrupt. An
// incremental image loads its chain of parents too, and every page a level
// takes from its parent must be there: a missing, replaced or damaged
// parent fails here, before any process is created.
// |parent_base|: where the image's parent path is relative to when |dir| is
// not the image's own directory (a stream unpacked in a staging directory).
Result<ImageSet> LoadImages(const std::string& dir, const std::string& parent_base = "");

// The page chains of |p|'s parent process, grandparent, ..., as far as
// pages are shared copy-on-write (INHERITED) down to |p|: where fork could
// not hand such pages down, they are filled from there (restore/memory.h).
std::vector<PageChain> LineageOf(const ImageSet& images, const ProcessImages& p);

}  // namespace cf::restore
