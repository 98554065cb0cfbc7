#include "streams/image_sink.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <set>
#include <vector>

#include "common/fd.h"
#include "streams/stream.h"

namespace cf::streams {
namespace {

constexpr char kPartialInventory[] = "inventory.img.part";

class DirectorySink : public ImageSink {
 public:
  explicit DirectorySink(std::string dir) : dir_(std::move(dir)) {}

  // Safe to call from several threads (the pages of several processes are
  // written side by side).
  // The inventory, which makes the directory a complete image, is written
  // under a temporary name and renamed by Commit(): a dump killed at any
  // instant (even while writing it) leaves no inventory.img behind.
  Result<ImageWriter> Create(const std::string& name, FileKind kind) override {
    const std::string file = kind == FileKind::kInventory ? kPartialInventory : name;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (names_.insert(name).second) written_.push_back(file);
    }
    return ImageWriter::Create(dir_ + "/" + file, kind);
  }
  bool Has(const std::string& name) const override {
    std::lock_guard<std::mutex> lock(mu_);
    return names_.count(name) != 0;
  }
  bool streamed() const override { return false; }
  Status Commit() override {
    if (!names_.count("inventory.img")) return OkStatus();
    const std::string from = dir_ + "/" + kPartialInventory, to = dir_ + "/inventory.img";
    if (rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename " + from + " to " + to);
    std::lock_guard<std::mutex> lock(mu_);
    for (std::string& f : written_) {
      if (f == kPartialInventory) f = "inventory.img";
    }
    return OkStatus();
  }
  void Abort() override {
    for (const std::string& name : written_) unlink((dir_ + "/" + name).c_str());
    written_.clear();
    names_.clear();
  }
  const std::string& where() const override { return dir_; }

 private:
  mutable std::mutex mu_;
  std::string dir_;
  std::vector<std::string> written_;  // in creation order
  std::set<std::string> names_;
};

class StreamSink : public ImageSink {
 public:
  StreamSink(UniqueFd own, std::string path, bool regular, std::unique_ptr<StreamWriter> w)
      : own_(std::move(own)), path_(std::move(path)), regular_(regular), w_(std::move(w)) {}

  Result<ImageWriter> Create(const std::string& name, FileKind kind) override { return w_->BeginFile(name, kind); }
  bool Has(const std::string& name) const override { return w_->HasFile(name); }
  bool streamed() const override { return true; }
  Status Commit() override { return w_->Finish(); }
  void Abort() override {
    // A partial stream in a regular file is removed like a directory's
    // partial files; in a pipe it just ends without its trailer.
    if (regular_ && own_.valid()) unlink(path_.c_str());
  }
  const std::string& where() const override { return w_->name(); }

 private:
  UniqueFd own_;  // the output when given by path (held open until the sink goes: see dump.cc)
  std::string path_;
  bool regular_;
  std::unique_ptr<StreamWriter> w_;
};

}  // namespace

Result<std::unique_ptr<ImageSink>> OpenDirectorySink(const std::string& dir) {
  struct stat sb;
  if (stat(dir.c_str(), &sb) != 0) {
    if (errno != ENOENT || mkdir(dir.c_str(), 0700) != 0) return ErrnoStatus("images directory " + dir);
  } else if (!S_ISDIR(sb.st_mode)) {
    return Error(dir + " is not a directory", ENOTDIR);
  }
  const std::string inv = dir + "/inventory.img";
  if (unlink(inv.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("remove old " + inv);
  unlink((dir + "/" + kPartialInventory).c_str());
  return std::unique_ptr<ImageSink>(new DirectorySink(dir));
}

Result<std::unique_ptr<ImageSink>> OpenStreamSink(const std::string& path) {
  signal(SIGPIPE, SIG_IGN);
  UniqueFd own;
  int fd = STDOUT_FILENO;
  std::string name = "stdout";
  if (!path.empty()) {
    own = UniqueFd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!own.valid()) return ErrnoStatus("open stream output " + path);
    fd = own.get();
    name = path;
  } else if (isatty(fd)) {
    return Error("refusing to write an image stream to a terminal (redirect stdout or use --stream-to)");
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) return ErrnoStatus("stat stream output " + name);
  if (S_ISDIR(sb.st_mode)) return Error("stream output " + name + " is a directory", EISDIR);
  ASSIGN_OR_RETURN(std::unique_ptr<StreamWriter> w, StreamWriter::Start(fd, name));
  return std::unique_ptr<ImageSink>(new StreamSink(std::move(own), path, S_ISREG(sb.st_mode), std::move(w)));
}

}  // namespace cf::streams
