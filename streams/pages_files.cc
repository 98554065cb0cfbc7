#include "streams/pages_files.h"

#include <sys/stat.h>

#include <cstdio>

#include "streams/format.h"
#include "streams/stream.h"

namespace cf::streams {

std::string PagesFileName(int pid, uint32_t k) {
  char name[64];
  if (k > 0) {
    snprintf(name, sizeof(name), "pages-%d-%u.img", pid, k);
  } else {
    snprintf(name, sizeof(name), "pages-%d.img", pid);
  }
  return name;
}

Result<std::vector<std::string>> PagesFilePaths(const img::PageMap& pm, const std::string& pages_path) {
  std::vector<std::string> paths{pages_path};
  const size_t slash = pages_path.rfind('/');
  const std::string dir = slash == std::string::npos ? std::string() : pages_path.substr(0, slash + 1);
  for (const std::string& name : pm.extra_pages_files()) {
    if (!IsSafeFileName(name)) return Errorf("pagemap-%d.img: bad pages file name", pm.pid());
    paths.push_back(dir + name);
  }
  return paths;
}

Status CheckPagesFiles(const img::PageMap& pm, const std::string& pages_path) {
  if (pm.chunks_size() == 0) return OkStatus();
  ASSIGN_OR_RETURN(const std::vector<std::string> paths, PagesFilePaths(pm, pages_path));
  std::vector<std::optional<uint64_t>> sizes(paths.size());
  for (const img::ChunkRef& c : pm.chunks()) {
    if (c.file() >= paths.size()) {
      return Errorf("pagemap-%d.img: a chunk names pages file %u, the pagemap lists %zu", pm.pid(), c.file(),
                    paths.size());
    }
    std::optional<uint64_t>& size = sizes[c.file()];
    const std::string& path = paths[c.file()];
    if (!size) {
      struct stat st;
      if (stat(path.c_str(), &st) != 0) {
        const int err = errno;
        if (err == ENOENT) {
          return Error(path + ": missing (pages file " + std::to_string(c.file()) + " of process " +
                           std::to_string(pm.pid()) + ")",
                       ENOENT);
        }
        return ErrnoStatus(err, "open " + path);
      }
      size = static_cast<uint64_t>(st.st_size);
    }
    // The whole record: its two headers, then the stored bytes.
    constexpr uint64_t kHeaders = sizeof(RecordHeader) + sizeof(ChunkHeader);
    if (c.file_offset() > *size || c.stored_size() > *size - c.file_offset() ||
        c.stored_size() + kHeaders > *size - c.file_offset()) {
      return Error(path + ": truncated (a chunk lies past the end of the file)", EBADMSG);
    }
  }
  return OkStatus();
}

Result<PagesReader> PagesReader::Open(const img::PageMap& pm, const std::string& pages_path) {
  PagesReader r;
  r.pm_ = &pm;
  ASSIGN_OR_RETURN(r.paths_, PagesFilePaths(pm, pages_path));
  r.readers_.resize(r.paths_.size());
  for (const img::ChunkRef& c : pm.chunks()) {
    if (c.file() >= r.paths_.size()) {
      return Errorf("pagemap-%d.img: a chunk names pages file %u, the pagemap lists %zu", pm.pid(), c.file(),
                    r.paths_.size());
    }
    if (r.readers_[c.file()]) continue;
    ASSIGN_OR_RETURN(ImageReader one, ImageReader::Open(r.paths_[c.file()], FileKind::kPages));
    r.readers_[c.file()].emplace(std::move(one));
  }
  return r;
}

Status PagesReader::ReadChunk(int i, Record* rec) {
  if (i < 0 || i >= pm_->chunks_size()) return Errorf("pagemap-%d.img: no chunk %d", pm_->pid(), i);
  const img::ChunkRef& c = pm_->chunks(i);
  return readers_[c.file()]->ReadAt(c.file_offset(), rec);
}

const std::string& PagesReader::path_of(int i) const {
  const uint32_t f = i >= 0 && i < pm_->chunks_size() ? pm_->chunks(i).file() : 0;
  return paths_[f < paths_.size() ? f : 0];
}

}  // namespace cf::streams
