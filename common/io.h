// Small file helpers: whole-file reads (for /proc), full writes and reads.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace cf {

// Reads a whole file (works for /proc files whose size reads as 0).
Result<std::string> ReadFile(const std::string& path);
// readlink() into a std::string.
Result<std::string> ReadLink(const std::string& path);
// write()/read() until done, retrying on EINTR and short transfers.
Status WriteAll(int fd, const void* buf, size_t len, const std::string& what);
// Returns the bytes read: less than |len| only at end of file.
Result<size_t> ReadFull(int fd, void* buf, size_t len, const std::string& what);

}  // namespace cf
