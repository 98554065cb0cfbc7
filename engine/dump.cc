// `criu-fast dump`: the orchestration of a checkpoint.
//
// Stages, each timed:
//   1. prepare   the images directory (a stale inventory.img is removed first,
//                so a failed dump never leaves a directory that looks complete)
//   2. seize     every thread of the tree (engine/seize.h); frozen from here
//   3. collect   descriptors the processes may share (pipes, socket pairs,
//                eventfds: one pass over the whole tree, engine/shared_files.h);
//                then per process: /proc state, descriptors, per-thread ptrace
//                state, then what only the task can tell, by remote syscalls
//                (sigactions, itimers, POSIX timers, ...)
//   4. pages     shared memory objects seen for the first time
//                (engine/shmem.h, while collecting); then the scan, drain and
//                write of every process's own memory (engine/page_dump.h),
//                processes side by side in one arena of --jobs workers
//   5. metadata  core and pagemap images, stats, and inventory.img last
//   6. finish    kill the tree, or let it run on with -R
// Any error before stage 6 rolls back: remote state is undone, every thread is
// detached (and runs on as before), and the files written are removed.
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <oneapi/tbb/parallel_for.h>

#include "common/fault.h"
#include "common/log.h"
#include "common/timer.h"
#include "engine/collect.h"
#include "engine/commands.h"
#include "engine/page_dump.h"
#include "engine/seize.h"
#include "engine/shared_files.h"
#include "engine/shmem.h"
#include "engine/stats.h"
#include "streams/image_file.h"

namespace cf::engine {
namespace {

class Dumper {
 public:
  explicit Dumper(const Options& opts) : opts_(opts) {}
  ~Dumper() {
    if (!committed_) RemoveWritten();
  }

  Status Run();
  const DumpCounters& stats() const { return stats_; }

 private:
  Status Prepare();
  // One process on its way through the dump.
  struct ProcessDump {
    pid_t pid = 0;
    img::Process proc;
    img::PageMap pagemap;
    DumpCounters stats;  // its page dump's counters, added to the dump's after
  };
  Status CollectProcess(const SeizedProcess& sp, ProcessDump* out);
  Status DumpProcessPages(ProcessDump* pd);
  Status DumpAllPages();
  Status WriteProcess(const ProcessDump& pd);
  Status WriteMessage(const std::string& name, streams::FileKind kind, const google::protobuf::MessageLite& msg);
  Status WriteInventory();
  void RemoveWritten();
  std::string Path(const std::string& name) const { return opts_.images_dir + "/" + name; }

  const Options& opts_;
  DumpCounters stats_;
  FrozenTree tree_;
  SharedFiles shared_;
  std::vector<std::string> written_;  // files of this dump, removed on failure
  std::vector<int32_t> pids_;
  PageDumpOptions page_opts_;
  std::optional<sched::Arena> arena_;  // --jobs workers, shared by every page dump
  std::vector<std::unique_ptr<ProcessDump>> dumps_;
  std::optional<ShmemSet> shmem_;  // shared memory objects, saved once each
  bool committed_ = false;
};

Status Dumper::Prepare() {
  struct stat sb;
  if (stat(opts_.images_dir.c_str(), &sb) != 0) {
    if (errno != ENOENT || mkdir(opts_.images_dir.c_str(), 0700) != 0) {
      return ErrnoStatus("images directory " + opts_.images_dir);
    }
  } else if (!S_ISDIR(sb.st_mode)) {
    return Error(opts_.images_dir + " is not a directory", ENOTDIR);
  }
  if (unlink(Path("inventory.img").c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("remove old " + Path("inventory.img"));
  }
  return OkStatus();
}

Status Dumper::WriteMessage(const std::string& name, streams::FileKind kind,
                            const google::protobuf::MessageLite& msg) {
  written_.push_back(name);
  ASSIGN_OR_RETURN(streams::ImageWriter w, streams::ImageWriter::Create(Path(name), kind));
  RETURN_IF_ERROR(w.WriteMessage(msg));
  return w.Finish();
}

Status Dumper::CollectProcess(const SeizedProcess& sp, ProcessDump* out) {
  const pid_t pid = sp.pid;
  img::Process& proc = out->proc;
  out->pid = pid;
  {
    ScopedTimer t(&stats_.collect_ns);
    RETURN_IF_ERROR(CollectProcessInfo(pid, &proc));
    RETURN_IF_ERROR(CollectMm(pid, &proc).status());
    RETURN_IF_ERROR(CollectFds(pid, opts_.shell_job, opts_.images_dir, shared_, &proc, &written_));
    for (const SeizedThread& t : sp.threads) RETURN_IF_ERROR(CollectThread(pid, t.tid, proc.add_threads()));
    RETURN_IF_ERROR(CollectSharedPending(pid, &proc));
    FAULT_POINT("collect");
    // Remote calls last: the thread's registers are already saved above.
    ASSIGN_OR_RETURN(memdrain::RemoteSyscall rs, memdrain::RemoteSyscall::Attach(pid, pid));
    RETURN_IF_ERROR(CollectByRemoteCalls(rs, &proc, proc.mutable_threads(0)));
    RETURN_IF_ERROR(CollectPosixTimers(rs, &proc));
    RETURN_IF_ERROR(rs.Restore());
    for (int i = 1; i < proc.threads_size(); ++i) {
      ASSIGN_OR_RETURN(memdrain::RemoteSyscall trs, memdrain::RemoteSyscall::Attach(pid, proc.threads(i).tid()));
      RETURN_IF_ERROR(CollectThreadByRemoteCalls(trs, pid, proc.mutable_threads(i)));
      RETURN_IF_ERROR(trs.Restore());
    }
  }

  // Shared memory objects this process maps or holds, the first time one is
  // seen in the tree.
  RETURN_IF_ERROR(shmem_->AddVmas(&proc, &stats_, &written_));
  for (img::Fd& f : *proc.mutable_fds()) {
    if (f.type() != img::Fd::MEMFD) continue;
    ASSIGN_OR_RETURN(uint32_t id, shmem_->AddMemfd(pid, f.fd(), f.dev(), f.inode(), f.path(), &proc, &stats_,
                                                   &written_));
    f.set_shmem_id(id);
  }
  const std::string pages_name = "pages-" + std::to_string(pid) + ".img";
  out->pagemap.set_pages_file(pages_name);
  written_.push_back(pages_name);
  stats_.processes++;
  stats_.threads += static_cast<uint32_t>(sp.threads.size());
  return OkStatus();
}

// Runs on a worker of the arena, beside other processes' page dumps: touches
// only |pd| (no ptrace request is made: see engine/page_dump.h).
Status Dumper::DumpProcessPages(ProcessDump* pd) {
  PageDumpOptions popts = page_opts_;
  popts.arena = &*arena_;
  ASSIGN_OR_RETURN(streams::ImageWriter pages,
                   streams::ImageWriter::Create(Path(pd->pagemap.pages_file()), streams::FileKind::kPages));
  RETURN_IF_ERROR(DumpPages(pd->pid, pd->proc, popts, &pages, &pd->pagemap, &pd->stats));
  return pages.Finish();
}

// The pages of every collected process, side by side: each process's page
// pipeline is a task of the one arena, so --jobs bounds them all together,
// and the in-order write stages of several processes (one file each) run at
// the same time instead of one after another.
Status Dumper::DumpAllPages() {
  const uint64_t start = MonotonicNs();
  std::vector<Status> results(dumps_.size());
  arena_->Execute([&] {
    tbb::parallel_for(size_t{0}, dumps_.size(), size_t{1}, [&](size_t i) {
      results[i] = DumpProcessPages(dumps_[i].get()).WithContext("dump of process " + std::to_string(dumps_[i]->pid));
    });
  });
  for (const auto& pd : dumps_) stats_.Add(pd->stats);
  // Stage times stay thread time; the pages stage is the wall time of all.
  stats_.pages_ns = MonotonicNs() - start;
  for (const Status& st : results) RETURN_IF_ERROR(st);
  return OkStatus();
}

Status Dumper::WriteProcess(const ProcessDump& pd) {
  const std::string sp = std::to_string(pd.pid);
  RETURN_IF_ERROR(WriteMessage("core-" + sp + ".img", streams::FileKind::kCore, pd.proc));
  RETURN_IF_ERROR(WriteMessage("pagemap-" + sp + ".img", streams::FileKind::kPageMap, pd.pagemap));
  pids_.push_back(pd.pid);
  return OkStatus();
}

Status Dumper::WriteInventory() {
  FAULT_POINT("inventory");
  img::Inventory inv;
  inv.set_format_version(streams::kFormatVersion);
  inv.set_tool_version(CF_VERSION);
  inv.set_root_pid(opts_.pid);
  for (int32_t p : pids_) inv.add_pids(p);
  inv.set_checksum("xxh64");
  inv.set_compression(opts_.compress);
  inv.set_leave_running(opts_.leave_running);
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  inv.set_dump_time_unix_ns(static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec));
  utsname u;
  if (uname(&u) == 0) inv.set_kernel(u.release);
  return WriteMessage("inventory.img", streams::FileKind::kInventory, inv);
}

void Dumper::RemoveWritten() {
  for (const std::string& name : written_) unlink(Path(name).c_str());
  written_.clear();
}

Status Dumper::Run() {
  const uint64_t start = MonotonicNs();
  RETURN_IF_ERROR(Prepare());
  page_opts_.force_pagemap_fallback = opts_.force_pagemap_fallback;
  page_opts_.jobs = opts_.jobs;
  ASSIGN_OR_RETURN(page_opts_.codec, streams::ParseCodec(opts_.compress));
  arena_.emplace(opts_.jobs);
  page_opts_.arena = &*arena_;
  shmem_.emplace(opts_.images_dir, page_opts_);

  uint64_t frozen_start = MonotonicNs();
  {
    ScopedTimer t(&stats_.seize_ns);
    RETURN_IF_ERROR(tree_.SeizeTree(opts_.pid));
  }
  {
    ScopedTimer t(&stats_.collect_ns);
    std::vector<pid_t> pids;
    for (const SeizedProcess& sp : tree_.processes()) pids.push_back(sp.pid);
    RETURN_IF_ERROR(shared_.Collect(pids));
  }
  // ptrace requests must come from the thread that seized the tree: every
  // process is collected here, one after another; then their pages are
  // dumped side by side on the arena's workers.
  for (const SeizedProcess& sp : tree_.processes()) {
    dumps_.push_back(std::make_unique<ProcessDump>());
    RETURN_IF_ERROR(CollectProcess(sp, dumps_.back().get()).WithContext("dump of process " + std::to_string(sp.pid)));
  }
  RETURN_IF_ERROR(DumpAllPages());
  for (const auto& pd : dumps_) RETURN_IF_ERROR(WriteProcess(*pd));
  RETURN_IF_ERROR(WriteMessage("stats-dump.img", streams::FileKind::kStats, stats_.ToProto()));
  RETURN_IF_ERROR(WriteInventory());

  // The image is complete: from here on nothing rolls back.
  committed_ = true;
  if (opts_.leave_running) {
    tree_.Release();
  } else {
    tree_.Kill();
  }
  const uint64_t end = MonotonicNs();
  stats_.frozen_ns = end - frozen_start;
  stats_.total_ns = end - start;
  // Rewrite the stats with the final times (best effort: the image is done).
  img::DumpStats final_stats = stats_.ToProto();
  auto w = streams::ImageWriter::Create(Path("stats-dump.img"), streams::FileKind::kStats);
  if (w.ok() && w->WriteMessage(final_stats).ok()) (void)w->Finish();
  LOG_INFO("dump: process tree %d dumped to %s (%s)", opts_.pid, opts_.images_dir.c_str(),
           opts_.leave_running ? "left running" : "killed");
  return OkStatus();
}

}  // namespace

int RunDump(const Options& opts) {
  if (opts.command == Command::kPreDump) {
    LOG_ERROR("pre-dump: not supported by this version yet");
    return 1;
  }
  if (!opts.log_file.empty()) {
    const std::string path = opts.log_file[0] == '/' ? opts.log_file : opts.images_dir + "/" + opts.log_file;
    mkdir(opts.images_dir.c_str(), 0700);
    if (!SetLogFile(path)) {
      LOG_ERROR("cannot open log file %s: %m", path.c_str());
      return 1;
    }
  }
  Dumper dumper(opts);
  Status s = dumper.Run();
  if (!s.ok()) {
    LOG_ERROR("%s", s.ToString().c_str());
    return 1;
  }
  if (opts.display_stats) dumper.stats().Print(stdout);
  return 0;
}

}  // namespace cf::engine
