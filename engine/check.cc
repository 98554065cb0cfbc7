#include "common/log.h"
#include "engine/commands.h"

namespace cf::engine {

int RunCheck(const Options&) {
  LOG_ERROR("check: not implemented yet");
  return 1;
}

}  // namespace cf::engine
