#include "common/log.h"
#include "engine/commands.h"

namespace cf::engine {

int RunRestore(const Options&) {
  LOG_ERROR("restore: not implemented in this version yet");
  return 1;
}

}  // namespace cf::engine
