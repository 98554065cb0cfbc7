// `criu-fast show`: images as JSON, like CRIU's `crit show`.
#pragma once

#include <string>

#include "common/status.h"
#include "engine/options.h"

namespace cf::engine {

// JSON for an image directory or a single image file. A corrupt or truncated
// image is an error. For a directory without inventory.img the JSON is still
// built (inventory null) and *incomplete is set.
// A file that holds an image stream (streams/stream.h) is shown like the
// directory it stands for, with "stream" in place of "dir".
Result<std::string> ShowJson(const std::string& path, bool* incomplete);

// JSON for the stream that |opts| names (--stream: stdin, --stream-from
// PATH). *incomplete is set when the stream has no trailer.
Result<std::string> ShowStream(const Options& opts, bool* incomplete);

}  // namespace cf::engine
