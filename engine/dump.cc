#include "common/log.h"
#include "engine/commands.h"

namespace cf::engine {

int RunDump(const Options&) {
  LOG_ERROR("dump: not implemented yet");
  return 1;
}

}  // namespace cf::engine
