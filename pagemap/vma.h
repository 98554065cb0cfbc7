// The VMA model: one entry per line of /proc/PID/maps, with the VmFlags of
// /proc/PID/smaps when asked for.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cf::pagemap {

struct VmaInfo {
  uint64_t start = 0;
  uint64_t end = 0;
  uint32_t prot = 0;       // PROT_READ | PROT_WRITE | PROT_EXEC
  bool shared = false;     // 's' in the perms column (else 'p')
  uint64_t pgoff = 0;      // file offset in bytes
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  std::string path;        // "" for anonymous, "[heap]", "[stack]", "[vdso]", a file path...
  bool deleted = false;    // path ended with " (deleted)" (stripped from |path|)
  std::string vmflags;     // smaps "VmFlags:" value, e.g. "rd wr mr mw me ac sd" ("" if not parsed)
  int64_t resident_kb = -1;  // smaps Rss + Swap + Private_ and Shared_Hugetlb (kB); -1 if not parsed

  uint64_t size() const { return end - start; }
  uint64_t pages() const { return (end - start) / 4096; }
  bool is_file() const { return inode != 0; }   // backed by a file (or shmem/memfd)
  bool has_vmflag(std::string_view flag) const;  // e.g. "gd" (grows down), "ms" (may share)
};

// Parses the text of /proc/PID/maps.
Result<std::vector<VmaInfo>> ParseMaps(std::string_view text);
// Parses the text of /proc/PID/smaps: like ParseMaps, with vmflags filled.
Result<std::vector<VmaInfo>> ParseSmaps(std::string_view text);
// Reads and parses /proc/PID/maps, or /proc/PID/smaps when |with_vmflags|.
// smaps costs ~17 ms per GiB of resident memory (the kernel walks the page
// tables for its counters), so a dump reads maps while the target is frozen.
Result<std::vector<VmaInfo>> ReadVmas(pid_t pid, bool with_vmflags = false);

}  // namespace cf::pagemap
