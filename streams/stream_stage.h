// Unpacking a stream into a private directory of image files, so that the
// code that reads image directories (restore, show) runs on it unchanged.
//
// The directory is made with mkdtemp under /dev/shm (tmpfs, so the image is
// held in memory: it costs as much memory as the image's size) or, where
// there is no /dev/shm, under $TMPDIR or /tmp. Every file is written as it
// arrives and the whole stream is checked, up to its trailer, before the
// caller gets the directory; it is removed when the StagedImage goes away.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "streams/stream.h"

namespace cf::streams {

class StagedImage {
 public:
  // Reads the stream from |fd| (|name| names it in errors) to its end. A
  // corrupt or cut stream is an error and leaves nothing behind; a stream
  // without its trailer is staged with summary().complete false (show
  // prints it; restore refuses it).
  static Result<StagedImage> Unpack(int fd, const std::string& name);

  StagedImage(StagedImage&& o) noexcept;
  StagedImage& operator=(StagedImage&&) = delete;
  StagedImage(const StagedImage&) = delete;
  ~StagedImage() { Remove(); }

  const std::string& dir() const { return dir_; }
  const StreamSummary& summary() const { return summary_; }
  const std::string& name() const { return name_; }
  // Removes the files and the directory (at once, or when destroyed).
  void Remove();

 private:
  StagedImage() = default;

  std::string dir_;
  std::string name_;
  std::vector<std::string> files_;
  StreamSummary summary_;
};

}  // namespace cf::streams
