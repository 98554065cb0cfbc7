#include "common/fault.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "common/interrupt.h"
#include "common/log.h"

namespace cf {

bool FaultArmed(const char* point) {
  const char* env = getenv("CF_FAULT");
  if (!env || !*env) return false;
  const size_t n = strlen(point);
  for (const char* p = env; *p;) {
    const char* comma = strchr(p, ',');
    const size_t len = comma ? static_cast<size_t>(comma - p) : strlen(p);
    if (len == n && strncmp(p, point, n) == 0) return true;
    if (!comma) break;
    p = comma + 1;
  }
  return false;
}

Status CheckFault(const char* point) {
  RETURN_IF_ERROR(CheckTerminated());
  if (!FaultArmed(point)) return OkStatus();
  LOG_WARN("fault: injecting failure at %s", point);
  return Error(std::string("fault injected at ") + point, EIO);
}

}  // namespace cf
