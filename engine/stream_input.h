// Reading an image stream for restore and show: from stdin (--stream) or
// --stream-from PATH, unpacked and checked (streams/stream_stage.h).
#pragma once

#include "common/status.h"
#include "engine/options.h"
#include "streams/stream_stage.h"

namespace cf::engine {

// Unpacks the stream that |opts| names. An error when it is corrupt or cut
// inside a record; a stream without its trailer comes back with
// summary().complete false.
Result<streams::StagedImage> StageStream(const Options& opts);

// Whether |path| is a regular file that starts with a stream header.
bool IsStreamFile(const std::string& path);

}  // namespace cf::engine
