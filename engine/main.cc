// criu-fast: checkpoint/restore of Linux process trees.
//
// main() parses the options, sets up logging and dispatches to a command.
// Library exceptions (bad_alloc, protobuf, TBB) are caught here only.
#include <cstdio>
#include <exception>

#include "common/interrupt.h"
#include "common/log.h"
#include "engine/commands.h"
#include "engine/malloc_choice.h"
#include "engine/options.h"

// jemalloc's options, read when it starts: its memory in transparent huge
// pages where the system leaves that to madvise. A page fault costs several
// microseconds on virtual machines, and a dump of many small items (60,000
// mappings, 10,000 threads) faults in tens of megabytes of its own memory
// one page at a time; with huge pages that was 10-25% of the dump time, for
// about 20 MiB more peak RSS (README, "Scale"). A restore of a tree of
// processes takes 4 KiB pages instead (engine/malloc_choice.h), chosen
// below before jemalloc starts. MALLOC_CONF still overrides both.
extern "C" {
__attribute__((used)) const char* malloc_conf = cf::engine::kMallocConfHuge;
}

namespace {

// Run by the dynamic loader before any library's constructor, hence before
// the first allocation.
void ChooseMallocConf(int argc, char** argv, char** /*envp*/) {
  malloc_conf = cf::engine::ChooseMallocConf(argc, argv);
}
__attribute__((section(".preinit_array"), used)) void (*const choose_malloc_conf)(int, char**, char**) =
    ChooseMallocConf;

}  // namespace

int main(int argc, char** argv) {
  using namespace cf::engine;
  auto parsed = ParseOptions(argc, argv);
  if (!parsed.ok()) {
    if (parsed.status().message() == "help") {
      fputs(cf::engine::UsageText(), stdout);
      return 0;
    }
    if (parsed.status().message() == "version") {
      printf("Version: %s\n", CF_VERSION);
      return 0;
    }
    fprintf(stderr, "Error: %s\n", parsed.status().ToString().c_str());
    return 1;
  }
  const Options& opts = *parsed;
  cf::SetLogLevel(opts.verbosity);
  if (opts.command == Command::kDump || opts.command == Command::kPreDump || opts.command == Command::kRestore) {
    cf::CatchTerminationSignals();
  }
  try {
    switch (opts.command) {
      case Command::kDump:
      case Command::kPreDump:
        return RunDump(opts);
      case Command::kRestore:
        return RunRestore(opts);
      case Command::kCheck:
        return RunCheck(opts);
      case Command::kShow:
        return RunShow(opts);
      case Command::kMerge:
        return RunMerge(opts);
      case Command::kNone:
        break;
    }
  } catch (const std::exception& e) {
    fprintf(stderr, "Error: internal: %s\n", e.what());
    return 1;
  }
  return 1;
}
