#include "memdrain/page_reader.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <vector>

#include "common/fault.h"

namespace cf::memdrain {
namespace {

constexpr size_t kMaxIov = 1024;  // IOV_MAX

}  // namespace

Result<PageReader> PageReader::Open(pid_t pid, bool keep_shared) {
  const std::string path = "/proc/" + std::to_string(pid) + "/mem";
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open " + path);
  return PageReader(pid, std::move(fd), keep_shared);
}

Status PageReader::ReadMem(uint64_t addr, uint8_t* out, uint64_t len) const {
  while (len > 0) {
    ssize_t n = pread(mem_.get(), out, len, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return ErrnoStatus(n < 0 ? errno : EIO,
                         "read memory of " + std::to_string(pid_) + " at " + std::to_string(addr));
    }
    addr += static_cast<uint64_t>(n);
    out += n;
    len -= static_cast<uint64_t>(n);
  }
  return OkStatus();
}

Status PageReader::Read(std::span<const pagemap::PageRange> ranges, uint8_t* out, bool readable) const {
  FAULT_POINT("drain");
  if (!readable || keep_shared_) {
    for (const auto& r : ranges) {
      RETURN_IF_ERROR(ReadMem(r.start, out, r.bytes()));
      out += r.bytes();
    }
    return OkStatus();
  }
  iovec remote[kMaxIov];
  for (size_t i = 0; i < ranges.size();) {
    const size_t cnt = std::min(kMaxIov, ranges.size() - i);
    uint64_t total = 0;
    for (size_t j = 0; j < cnt; ++j) {
      remote[j] = {reinterpret_cast<void*>(ranges[i + j].start), ranges[i + j].bytes()};
      total += ranges[i + j].bytes();
    }
    iovec local{out, total};
    ssize_t n = process_vm_readv(pid_, &local, 1, remote, cnt, 0);
    if (n < 0) n = 0;  // fall back below for the whole batch
    // A short read stops at the first page it could not reach: read the rest
    // of the batch through /proc/PID/mem.
    uint64_t done = static_cast<uint64_t>(n);
    uint64_t skip = done;
    for (size_t j = 0; j < cnt; ++j) {
      const auto& r = ranges[i + j];
      if (skip >= r.bytes()) {
        skip -= r.bytes();
        continue;
      }
      RETURN_IF_ERROR(ReadMem(r.start + skip, out + done, r.bytes() - skip));
      done += r.bytes() - skip;
      skip = 0;
    }
    out += total;
    i += cnt;
  }
  return OkStatus();
}

}  // namespace cf::memdrain
