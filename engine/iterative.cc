// `dump --iterative[=N]`: the migration pattern in one command. Pre-dumps
// run while the tree runs (each frozen only to scan and re-arm write
// tracking: engine/incremental.h), each saving only what was written since
// the one before, until the dirty set stops shrinking (a round stores more
// than 90% of the previous round's pages) or N rounds (default 6) are done;
// then the final dump, against the last round, saves only what changed
// since, with the options given (kill the tree, or -R).
//
// Layout: the rounds go to DIR/pre-1, DIR/pre-2, ... (each the parent of the
// next), the final image to DIR itself, so `restore -D DIR` follows the
// chain. --display-stats prints each round (pages and bytes stored, frozen
// time) before the final dump's statistics.
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/timer.h"
#include "criu_fast.pb.h"
#include "engine/commands.h"
#include "streams/image_file.h"

namespace cf::engine {
namespace {

struct Round {
  std::string dir;
  uint64_t pages = 0;
  uint64_t bytes = 0;
  uint64_t frozen_ns = 0;
  uint64_t wall_ns = 0;
};

Status ReadRoundStats(Round* r) {
  ASSIGN_OR_RETURN(streams::ImageReader rd,
                   streams::ImageReader::Open(r->dir + "/stats-dump.img", streams::FileKind::kStats));
  img::DumpStats st;
  RETURN_IF_ERROR(rd.ReadMessage(&st));
  r->pages = st.pages_written();
  r->bytes = st.bytes_written();
  r->frozen_ns = st.frozen_ns();
  return OkStatus();
}

}  // namespace

int RunIterativeDump(const Options& opts) {
  auto refuse = [](const char* why) {
    LOG_ERROR("--iterative: %s", why);
    return 1;
  };
  if (opts.command != Command::kDump) return refuse("only for dump");
  if (opts.stream) return refuse("the rounds go to directories: use -D, not a stream");
  if (opts.live) return refuse("cannot be combined with --live");
  if (!opts.prev_images_dir.empty()) return refuse("the rounds make their own parents: no --prev-images-dir");
  if (mkdir(opts.images_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    LOG_ERROR("--iterative: mkdir %s: %m", opts.images_dir.c_str());
    return 1;
  }
  Options base = opts;
  base.iterative = 0;
  base.log_file.clear();  // RunDump opened it: one log for every round
  std::vector<Round> rounds;
  std::string parent;
  for (int i = 1; i <= opts.iterative; ++i) {
    Options o = base;
    o.command = Command::kPreDump;
    o.dedup = -1;  // a pre-dump reads a running tree: never deduplicated (engine/dump.cc)
    o.images_dir = opts.images_dir + "/pre-" + std::to_string(i);
    o.prev_images_dir = parent.empty() ? "" : "../" + parent;
    o.track_mem = true;
    o.display_stats = false;
    o.leave_running = true;
    o.leave_stopped = false;
    Round r;
    r.dir = o.images_dir;
    const uint64_t t0 = MonotonicNs();
    if (int rc = RunDump(o); rc != 0) {
      LOG_ERROR("--iterative: round %d (pre-dump into %s) failed; the tree runs on", i, o.images_dir.c_str());
      return rc;
    }
    r.wall_ns = MonotonicNs() - t0;
    if (Status st = ReadRoundStats(&r); !st.ok()) {
      LOG_ERROR("--iterative: round %d: %s", i, st.ToString().c_str());
      return 1;
    }
    LOG_INFO("--iterative: round %d: %lu pages (%lu bytes) stored, frozen %.3f ms", i, r.pages, r.bytes,
             static_cast<double>(r.frozen_ns) / 1e6);
    rounds.push_back(r);
    parent = "pre-" + std::to_string(i);
    // Stop when the dirty set no longer shrinks by a tenth.
    if (rounds.size() >= 2 && r.pages * 10 >= rounds[rounds.size() - 2].pages * 9) break;
  }
  Options fin = base;
  fin.prev_images_dir = parent;
  if (opts.display_stats) {
    printf("Iterative dump: %zu pre-dump rounds, then the final dump\n", rounds.size());
    for (size_t i = 0; i < rounds.size(); ++i) {
      printf("  round %zu:         %lu pages, %.1f MB stored, frozen %.3f ms, %.3f ms in all\n", i + 1,
             rounds[i].pages, static_cast<double>(rounds[i].bytes) / 1e6,
             static_cast<double>(rounds[i].frozen_ns) / 1e6, static_cast<double>(rounds[i].wall_ns) / 1e6);
    }
    fflush(stdout);
  }
  return RunDump(fin);
}

}  // namespace cf::engine
