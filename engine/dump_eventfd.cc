// Eventfds: the counter and the mode. fdinfo prints the counter in hex
// ("eventfd-count") and, on newer kernels, the mode
// ("eventfd-semaphore"). Without that line the mode is found by one read
// through a copy of the descriptor, written back at once: a semaphore gives
// 1, a counter all of it. With a counter below 2 both read alike: taken as a
// counter.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/log.h"
#include "engine/shared_files.h"

namespace cf::engine {
namespace {

const std::string* Extra(const FdInfo& info, const char* key) {
  for (const auto& [k, v] : info.extra) {
    if (k == key) return &v;
  }
  return nullptr;
}

}  // namespace

Status ReadEventFd(pid_t pid, int fd, const FdInfo& info, img::Fd* out) {
  const std::string* count_text = Extra(info, "eventfd-count");
  if (!count_text) return Error("no eventfd-count in its fdinfo");
  char* end = nullptr;
  errno = 0;
  const uint64_t count = strtoull(count_text->c_str(), &end, 16);
  if (errno != 0 || end == count_text->c_str() || *end != '\0') {
    return Error("bad eventfd-count '" + *count_text + "' in its fdinfo");
  }
  out->set_eventfd_count(count);
  if (const std::string* sem = Extra(info, "eventfd-semaphore")) {
    if (*sem != "0" && *sem != "1") return Error("bad eventfd-semaphore '" + *sem + "' in its fdinfo");
    out->set_eventfd_semaphore(*sem == "1");
    return OkStatus();
  }
  if (count < 2) {
    LOG_DEBUG("files: process %d fd %d: eventfd mode unknown (old kernel, counter %lu): a counter", pid, fd, count);
    return OkStatus();
  }
  ASSIGN_OR_RETURN(UniqueFd copy, TakeFd(pid, fd));
  uint64_t got = 0;
  if (read(copy.get(), &got, sizeof(got)) != static_cast<ssize_t>(sizeof(got))) return ErrnoStatus("read eventfd");
  if (write(copy.get(), &got, sizeof(got)) != static_cast<ssize_t>(sizeof(got))) {
    return ErrnoStatus("write the eventfd's counter back");
  }
  out->set_eventfd_semaphore(got == 1);
  return OkStatus();
}

}  // namespace cf::engine
