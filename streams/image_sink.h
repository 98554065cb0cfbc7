// Where a dump puts its image files: a directory (one file each, as always)
// or a single stream (streams/stream.h) to stdout, a FIFO or a file. The
// dumper writes through this seam and does not otherwise care which it is.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "streams/image_file.h"

namespace cf::streams {

class ImageSink {
 public:
  virtual ~ImageSink() = default;

  // A new file of the image. Safe to call from several threads.
  virtual Result<ImageWriter> Create(const std::string& name, FileKind kind) = 0;
  // Whether this dump created a file of that name already.
  virtual bool Has(const std::string& name) const = 0;
  // A stream: files cannot be rewritten, the inventory goes first and the
  // trailer (Commit) marks the image complete. A directory: the inventory,
  // written last, is the mark.
  virtual bool streamed() const = 0;
  // The image is complete (a stream writes its trailer).
  virtual Status Commit() = 0;
  // The dump failed: removes what can be removed (a directory's files, a
  // stream's regular output file). A stream already sent stays without a
  // trailer, which its readers refuse.
  virtual void Abort() = 0;
  // For messages: the directory, or the stream's path ("stdout").
  virtual const std::string& where() const = 0;
};

// Creates |dir| if needed and removes a stale inventory.img from it first, so
// that a failed dump never leaves a directory that looks complete.
Result<std::unique_ptr<ImageSink>> OpenDirectorySink(const std::string& dir);

// A stream to |path| (opened for writing: a FIFO blocks here until its
// reader comes), or to stdout when |path| is empty. SIGPIPE is ignored from
// here on: a reader that goes away makes the dump fail with EPIPE instead of
// killing criu-fast while it holds a frozen tree.
Result<std::unique_ptr<ImageSink>> OpenStreamSink(const std::string& path);

}  // namespace cf::streams
