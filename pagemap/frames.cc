#include "pagemap/frames.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "common/fd.h"

namespace cf::pagemap {
namespace {

constexpr uint64_t kPresent = 1ull << 63;
constexpr uint64_t kPfnMask = (1ull << 55) - 1;
constexpr uint64_t kBatch = 4096;  // entries per read (32 KiB)

}  // namespace

Result<FrameMap> FrameMap::Read(pid_t pid, std::span<const PageRange> ranges) {
  FrameMap m;
  const std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path);
  uint64_t total = 0;
  for (const PageRange& r : ranges) {
    if (r.empty()) continue;
    if (!m.ranges_.empty() && r.start < m.ranges_.back().end) return Error("frames: ranges out of order", EINVAL);
    m.ranges_.push_back(r);
    m.first_.push_back(total);
    total += r.pages();
  }
  m.frames_.resize(total);
  std::vector<uint64_t> buf(kBatch);
  uint64_t* out = m.frames_.data();
  for (const PageRange& r : m.ranges_) {
    for (uint64_t page = r.start >> kPageShift, left = r.pages(); left > 0;) {
      const uint64_t want = std::min(left, kBatch);
      const ssize_t got = pread(fd.get(), buf.data(), want * sizeof(uint64_t), static_cast<off_t>(page * sizeof(uint64_t)));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return ErrnoStatus("read " + path);
      const uint64_t n = static_cast<uint64_t>(got) / sizeof(uint64_t);
      if (n == 0) return Error("read " + path + ": short read", EIO);
      for (uint64_t i = 0; i < n; ++i) *out++ = (buf[i] & kPresent) ? (buf[i] & kPfnMask) : 0;
      page += n;
      left -= n;
    }
  }
  return m;
}

uint64_t FrameMap::FrameAt(uint64_t addr) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), addr,
                             [](uint64_t a, const PageRange& r) { return a < r.end; });
  if (it == ranges_.end() || it->start > addr) return 0;
  const size_t i = static_cast<size_t>(it - ranges_.begin());
  return frames_[first_[i] + ((addr - it->start) >> kPageShift)];
}

RangeSet FrameMap::SharedWith(const FrameMap& other) const {
  RangeSet out;
  for (size_t i = 0; i < ranges_.size(); ++i) {
    const PageRange& r = ranges_[i];
    for (uint64_t k = 0, n = r.pages(); k < n; ++k) {
      const uint64_t f = frames_[first_[i] + k];
      const uint64_t addr = r.start + (k << kPageShift);
      if (f != 0 && other.FrameAt(addr) == f) out.Append({addr, addr + kPageSize});
    }
  }
  return out;
}

}  // namespace cf::pagemap
