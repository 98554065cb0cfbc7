// Entry points of the CLI commands. Each returns the process exit code.
#pragma once

#include "engine/options.h"

namespace cf::engine {

int RunDump(const Options& opts);
// dump --iterative: pre-dump rounds, then the final dump (engine/iterative.cc).
int RunIterativeDump(const Options& opts);
int RunRestore(const Options& opts);
int RunCheck(const Options& opts);
int RunShow(const Options& opts);
// merge -D DIR OUT: an image and its parents as one image (engine/merge.cc).
int RunMerge(const Options& opts);

}  // namespace cf::engine
