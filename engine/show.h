// `criu-fast show`: images as JSON, like CRIU's `crit show`.
#pragma once

#include <string>

#include "common/status.h"

namespace cf::engine {

// JSON for an image directory or a single image file. A corrupt or truncated
// image is an error. For a directory without inventory.img the JSON is still
// built (inventory null) and *incomplete is set.
Result<std::string> ShowJson(const std::string& path, bool* incomplete);

}  // namespace cf::engine
