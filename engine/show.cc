#include "common/log.h"
#include "engine/commands.h"

namespace cf::engine {

int RunShow(const Options&) {
  LOG_ERROR("show: not implemented yet");
  return 1;
}

}  // namespace cf::engine
