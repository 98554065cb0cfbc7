// The pages files of one process's pagemap. A large process's pages may be
// written by several writers, one file each (sched/page_pipeline.h): file 0
// is PageMap.pages_file, file k >= 1 is PageMap.extra_pages_files[k - 1], in
// the same directory; each ChunkRef names its file.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "streams/image_file.h"

namespace cf::streams {

// pages-PID.img, pages-PID-1.img, ...: the name of file |k| of process |pid|.
std::string PagesFileName(int pid, uint32_t k);

// The paths of every pages file of |pm|, |pages_path| (file 0) first.
// Refuses a name that is not a plain file name.
Result<std::vector<std::string>> PagesFilePaths(const img::PageMap& pm, const std::string& pages_path);

// Every chunk of |pm| names a pages file that exists and lies inside it:
// a missing or truncated file is refused here, before restore starts.
Status CheckPagesFiles(const img::PageMap& pm, const std::string& pages_path);

// Reads the chunks of one pagemap from its files; the files are opened on
// Open() (only those some chunk names). ReadChunk may be called from
// several threads at once.
class PagesReader {
 public:
  static Result<PagesReader> Open(const img::PageMap& pm, const std::string& pages_path);

  // Chunk |i| of the pagemap, checksum verified.
  Status ReadChunk(int i, Record* rec);
  // The file chunk |i| lies in, for messages.
  const std::string& path_of(int i) const;

 private:
  const img::PageMap* pm_ = nullptr;
  std::vector<std::string> paths_;
  std::vector<std::optional<ImageReader>> readers_;
};

}  // namespace cf::streams
