#include "streams/stream_stage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "common/fd.h"
#include "common/io.h"

namespace cf::streams {
namespace {

std::string StageBase() {
  struct stat sb;
  if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0) return "/dev/shm";
  const char* tmp = getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

// Writes each file's records after a FileHeader of its kind, so every file
// is byte for byte what the stream carried for it.
class Stager : public StreamVisitor {
 public:
  Stager(const std::string& dir, std::vector<std::string>* files) : dir_(dir), files_(files) {}

  Status BeginFile(uint32_t id, const std::string& name, FileKind kind) override {
    const std::string path = dir_ + "/" + name;
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus("create staged image " + path);
    files_->push_back(name);
    names_[id] = name;
    FileHeader h{kFileMagic, kFormatVersion, static_cast<uint16_t>(kind)};
    RETURN_IF_ERROR(WriteAll(fd.get(), &h, sizeof(h), path));
    cur_ = std::move(fd);
    cur_id_ = id;
    return OkStatus();
  }

  Status FileRecord(uint32_t id, const RecordHeader& h, std::span<const uint8_t> payload) override {
    const std::string path = dir_ + "/" + names_[id];
    if (id != cur_id_) {
      // Records of files written side by side interleave: reopen (rare).
      cur_ = UniqueFd(open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
      if (!cur_.valid()) return ErrnoStatus("open staged image " + path);
      cur_id_ = id;
    }
    RETURN_IF_ERROR(WriteAll(cur_.get(), &h, sizeof(h), path));
    return WriteAll(cur_.get(), payload.data(), payload.size(), path);
  }

 private:
  const std::string& dir_;
  std::vector<std::string>* files_;
  std::map<uint32_t, std::string> names_;
  UniqueFd cur_;
  uint32_t cur_id_ = 0;
};

}  // namespace

StagedImage::StagedImage(StagedImage&& o) noexcept
    : dir_(std::exchange(o.dir_, std::string())),
      name_(std::move(o.name_)),
      files_(std::move(o.files_)),
      summary_(o.summary_) {}

Result<StagedImage> StagedImage::Unpack(int fd, const std::string& name) {
  StagedImage img;
  std::string tmpl = StageBase() + "/criu-fast-stream-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("create a staging directory in " + StageBase());
  img.dir_ = tmpl;
  img.name_ = name;
  Stager stager(img.dir_, &img.files_);
  ASSIGN_OR_RETURN(img.summary_, ReadStream(fd, name, &stager));
  return img;
}

void StagedImage::Remove() {
  if (dir_.empty()) return;
  for (const std::string& f : files_) unlink((dir_ + "/" + f).c_str());
  rmdir(dir_.c_str());
  dir_.clear();
  files_.clear();
}

}  // namespace cf::streams
