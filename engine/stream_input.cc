#include "engine/stream_input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fd.h"
#include "common/io.h"
#include "common/log.h"
#include "common/timer.h"

namespace cf::engine {
namespace {

Result<UniqueFd> OpenStreamInput(const Options& opts, std::string* name) {
  if (opts.stream_from.empty()) {
    *name = "stdin";
    if (isatty(STDIN_FILENO)) return Error("no image stream on stdin (a terminal): pipe one in or use --stream-from");
    UniqueFd fd(fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0));
    if (!fd.valid()) return ErrnoStatus("stdin");
    return fd;
  }
  *name = opts.stream_from;
  UniqueFd fd(open(opts.stream_from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open stream " + opts.stream_from);
  return fd;
}

}  // namespace

Result<streams::StagedImage> StageStream(const Options& opts) {
  std::string name;
  ASSIGN_OR_RETURN(UniqueFd fd, OpenStreamInput(opts, &name));
  const uint64_t t0 = MonotonicNs();
  ASSIGN_OR_RETURN(streams::StagedImage staged, streams::StagedImage::Unpack(fd.get(), name));
  const streams::StreamSummary& s = staged.summary();
  LOG_INFO("stream: %s: %u files, %lu records, %lu bytes unpacked to %s in %.3f ms%s", name.c_str(), s.files,
           s.records, s.bytes, staged.dir().c_str(), static_cast<double>(MonotonicNs() - t0) / 1e6,
           s.complete ? "" : " (no trailer)");
  return staged;
}

bool IsStreamFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat sb;
  if (!fd.valid() || fstat(fd.get(), &sb) != 0 || !S_ISREG(sb.st_mode)) return false;
  streams::FileHeader h;
  auto n = ReadFull(fd.get(), &h, sizeof(h), path);
  return n.ok() && *n == sizeof(h) && h.magic == streams::kFileMagic &&
         h.kind == static_cast<uint16_t>(streams::FileKind::kStream);
}

}  // namespace cf::engine
