// `criu-fast dump`: the orchestration of a checkpoint.
//
// The image goes to a sink (streams/image_sink.h): a directory, or with
// --stream one stream to stdout or --stream-to PATH. Stages, each timed:
//   1. prepare   the sink: the images directory (a stale inventory.img is
//                removed first, so a failed dump never leaves a directory that
//                looks complete), or the stream's output and header
//   2. seize     every thread of the tree (ptrace/seize.h); frozen from here
//   3. collect   descriptors the processes may share (pipes, socket pairs,
//                eventfds: one pass over the whole tree, engine/shared_files.h);
//                then per process: /proc state, descriptors, per-thread ptrace
//                state, then what only the task can tell, by remote syscalls
//                (sigactions, itimers, POSIX timers, ...)
//   4. pages     shared memory objects seen for the first time
//                (kinds/shmem.h, while collecting); then the scan, drain and
//                write of every process's own memory (engine/page_dump.h),
//                processes side by side in one arena of --jobs workers;
//                a page equal to one stored already in the dump is stored
//                as a reference to it (sched/dedup.h: one table for the
//                tree, on where the tree stays frozen until every page is
//                read, see DedupOff)
//   5. metadata  cores as soon as each process is collected (before the
//                pages), pagemaps after them, stats, and inventory.img last
//                (in a stream the inventory goes first and a trailer marks
//                the end)
//   6. finish    kill the tree, or let it run on with -R (or leave it
//                stopped with --leave-stopped: SIGSTOP, then detach)
// With --drain vmsplice, each process's pages are also pinned in pipes by
// the drain parasite (memdrain/parasite.h) right after it is collected,
// while frozen; stage 4 then reads them out of the pipes. Without -R the
// tree is killed as soon as every page is pinned, before stage 4: the frozen
// time no longer includes writing the image (a later failure cannot roll
// back then: the images are removed and the error says so). With -R the
// pages are live and must be copied before the tree runs on, so the tree is
// released after stage 4 as usual. A pipe costs one descriptor (1 MiB of
// pages); a process that would take more than the descriptors left is
// drained with process_vm_readv instead, and the tree then stays frozen
// until the end.
// With -R (not --live, --drain vmsplice, --dedup), when the pages left to
// read after the scan are few (at most 64 MiB: an increment, a small tree),
// they are copied into memory while frozen and the tree runs on before stage
// 4 writes them (CopyAndRelease): the frozen time no longer includes
// compressing and writing.
// Any error before stage 6 rolls back: remote state is undone, every thread is
// detached (and runs on as before), and the files written are removed.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <oneapi/tbb/parallel_for.h>

#include "common/fault.h"
#include "common/interrupt.h"
#include "common/io.h"
#include "common/log.h"
#include "common/serial_worker.h"
#include "common/timer.h"
#include "engine/collect.h"
#include "engine/commands.h"
#include "engine/incremental.h"
#include "engine/live.h"
#include "engine/page_dump.h"
#include "engine/track.h"
#include "pagemap/frames.h"
#include "pagemap/scan.h"
#include "pagemap/uffd_track.h"
#include "pagemap/vma_prefetch.h"
#include "proc/proc_parse.h"
#include "memdrain/page_reader.h"
#include "memdrain/parasite.h"
#include "ptrace/remote_syscall.h"
#include "memdrain/pinned_pages.h"
#include "ptrace/seize.h"
#include "kinds/seccomp.h"
#include "engine/shared_files.h"
#include "engine/stats.h"
#include "kinds/cgroup.h"
#include "kinds/fdtable.h"
#include "kinds/ghost_file.h"
#include "kinds/net_lock.h"
#include "kinds/netns.h"
#include "kinds/shmem.h"
#include "kinds/pidns.h"
#include "kinds/timens.h"
#include "kinds/tty_session.h"
#include "streams/image_file.h"
#include "streams/image_sink.h"
#include "streams/pages_files.h"

namespace cf::engine {
using namespace ::cf::proc;  // /proc parsing, the layer below
using ::cf::tracing::FrozenTree;
using ::cf::tracing::SeizedProcess;
using ::cf::tracing::SeizedThread;
namespace {

// CopyAndRelease: the pages copied while frozen are held until written, a
// bound on criu-fast's memory.
constexpr uint64_t kMaxCopyBytes = 64ull << 20;

// Processes whose remote calls run side by side (CollectRemoteGroup): each
// stays attached, a return frame under its stack, until its group is done.
constexpr size_t kCollectGroup = 64;

// DecideMapsFirst: smaps is read beside the scan for a process with at
// least this many resident pages (256 MiB), this many of them per VMA, and
// no more VMAs than a maps file of this size lists (~500-800).
constexpr uint64_t kMapsFirstMinPages = 65536;
constexpr uint64_t kMapsFirstPagesPerVma = 256;
constexpr uint64_t kMapsFirstMaxMapsBytes = 64 * 1024;

// What the descriptor kinds may use while the tree is dumped.
class FdContext final : public kinds::DumpContext {
 public:
  FdContext(streams::ImageSink* sink, const Options& opts, kinds::ShmemSet* shmem,
            std::unique_ptr<kinds::NetLock>* net_lock)
      : sink_(sink),
        opts_(opts),
        shell_job_(opts.shell_job),
        file_locks_(opts.file_locks),
        ext_unix_sk_(opts.ext_unix_sk),
        ext_unix_sk_ids_(opts.ext_unix_sk_ids),
        ghost_limit_(opts.ghost_limit),
        shmem_(shmem),
        net_lock_(net_lock) {}
  streams::ImageSink* sink() override { return sink_; }
  bool shell_job() const override { return shell_job_; }
  uint64_t ghost_limit() const override { return ghost_limit_; }
  bool file_locks() const override { return file_locks_; }
  bool link_remap() const override { return opts_.link_remap; }
  void NoteLinkRemap(const std::string& path) override { links_.push_back(path); }
  // The image needs the links: the tree was killed after a complete dump.
  void KeepLinks() { links_.clear(); }
  ~FdContext() override {
    for (const std::string& l : links_) {
      if (unlink(l.c_str()) != 0) LOG_WARN("--link-remap: cannot remove %s: %m", l.c_str());
    }
  }
  bool ext_unix_sk(uint64_t inode) const override {
    return ext_unix_sk_ && (ext_unix_sk_ids_.empty() ||
                            std::find(ext_unix_sk_ids_.begin(), ext_unix_sk_ids_.end(), inode) != ext_unix_sk_ids_.end());
  }
  Result<uint32_t> AddMemfd(pid_t pid, const img::Fd& f, img::Process* core) override {
    return shmem_->AddMemfd(pid, f.fd(), f.dev(), f.inode(), f.path(), core);
  }
  bool tcp_established() const override { return opts_.tcp_established; }
  bool skip_in_flight() const override { return opts_.skip_in_flight; }
  bool tcp_close() const override { return opts_.tcp_close; }
  Result<kinds::NetLock*> net_lock() override {
    if (!*net_lock_) {
      ASSIGN_OR_RETURN(*net_lock_, kinds::NetLock::Start(opts_.pid, opts_.network_lock));
    }
    return net_lock_->get();
  }

 private:
  streams::ImageSink* sink_;
  const Options& opts_;
  bool shell_job_;
  bool file_locks_;
  bool ext_unix_sk_;
  std::vector<uint64_t> ext_unix_sk_ids_;
  uint64_t ghost_limit_;
  kinds::ShmemSet* shmem_;
  std::unique_ptr<kinds::NetLock>* net_lock_;
  std::vector<std::string> links_;  // made by --link-remap, removed unless kept
};

class Dumper {
 public:
  // |maps_first|: the VMAs may be listed from /proc/PID/maps while smaps is
  // read beside the scan (MapsFirst); false when dumping again because
  // smaps did not agree.
  explicit Dumper(const Options& opts, bool maps_first = true) : opts_(opts), maps_first_(maps_first) {}
  ~Dumper() {
    kinds::SetTreeNetns(-1);
    if (!committed_ && sink_) sink_->Abort();
    // Before tree_ lets the tree run on.
    if (!killed_) shared_.PutBack();
  }

  Status Run();
  const DumpCounters& stats() const { return stats_; }
  bool pre_dump() const { return opts_.command == Command::kPreDump; }
  // --live: the tree changed memory not saved yet (munmap, madvise, mremap,
  // exit): the dump failed, the tree runs on.
  bool live_changed() const { return live_changed_; }
  // The VMAs smaps listed did not agree with those the pages were scanned
  // by (SettleVmas): the dump failed, the tree runs on.
  bool vmas_disagreed() const { return vmas_disagreed_; }
  // A failure caused by a process of the tree dying under us (killed by
  // someone else) says so first: the low-level error alone (EIO, ESRCH)
  // would not tell why.
  Status ExplainVanished(Status s) const;

 private:
  Status Prepare();
  // Why deduplication by content cannot be used in this dump, or null.
  const char* DedupOff() const;
  Status SetUpDedup();
  Status RunPreDump(uint64_t start);
  // One process on its way through the dump.
  struct ProcessDump {
    pid_t pid = 0;
    img::Process proc;
    img::PageMap pagemap;
    DumpCounters stats;  // its page dump's counters, added to the dump's after
    // --drain vmsplice: the scanned pages and, when they fit in the pipe
    // budget, the pipes holding them.
    bool scanned = false;
    TrackScan track;  // write tracking (incremental dumps)
    std::vector<sched::PageSource> sources;
    std::unique_ptr<memdrain::PinnedPages> pinned;
    bool live = false;  // --live: its pages are saved while it runs (live_)
    bool maps_first = false;  // VMAs from maps; smaps' VmFlags not adopted yet (SettleVmas)
    // Copy-on-write sharing (engine/page_dump.h): the frames of its private
    // anonymous pages, kept while children in the tree may compare theirs;
    // the pages it shares with its parent (INHERITED, not read).
    std::optional<pagemap::FrameMap> frames;
    pagemap::RangeSet inherited;
  };
  Status ScanProcess(ProcessDump* pd);
  Status FindShared(ProcessDump* pd, pid_t parent);
  // Whether |pid|'s pages are read without pinning them: a tree that runs
  // on after the read keeps what its processes share copy-on-write
  // (memdrain/page_reader.h; its children's copies are INHERITED, not read;
  // --live finds no INHERITED pages: every process of a tree is read so).
  bool KeepShared(pid_t pid) const {
    if (!pre_dump() && !opts_.leave_running) return false;
    return has_children_.count(pid) != 0 || (opts_.live && tree_.processes().size() > 1);
  }
  void FindCowTree();
  Status PinProcess(ProcessDump* pd);
  void SetUpTracking(ProcessDump* pd);
  void InitPipeBudget();
  // A process collected up to its remote calls, which run beside those of
  // the other processes of its group (CollectRemoteGroup).
  struct PendingRemote {
    std::unique_ptr<kinds::ProcessSource> src;
    tracing::RemoteSites sites;
    std::optional<tracing::RemoteSyscall> rs;
  };
  Status CollectProcess(const SeizedProcess& sp, ProcessDump* out, PendingRemote* remote);
  Status FinishCollect(const SeizedProcess& sp, ProcessDump* out);
  Status AfterCollect(ProcessDump* pd, bool vmsplice);
  Status CollectCgroups();
  Status CollectNetns(const std::vector<pid_t>& pids);
  Status DumpProcessPages(ProcessDump* pd);
  Status DumpAllPages();
  Status DumpPagesOf(const std::vector<ProcessDump*>& which);
  Status ArmLive(ProcessDump* pd);
  Status RunLiveSave(uint64_t frozen_start, uint64_t* released);
  Result<bool> CopyAndRelease(uint64_t* released);
  void PrepareCopyBuffer();
  bool MapsFirst() const;
  void DecideMapsFirst();
  // |before_pages|: no page was read yet (a full dump), so a droppable
  // VMA can still be set right.
  Status SettleVmas(bool before_pages);
  Status ReleaseTree();
  Status WriteCore(const ProcessDump& pd);
  Status WriteMessage(const std::string& name, streams::FileKind kind, const google::protobuf::MessageLite& msg);
  Status WriteInventory();
  Status FinishImage();
  void KeepTracking();
  void StartVmaPrefetch();

  const Options& opts_;
  DumpCounters stats_;
  // Declared before tree_, so destroyed after it: a stream's output stays
  // open until the tree was killed or released (a restore reading the stream
  // waits for its end, when the pids it needs are being freed).
  std::unique_ptr<streams::ImageSink> sink_;
  FrozenTree tree_;
  // The tree's network namespace when it is not ours (kinds/netns.h), and
  // what it holds; outlives the lock made in it.
  std::unique_ptr<kinds::TreeNetns> netns_;
  std::optional<img::NetNs> net_ns_;
  // Declared after tree_, so undone (connections out of repair mode,
  // unlocked) before a failed dump lets the tree run again.
  std::unique_ptr<kinds::NetLock> net_lock_;
  SharedFiles shared_;
  std::vector<int32_t> pids_;
  PageDumpOptions page_opts_;
  std::optional<sched::Arena> arena_;  // --jobs workers, shared by every page dump
  pagemap::VmaPrefetch vma_prefetch_;  // the frozen processes' smaps, read in the background
  std::vector<std::unique_ptr<ProcessDump>> dumps_;
  int writer_jobs_ = 1;  // jobs per process of the page dumps running (bounds its pages files)
  // Pages a child shares copy-on-write with its parent are found by frame
  // (ScanProcess): in a frozen dump of more than one process.
  bool share_cow_ = false;
  std::set<pid_t> has_children_;              // processes with a child in the tree
  std::map<pid_t, ProcessDump*> by_pid_;      // collected so far
  uint64_t pipe_budget_ = 0;  // --drain vmsplice: pipes (descriptors) we may hold
  uint64_t pipes_held_ = 0;
  std::optional<kinds::ShmemSet> shmem_;  // shared memory objects, saved once each
  std::optional<FdContext> fd_ctx_;
  std::unique_ptr<DumpParent> parent_;  // --prev-images-dir
  // Deduplication by content (sched/dedup.h): the table, and a reader of
  // each process to compare a candidate with the page stored already.
  std::map<int32_t, memdrain::PageReader> dedup_readers_;
  std::unique_ptr<sched::DedupTable> dedup_;
  std::optional<kinds::CgroupCollect> cgroups_;  // unset: --manage-cgroups=ignore
  kinds::FdTables fd_tables_;  // descriptor tables shared between processes
  WriteTracking tracking_;  // userfaultfds: taken from the parent's keeper, or made here
  bool arm_ = false;        // leave write tracking armed for the next increment
  std::string tracker_;     // the keeper holding it, once handed over
  // --live. Declared after tree_, so destroyed before it: a failed dump
  // closes the userfaultfds (every blocked thread runs on) before the rest.
  std::unique_ptr<LiveSave> live_;
  const std::string image_id_ = NewImageId();
  bool committed_ = false;
  bool killed_ = false;
  bool live_changed_ = false;
  const bool maps_first_;
  bool maps_first_pays_ = false;  // DecideMapsFirst
  bool vmas_disagreed_ = false;
  // Memory faulted in before the freeze for CopyAndRelease's copies
  // (PrepareCopyBuffer); handed out from the front.
  struct CopyBuffer {
    uint8_t* base = nullptr;
    uint64_t size = 0;
    uint64_t used = 0;
    CopyBuffer() = default;
    CopyBuffer(const CopyBuffer&) = delete;
    CopyBuffer& operator=(const CopyBuffer&) = delete;
    ~CopyBuffer() {
      if (base != nullptr) munmap(base, size);
    }
    uint8_t* Take(uint64_t bytes) {
      if (base == nullptr || size - used < bytes) return nullptr;
      uint8_t* p = base + used;
      used += bytes;
      return p;
    }
  } copy_buf_;
  // What follows the collection of each process of a tree and needs no
  // ptrace request (its core written, its pages scanned, the pages it
  // shares with its parent found), done in tree order beside the tracer
  // thread's collection of the next processes (AfterCollect). Declared
  // after the dumps its jobs use: destroyed (its thread joined) before them.
  SerialWorker after_collect_;
  bool after_collect_beside_ = false;
  // With after_collect_beside_: each process's properties read from /proc
  // (PropsPart::kUntraced), read ahead in tree order on a worker of their
  // own while the tracer thread collects the processes before it; taken by
  // CollectProcess. The jobs never fail (so none is dropped): a read's
  // failure is kept in its entry. The worker is declared after the entries,
  // so it is joined before they go.
  struct Prefetched {
    std::unique_ptr<kinds::ProcessSource> src;
    img::Process props;
    Status status;
    std::promise<void> done;
    bool taken = false;  // by CollectProcess (tracer thread only)
  };
  std::unordered_map<pid_t, std::unique_ptr<Prefetched>> prefetched_;
  SerialWorker props_prefetch_;
  void StartPropsPrefetch();
};

// Deduplication compares a page whose hash matches one stored earlier in the
// dump with that page, read again from its process: only where the whole
// tree stays frozen until every page is read.
const char* Dumper::DedupOff() const {
  if (pre_dump()) return "a pre-dump reads the tree while it runs";
  if (opts_.live) return "--live saves the pages while the tree runs";
  if (opts_.drain == "vmsplice" && !opts_.leave_running) {
    return "--drain vmsplice without -R kills the tree once its pages are pinned: stored pages cannot be read again";
  }
  return nullptr;
}

Status Dumper::SetUpDedup() {
  // Off unless asked for: it costs frozen time in every dump (README,
  // "Incremental dumps"), and saves only where a tree holds equal pages.
  if (opts_.dedup != 1) {
    stats_.dedup = opts_.dedup == 0 ? "off (--no-dedup)" : "off (the default; --dedup turns it on)";
    return OkStatus();
  }
  if (const char* why = DedupOff()) {
    LOG_DEBUG("dump: no deduplication of pages by content: %s", why);
    stats_.dedup = std::string("off: ") + why;
    return OkStatus();
  }
  // The table is sized up front for the tree's anonymous resident pages
  // (RssAnon: about what will be entered), so it does not grow meanwhile.
  uint64_t expected = 0;
  for (const auto& pd : dumps_) {
    ASSIGN_OR_RETURN(memdrain::PageReader r, memdrain::PageReader::Open(pd->pid, KeepShared(pd->pid)));
    dedup_readers_.emplace(pd->pid, std::move(r));
    if (auto status = ReadFile("/proc/" + std::to_string(pd->pid) + "/status"); status.ok()) {
      const size_t at = status->find("RssAnon:");
      if (at != std::string::npos) expected += strtoull(status->c_str() + at + 8, nullptr, 10) / 4;  // kB
    }
  }
  dedup_ = std::make_unique<sched::DedupTable>(
      [this](const sched::DedupTable::Ref& ref, uint8_t* out) -> Status {
        auto it = dedup_readers_.find(ref.pid);
        if (it == dedup_readers_.end()) return Errorf("dedup: process %d is not in the tree", ref.pid);
        const pagemap::PageRange one{ref.vaddr, ref.vaddr + pagemap::kPageSize};
        return it->second.Read({&one, 1}, out, true);  // falls back to /proc/PID/mem where unreadable
      },
      expected);
  page_opts_.dedup = dedup_.get();
  stats_.dedup = "on";
  LOG_DEBUG("dump: pages equal to one stored earlier in the dump are stored as references (dedup)");
  return OkStatus();
}

Status Dumper::Prepare() {
  if (opts_.dedup == 1) {
    if (const char* why = DedupOff()) return Errorf("--dedup cannot be used here: %s", why);
  }
  if (opts_.live) {
    // What a live save cannot be combined with (yet), refused before the
    // tree is touched.
    if (pre_dump()) return Error("--live is for dump -R: a pre-dump already runs the tree while it reads", EINVAL);
    if (!opts_.leave_running || opts_.leave_stopped) {
      return Error("--live needs -R (the tree runs on while its pages are saved)", EINVAL);
    }
    if (opts_.drain != "read") return Error("--live reads pages with --drain read; --drain " + opts_.drain +
                                            " is not supported with it", EINVAL);
    if (opts_.track_mem || !opts_.prev_images_dir.empty()) {
      return Error("--live cannot be combined with --track-mem or --prev-images-dir yet "
                   "(a mapping has one userfaultfd: write tracking uses an asynchronous one)", EINVAL);
    }
    if (opts_.force_pagemap_fallback) return Error("--live needs PAGEMAP_SCAN (not --no-pagemap-scan)", EINVAL);
  }
  if (opts_.stream) {
    ASSIGN_OR_RETURN(sink_, streams::OpenStreamSink(opts_.stream_to));
  } else {
    ASSIGN_OR_RETURN(sink_, streams::OpenDirectorySink(opts_.images_dir));
  }
  if (!opts_.prev_images_dir.empty()) {
    ASSIGN_OR_RETURN(parent_, OpenDumpParent(opts_.stream ? std::string() : opts_.images_dir,
                                             opts_.prev_images_dir, !opts_.stream));
    const std::string& keeper = parent_->image.inventory.tracker();
    if (!keeper.empty()) tracking_ = WriteTracking::FromKeeper(keeper);
    stats_.tracking = tracking_.empty() ? "hash" : "uffd-wp";
  }
  // A pre-dump always leaves tracking for the next increment; a dump does
  // with --track-mem when the tree runs on (-R).
  arm_ = (pre_dump() || (opts_.track_mem && opts_.leave_running)) && !opts_.force_pagemap_fallback &&
         pagemap::WriteTrackingSupported();
  if (arm_ && stats_.tracking.empty()) stats_.tracking = "uffd-wp";
  return OkStatus();
}

// On the ptrace thread, while the process is frozen: its userfaultfd (the
// one the parent's scan armed, or a new one made inside it when tracking is
// to be left armed).
void Dumper::SetUpTracking(ProcessDump* pd) {
  const uint64_t start_time = pd->pagemap.start_time();
  pd->track.parent = parent_ ? parent_->PagesOf(pd->pid) : nullptr;
  if (pd->track.parent != nullptr) {
    const img::PageMap* ppm = parent_->PageMapOf(pd->pid);
    // Another process under the same pid: the parent's tracking is not its.
    if (ppm != nullptr && ppm->start_time() != start_time) pd->track.parent = nullptr;
  }
  pd->track.uffd = tracking_.Inherited(pd->pid, start_time);
  pd->track.inherited = pd->track.uffd >= 0;
  pd->track.rearm = arm_;
  if (arm_ && pd->track.uffd < 0) {
    ScopedTimer t(&stats_.track_ns);
    auto fd = tracking_.Create(pd->pid, start_time);
    if (fd.ok()) {
      pd->track.uffd = *fd;
    } else {
      LOG_WARN("dump: process %d: write tracking not armed (%s): its next increment compares contents",
               pd->pid, fd.status().ToString().c_str());
    }
  }
}

Status Dumper::WriteMessage(const std::string& name, streams::FileKind kind,
                            const google::protobuf::MessageLite& msg) {
  ASSIGN_OR_RETURN(streams::ImageWriter w, sink_->Create(name, kind));
  RETURN_IF_ERROR(w.WriteMessage(msg));
  return w.Finish();
}

Status Dumper::CollectProcess(const SeizedProcess& sp, ProcessDump* out, PendingRemote* remote) {
  const pid_t pid = sp.pid;
  img::Process& proc = out->proc;
  out->pid = pid;
  {
    ScopedTimer t(&stats_.collect_ns);
    // The process's properties (kinds/process_props.h), then the memory,
    // the descriptors and the threads' properties (kinds/thread_props.h).
    auto pf = prefetched_.find(pid);
    if (pf != prefetched_.end() && !pf->second->taken) {
      // The entry stays until the worker is joined (set_value may still be
      // returning when the wait ends).
      Prefetched* p = pf->second.get();
      p->taken = true;
      p->done.get_future().wait();
      RETURN_IF_ERROR(p->status);
      remote->src = std::move(p->src);
      proc = std::move(p->props);
      RETURN_IF_ERROR(CollectProcessProps(*remote->src, &proc, PropsPart::kTraced));
    } else {
      remote->src = std::make_unique<kinds::ProcessSource>(pid);
      RETURN_IF_ERROR(CollectProcessProps(*remote->src, &proc));
    }
    kinds::ProcessSource& src = *remote->src;
    RETURN_IF_ERROR(CollectFds(pid, *fd_ctx_, shared_, &proc));
    if (opts_.shell_job) {
      std::set<pid_t> tree;
      for (const SeizedProcess& p : tree_.processes()) {
        tree.insert(p.pid);
        tree.insert(p.zombies.begin(), p.zombies.end());
      }
      kinds::MarkOutsideIds(tree, &proc);
    }
    for (const SeizedThread& t : sp.threads) RETURN_IF_ERROR(CollectThread(pid, t.tid, proc.add_threads()));
    RETURN_IF_ERROR(kinds::CollectSeccompFilters(pid, &proc));
    // A job-control stop holds the whole thread group: one signal for all.
    for (const SeizedThread& t : sp.threads) {
      if (t.group_stopped) proc.set_stop_signal(static_cast<uint32_t>(t.stop_signal));
    }
    for (pid_t z : sp.zombies) RETURN_IF_ERROR(CollectZombie(z, proc.add_zombies()));
    // The VMAs, read in the background since the seize (pagemap/vma_prefetch.h),
    // are taken as late as possible but before the first remote call, which
    // maps a scratch page.
    std::vector<pagemap::VmaInfo> vmas;
    ASSIGN_OR_RETURN(const proc::ProcStat* stat, src.StatFile());
    out->pagemap.set_start_time(stat->start_time);
    if (MapsFirst()) {
      // Or listed from maps now, smaps' VmFlags adopted after the scan (SettleVmas).
      out->maps_first = true;
      ASSIGN_OR_RETURN(vmas, CollectMm(pid, &proc, pagemap::ReadVmas(pid, /*with_vmflags=*/false), stat));
    } else {
      ASSIGN_OR_RETURN(vmas, CollectMm(pid, &proc, vma_prefetch_.Take(pid), stat));
    }
    RETURN_IF_ERROR(kinds::SaveMappedGhosts(pid, *fd_ctx_, &proc));
    FAULT_POINT("collect");
    // Remote calls last: the threads' registers are already saved above.
    // The leader is attached here; the calls run with those of the other
    // processes of its group (Run: CollectRemoteGroup).
    ASSIGN_OR_RETURN(remote->sites, tracing::FindRemoteSites(pid, vmas));
    ASSIGN_OR_RETURN(tracing::RemoteSyscall rs, tracing::RemoteSyscall::Attach(pid, pid, &remote->sites));
    remote->rs.emplace(std::move(rs));
  }
  return OkStatus();
}

// After the remote calls of |sp|.
Status Dumper::FinishCollect(const SeizedProcess& sp, ProcessDump* out) {
  const pid_t pid = sp.pid;
  img::Process& proc = out->proc;
  // Shared memory objects this process maps or holds, the first time one is
  // seen in the tree.
  RETURN_IF_ERROR(shmem_->AddVmas(&proc));
  const std::string pages_name = "pages-" + std::to_string(pid) + ".img";
  out->pagemap.set_pages_file(pages_name);
  stats_.processes++;
  stats_.threads += static_cast<uint32_t>(sp.threads.size());
  return OkStatus();
}

// Runs on a worker of the arena, beside other processes' page dumps: touches
// only |pd| (no ptrace request is made: see engine/page_dump.h).
Status Dumper::DumpProcessPages(ProcessDump* pd) {
  PageDumpOptions popts = page_opts_;
  popts.arena = &*arena_;
  if (parent_) popts.parent = parent_->PagesOf(pd->pid);
  ASSIGN_OR_RETURN(streams::ImageWriter pages,
                   sink_->Create(pd->pagemap.pages_file(), streams::FileKind::kPages));
  if (!pd->scanned) {
    ASSIGN_OR_RETURN(pd->sources, ScanPages(pd->pid, pd->proc, popts, &pd->stats, &pd->pagemap, &pd->track));
  }
  // A large process gets several pages files, written side by side
  // (sched::WritersFor); a stream keeps one ordered file.
  std::vector<streams::ImageWriter> extra;
  std::vector<streams::ImageWriter*> outs{&pages};
  auto open_extra = [&]() -> Status {
    if (sink_->streamed()) return OkStatus();
    uint64_t to_read = 0;
    for (const sched::PageSource& s : pd->sources) to_read += s.from_parent ? 0 : s.range.pages();
    int writers = sched::WritersFor(to_read, writer_jobs_);
    // Benchmarks compare writer counts with one binary: CF_PAGE_WRITERS=N
    // (1..kMaxWriters) sets it for every process with pages to read.
    if (const char* env = getenv("CF_PAGE_WRITERS"); env != nullptr && to_read > 0) {
      const int n = atoi(env);
      if (n >= 1 && n <= sched::kMaxWriters) writers = n;
    }
    extra.reserve(static_cast<size_t>(writers));
    for (int k = 1; k < writers; ++k) {
      const std::string name = streams::PagesFileName(pd->pid, static_cast<uint32_t>(k));
      ASSIGN_OR_RETURN(streams::ImageWriter w, sink_->Create(name, streams::FileKind::kPages));
      extra.push_back(std::move(w));
      pd->pagemap.add_extra_pages_files(name);
    }
    for (auto& w : extra) outs.push_back(&w);
    return OkStatus();
  };
  auto finish = [&]() -> Status {
    for (auto& w : extra) RETURN_IF_ERROR(w.Finish());
    return pages.Finish();
  };
  if (pd->live) {
    RETURN_IF_ERROR(open_extra());
    RETURN_IF_ERROR(WritePages(pd->pid, pd->sources, live_->DrainOf(pd->pid), popts, outs, &pd->pagemap,
                               &pd->stats));
  } else if (pd->pinned) {
    RETURN_IF_ERROR(open_extra());
    RETURN_IF_ERROR(WritePages(pd->pid, pd->sources, *pd->pinned, popts, outs, &pd->pagemap, &pd->stats));
    pd->pinned.reset();  // closes what is left of its pipes
  } else {
    auto reader = memdrain::PageReader::Open(pd->pid, KeepShared(pd->pid));
    if (!reader.ok() && pre_dump()) {
      // The tree runs while a pre-dump reads it: a process that exited
      // since the freeze has nothing left to save (its pagemap stays empty).
      LOG_INFO("pre-dump: process %d exited after the freeze (%s): nothing saved of it", pd->pid,
               reader.status().ToString().c_str());
      pd->pagemap.clear_guards();
      pd->pagemap.set_pid(pd->pid);
      return pages.Finish();
    }
    RETURN_IF_ERROR(reader.status());
    RETURN_IF_ERROR(open_extra());
    RETURN_IF_ERROR(WritePages(pd->pid, pd->sources, *reader, popts, outs, &pd->pagemap, &pd->stats));
  }
  AddInherited(pd->inherited, &pd->pagemap);
  return finish();
}

// Which processes of a frozen tree have children in it: their pages' frames
// are kept for the children to find what they still share (engine/page_dump.h).
void Dumper::FindCowTree() {
  if (opts_.live) return;
  for (const SeizedProcess& sp : tree_.processes()) {
    if (sp.parent != 0) has_children_.insert(sp.parent);
  }
  share_cow_ = !has_children_.empty();
}

// The scan of a frozen process, before anything reads its pages (the
// vmsplice drain's pinning unshares the pages it pins): a parent keeps its
// frames; a child leaves out the pages it shares with its parent.
Status Dumper::ScanProcess(ProcessDump* pd) {
  ASSIGN_OR_RETURN(pd->sources, ScanPages(pd->pid, pd->proc, page_opts_, &pd->stats, &pd->pagemap, &pd->track));
  pd->scanned = true;
  return FindShared(pd, pd->proc.ppid());
}

// After the scan of frozen process |pd|, child of |parent| (scanned before):
// keeps its frames when it has children in the tree; takes the pages it
// shares with |parent| out of its sources (INHERITED). Pages tracking took
// from a parent image count on both sides: sharing is decided before the
// parent image is, in pre-dumps and dumps alike.
Status Dumper::FindShared(ProcessDump* pd, pid_t parent) {
  if (!share_cow_) return OkStatus();
  ScopedTimer t(&pd->stats.scan_ns);
  std::optional<pagemap::FrameMap> frames;
  if (has_children_.count(pd->pid)) {
    ASSIGN_OR_RETURN(frames, pagemap::FrameMap::Read(pd->pid, ForkCopiedPages(pd->proc, pd->sources)));
  }
  auto it = by_pid_.find(parent);
  if (it != by_pid_.end() && it->second->frames) {
    const std::vector<pagemap::PageRange> pages = InheritablePages(pd->proc, it->second->proc, pd->sources);
    if (!pages.empty()) {
      ASSIGN_OR_RETURN(pagemap::FrameMap own, pagemap::FrameMap::Read(pd->pid, pages));
      pd->inherited = own.SharedWith(*it->second->frames);
      RemovePages(pd->inherited, &pd->sources);
      pd->stats.pages_inherited = pd->inherited.pages();
    }
  }
  pd->frames = std::move(frames);
  return OkStatus();
}

// The descriptors this dump may spend on pipes: the soft RLIMIT_NOFILE,
// raised to the hard one, less those open and a reserve for image files.
void Dumper::InitPipeBudget() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  uint64_t open_fds = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++open_fds;
    closedir(d);
  }
  constexpr uint64_t kReserve = 256;
  const uint64_t limit = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : rl.rlim_cur;
  pipe_budget_ = limit > open_fds + kReserve ? limit - open_fds - kReserve : 0;
  LOG_DEBUG("dump: vmsplice drain may hold %lu pipes (%lu MiB of pages)", pipe_budget_,
            pipe_budget_ * memdrain::PipeCapacity() >> 20);
}

// --drain vmsplice, on the ptrace thread while the process is frozen: scan,
// then pin every page in pipes with the parasite (removed again before
// returning, whatever happens). A process that needs more pipes than are
// left keeps its scan and is drained with process_vm_readv later; so does
// one that cannot make the parasite's pipes itself (its own RLIMIT_NOFILE,
// or the system's file limit: EMFILE, ENFILE).
Status Dumper::PinProcess(ProcessDump* pd) {
  RETURN_IF_ERROR(ScanProcess(pd));
  const uint64_t need = PipesNeeded(pd->sources);
  if (pipes_held_ + need > pipe_budget_) {
    LOG_WARN("dump: process %d needs %lu pipes, %lu are left: drained with process_vm_readv instead", pd->pid, need,
             pipe_budget_ - pipes_held_);
    return OkStatus();
  }
  ASSIGN_OR_RETURN(std::unique_ptr<memdrain::Parasite> parasite, memdrain::Parasite::Inject(pd->pid));
  auto pinned = std::make_unique<memdrain::PinnedPages>();
  Status st = PinPages(pd->pid, pd->sources, *parasite, pinned.get(), &pd->stats);
  if (!st.ok() && (st.err() == EMFILE || st.err() == ENFILE)) {
    LOG_WARN("dump: process %d cannot hold the drain's pipes (%s): drained with process_vm_readv instead", pd->pid,
             st.ToString().c_str());
    pinned.reset();  // the pipes taken so far
    pd->stats.pages_pinned = 0;
    return parasite->Cure();
  }
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(parasite->Cure());
  pipes_held_ += pinned->pipes();
  pd->pinned = std::move(pinned);
  return OkStatus();
}

// --live, on the ptrace thread while the process is frozen: its pages are
// scanned and write-protected (engine/live.h); a process that cannot have
// the userfaultfd this needs is saved frozen instead.
Status Dumper::ArmLive(ProcessDump* pd) {
  ASSIGN_OR_RETURN(pd->sources, ScanPages(pd->pid, pd->proc, page_opts_, &pd->stats, &pd->pagemap, &pd->track));
  pd->scanned = true;
  if (!live_) live_ = std::make_unique<LiveSave>();
  live_->set_keep_shared(tree_.processes().size() > 1);
  ScopedTimer t(&stats_.live_arm_ns);
  ASSIGN_OR_RETURN(pd->live, live_->AddProcess(pd->pid, pd->pagemap.start_time(), pd->proc, pd->sources));
  return OkStatus();
}

// --live: the processes that could not be armed are saved now, frozen; then
// the tree runs on (as after a dump -R) while the others' pages are saved.
// A failure from here on cannot roll anything back but the image: the tree
// already runs, unharmed (its userfaultfds are closed first).
Status Dumper::RunLiveSave(uint64_t frozen_start, uint64_t* released) {
  std::vector<ProcessDump*> frozen, live;
  for (const auto& pd : dumps_) (pd->live ? live : frozen).push_back(pd.get());
  if (!frozen.empty()) RETURN_IF_ERROR(DumpPagesOf(frozen));
  if (!live.empty()) RETURN_IF_ERROR(live_->Start());
  FAULT_POINT("live-release");
  if (net_lock_) RETURN_IF_ERROR(net_lock_->Undo());
  shared_.PutBack();
  tree_.Release(false);
  *released = MonotonicNs();
  stats_.live = true;
  stats_.frozen_ns = *released - frozen_start;
  LOG_INFO("dump: --live: process tree %d runs on after %.3f ms frozen; saving its pages", opts_.pid,
           static_cast<double>(stats_.frozen_ns) / 1e6);
  if (live.empty()) return OkStatus();
  Status st = DumpPagesOf(live);
  Status fin = live_->Finish();
  live_changed_ = live_->changed();
  stats_.live_faults = live_->faults();
  stats_.pages_live_copied = live_->pages_copied();
  stats_.pages_live_protected = live_->pages_protected();
  stats_.pages_live_copied_frozen = live_->pages_copied_frozen();
  stats_.live_faults_deferred = live_->faults_deferred();
  stats_.live_stash_limit = live_->stash_limit();
  // A mapping changed under unsaved pages explains a failed read best.
  RETURN_IF_ERROR(fin);
  return st;
}

// dump -R of a tree with few pages left to read (an increment against a
// parent image, a small tree): they are copied into criu-fast's memory while
// the tree is frozen, and the tree runs on while the copies are compressed,
// hashed against the parent and written (the pinned-pages path of
// DumpProcessPages, fed with copies). The image is the memory at the freeze
// all the same. A failure after the release leaves the tree running, as a
// rollback would, and removes the partial image. Returns whether it did;
// otherwise every process is scanned and the dump goes on frozen.
// Not with deduplication (it reads stored pages again from the processes),
// --drain vmsplice or --live (their own release), or --leave-stopped.
Result<bool> Dumper::CopyAndRelease(uint64_t* released) {
  if (!opts_.leave_running || opts_.leave_stopped || opts_.live || opts_.drain != "read" || dedup_) return false;
  uint64_t to_read = 0;
  for (const auto& pd : dumps_) {
    if (!pd->scanned) {
      ASSIGN_OR_RETURN(pd->sources, ScanPages(pd->pid, pd->proc, page_opts_, &pd->stats, &pd->pagemap, &pd->track));
      pd->scanned = true;
    }
    for (const sched::PageSource& s : pd->sources) to_read += s.from_parent ? 0 : s.range.bytes();
  }
  if (to_read > kMaxCopyBytes) {
    LOG_DEBUG("dump: %lu MiB of pages to read: written while frozen", to_read >> 20);
    return false;
  }
  const uint64_t t0 = MonotonicNs();
  // The batches of every process (cut as the page pipeline will cut them),
  // read side by side on the arena's workers.
  struct Copy {
    ProcessDump* pd;
    const memdrain::PageReader* reader;
    std::vector<pagemap::PageRange> ranges;
    bool readable;
    uint64_t bytes;
    uint8_t* into;  // in copy_buf_, or null: |data|, allocated now
    std::unique_ptr<uint8_t[]> data;
    Status status;
  };
  std::vector<memdrain::PageReader> readers;
  readers.reserve(dumps_.size());
  std::vector<Copy> copies;
  for (const auto& pd : dumps_) {
    ASSIGN_OR_RETURN(memdrain::PageReader r, memdrain::PageReader::Open(pd->pid, KeepShared(pd->pid)));
    readers.push_back(std::move(r));
    sched::BatchCutter cut(pd->sources, kChunkPages);
    std::vector<pagemap::PageRange> ranges;
    bool readable = true;
    while (!cut.done()) {
      cut.Next(&ranges, &readable);
      if (ranges.empty()) continue;  // all from the parent image
      uint64_t bytes = 0;
      for (const pagemap::PageRange& r : ranges) bytes += r.bytes();
      copies.push_back({pd.get(), &readers.back(), ranges, readable, bytes, copy_buf_.Take(bytes), nullptr, OkStatus()});
    }
  }
  arena_->Execute([&] {
    tbb::parallel_for(size_t{0}, copies.size(), size_t{1}, [&](size_t k) {
      // From the top down: smaps, read beside (MapsFirst), walks the page
      // tables from the bottom up and holds each page table's lock while
      // it counts its pages; in the same order the two would meet at every
      // page table.
      Copy& c = copies[copies.size() - 1 - k];
      if (c.into == nullptr) {
        c.data = std::make_unique_for_overwrite<uint8_t[]>(c.bytes);
        c.into = c.data.get();
      }
      c.status = c.reader->Read(c.ranges, c.into, c.readable);
    });
  });
  uint64_t pages = 0;
  for (const auto& pd : dumps_) pd->pinned = std::make_unique<memdrain::PinnedPages>();
  for (Copy& c : copies) {
    RETURN_IF_ERROR(c.status.WithContext("dump of process " + std::to_string(c.pd->pid)));
    if (c.data) {
      c.pd->pinned->AddCopy(c.ranges.front().start, c.bytes, std::move(c.data));
    } else {
      c.pd->pinned->AddView(c.ranges.front().start, c.bytes, c.into);
    }
    pages += c.bytes / pagemap::kPageSize;
  }
  stats_.copy_ns = MonotonicNs() - t0;
  stats_.pages_copied = pages;
  RETURN_IF_ERROR(SettleVmas(/*before_pages=*/false));
  FAULT_POINT("copy-release");
  RETURN_IF_ERROR(ReleaseTree());
  *released = MonotonicNs();
  LOG_INFO("dump: %lu pages copied in %.3f ms; process tree %d runs on while they are written", pages,
           static_cast<double>(stats_.copy_ns) / 1e6, opts_.pid);
  return true;
}

// Whether the VMAs are listed from /proc/PID/maps at collection, and smaps
// is read only once the process is collected and its tracked VMAs found
// (CheckTracked), beside the scan and the copy of the pages
// (CopyAndRelease), its VmFlags adopted after them (SettleVmas): its
// page-table walk (~14-20 ms a GiB resident) would overlap them instead of
// coming first. Measured on this project's 2-core VMs it does not pay: the
// walk, the scan and the copy slow each other down (the same page tables and
// struct pages, two cores), and the frozen time of an increment was no
// shorter (README, "Incremental dumps, measured"). A full dump of one
// process with much memory in few VMAs is where it pays: there the scan
// and the smaps walk (~20 ms each for 1 GiB resident in 4 GiB mapped, 25-45
// in 16 GiB) run side by side before the page pipeline instead of one
// after the other (SettleVmas comes before it), so it is chosen there
// (DecideMapsFirst; README, "Scale", session 28). CF_MAPS_FIRST=1 turns it
// on wherever it may be used, =0 off. Only where nothing before SettleVmas
// needs a VmFlag but those AdoptSmaps checks, the dump itself changes no
// VMA meanwhile (no write tracking armed: registering changes VmFlags),
// and the cores can wait (a directory, not a stream).
bool Dumper::MapsFirst() const {
  static const int forced = [] {
    const char* e = getenv("CF_MAPS_FIRST");
    if (e == nullptr || *e == '\0') return -1;
    return strcmp(e, "1") == 0 ? 1 : 0;
  }();
  const bool on = forced == 1 || (forced < 0 && maps_first_pays_);
  return on && maps_first_ && !pre_dump() && !sink_->streamed() && opts_.drain == "read" && !opts_.live &&
         !share_cow_ && !arm_ && !opts_.force_pagemap_fallback;
}

// Whether the frozen tree is one process, dumped in full (no parent image),
// with much memory resident in few VMAs and no hugetlb memory: smaps' walk
// of its page tables (by the resident page) is long, and reading maps as
// well (by the VMA) costs little. Read from /proc/PID/status (VmRSS, and
// HugetlbPages, which maps cannot tell apart) and the first 64 KiB of
// maps: a process with more VMAs than that lists stays smaps first (its
// smaps is mostly text by the VMA, which maps would only add to; 15,000
// one-page mappings dumped slower maps first).
void Dumper::DecideMapsFirst() {
  maps_first_pays_ = false;
  if (tree_.processes().size() != 1 || parent_ || pre_dump()) return;
  const pid_t pid = tree_.processes()[0].pid;
  Result<proc::ProcStatus> status = proc::ReadStatus(pid);
  if (!status.ok() || status->hugetlb_kb != 0) return;  // absent counts as some
  const uint64_t resident = status->vm_rss_kb > 0 ? static_cast<uint64_t>(status->vm_rss_kb) / 4 : 0;
  if (resident < kMapsFirstMinPages) return;
  const std::string maps = "/proc/" + std::to_string(pid) + "/maps";
  UniqueFd fd(open(maps.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return;
  std::vector<char> text(kMapsFirstMaxMapsBytes + 1);
  Result<size_t> got = ReadFull(fd.get(), text.data(), text.size(), maps);
  if (!got.ok() || *got > kMapsFirstMaxMapsBytes) return;
  const uint64_t lines = static_cast<uint64_t>(std::count(text.begin(), text.begin() + static_cast<long>(*got), '\n'));
  maps_first_pays_ = lines > 0 && resident / lines >= kMapsFirstPagesPerVma;
  LOG_DEBUG("dump: process %d: %lu resident pages in %lu VMAs: smaps read %s", pid, resident, lines,
            maps_first_pays_ ? "beside the scan (VMAs listed from maps)" : "first");
}

// The processes collected with MapsFirst, scanned now if not yet: their
// smaps (read beside the scan) must list the VMAs that were scanned
// (AdoptSmaps); their cores, complete then, are written. An smaps that
// disagrees is read once more (frozen, the dump's remote calls long undone);
// if it still disagrees (hugetlb memory, or droppable memory found after
// pages were read, which maps cannot tell; a stack that the remote calls'
// scratch grew), the dump fails with vmas_disagreed() and RunDump dumps
// again, smaps first.
Status Dumper::SettleVmas(bool before_pages) {
  for (const auto& pd : dumps_) {
    if (!pd->maps_first) continue;
    if (!pd->scanned) {
      ASSIGN_OR_RETURN(pd->sources, ScanPages(pd->pid, pd->proc, page_opts_, &pd->stats, &pd->pagemap, &pd->track));
      pd->scanned = true;
    }
    std::string why;
    // Before any page is read, a droppable VMA (which maps cannot tell) is
    // set right here: its pages leave the sources (its guards were found by
    // the scan as for any VMA).
    std::vector<int> droppable;
    std::vector<int>* const fix = before_pages ? &droppable : nullptr;
    {
      ScopedTimer t(&stats_.smaps_wait_ns);
      Result<std::vector<pagemap::VmaInfo>> smaps = vma_prefetch_.Take(pd->pid);
      if (!smaps.ok() || !AdoptSmaps(*smaps, &pd->proc, &why, fix)) {
        LOG_DEBUG("dump: process %d: smaps read beside the scan: %s; reading it again", pd->pid,
                  smaps.ok() ? why.c_str() : smaps.status().ToString().c_str());
        ASSIGN_OR_RETURN(std::vector<pagemap::VmaInfo> again, pagemap::ReadVmas(pd->pid, /*with_vmflags=*/true));
        if (!AdoptSmaps(again, &pd->proc, &why, fix)) {
          vmas_disagreed_ = true;
          return Errorf("dump: process %d: the VMAs scanned from maps are not those of smaps: %s", pd->pid,
                        why.c_str());
        }
      }
    }
    if (!droppable.empty()) {
      pagemap::RangeSet gone;
      for (int i : droppable) gone.Append({pd->proc.vmas(i).start(), pd->proc.vmas(i).end()});
      auto pages = [&pd] {
        uint64_t n = 0;
        for (const sched::PageSource& src : pd->sources) n += src.range.pages();
        return n;
      };
      const uint64_t had = pages();
      RemovePages(gone, &pd->sources);
      pd->stats.pages_scanned -= had - pages();
      LOG_DEBUG("dump: process %d: %zu droppable VMAs found in smaps after the scan: their pages left out", pd->pid,
                droppable.size());
    }
    pd->maps_first = false;
    RETURN_IF_ERROR(WriteCore(*pd));
  }
  return OkStatus();
}

// Memory fresh from the kernel costs a page fault a page, and on these VMs
// far more than the copy itself (the host takes freed memory back: tens of
// µs a page at times). An increment of a tree that runs on (-R) copies the
// pages written since its parent while frozen (CopyAndRelease): the memory
// for them is made and faulted in before the freeze, sized by what the
// root process wrote so far (PAGEMAP_SCAN: pages without the write-protect
// bit of the parent's tracking, all pages of mappings it does not track),
// with a quarter more for what it writes until the freeze. Only a hint: what
// does not fit is allocated at the copy; nothing is made when the estimate
// is past the copy's bound.
namespace {

// Reads |ranges| of process |pid| into |buf| (|len| bytes: as much as fits),
// with as few process_vm_readv calls as the iovec limit allows.
void WarmPages(pid_t pid, const std::vector<pagemap::PageRange>& ranges, uint8_t* buf, uint64_t len) {
  constexpr size_t kIov = 1024;
  std::vector<iovec> remote;
  remote.reserve(std::min(ranges.size(), kIov));
  uint64_t used = 0;
  auto flush = [&] {
    if (remote.empty()) return;
    uint64_t want = 0;
    for (const iovec& r : remote) want += r.iov_len;
    iovec local{buf + used - want, want};
    (void)process_vm_readv(pid, &local, 1, remote.data(), remote.size(), 0);
    remote.clear();
  };
  for (const pagemap::PageRange& r : ranges) {
    if (used + r.bytes() > len) break;
    remote.push_back({reinterpret_cast<void*>(r.start), r.bytes()});
    used += r.bytes();
    if (remote.size() == kIov) flush();
  }
  flush();
}

}  // namespace

void Dumper::PrepareCopyBuffer() {
  if (!parent_ || tracking_.empty() || !opts_.leave_running || opts_.leave_stopped || opts_.live ||
      opts_.drain != "read" || opts_.dedup == 1 || opts_.force_pagemap_fallback) {
    return;
  }
  const uint64_t t0 = MonotonicNs();
  auto scanner = pagemap::PageScanner::Open(opts_.pid);
  auto vmas = pagemap::ReadVmas(opts_.pid, /*with_vmflags=*/false);
  if (!scanner.ok() || !vmas.ok() || !scanner->uses_pagemap_scan()) return;
  uint64_t pages = 0;
  std::vector<pagemap::PageRange> to_copy;
  for (const pagemap::VmaInfo& v : *vmas) {
    if (v.shared || (v.path.size() > 1 && v.path[0] == '[' && v.path != "[heap]" && v.path != "[stack]")) continue;
    const pagemap::ScanMode mode = v.is_file() ? pagemap::ScanMode::kFilePrivate : pagemap::ScanMode::kAnonPrivate;
    Result<pagemap::RangeSet> found = scanner->ScanWritten(v.start, v.end, mode, /*rearm=*/false);
    if (!found.ok()) found = scanner->Scan(v.start, v.end, mode);  // not tracked: read in full
    if (!found.ok()) continue;
    pages += found->pages();
    to_copy.insert(to_copy.end(), found->begin(), found->end());
  }
  const uint64_t bytes = ((pages + pages / 4) * pagemap::kPageSize + (1u << 20)) & ~(uint64_t{1 << 20} - 1);
  if (bytes > kMaxCopyBytes) return;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) return;
  copy_buf_.base = static_cast<uint8_t*>(p);
  copy_buf_.size = bytes;
  // The pages themselves are read once now, into the buffer the copy will
  // overwrite: a page read for the first time costs this VM's kernel far more
  // than the copy (52 ms for 2,722 pages scattered over 1 GiB, 1.3-2 ms the
  // second time: README, "Incremental dumps, measured"), and that first read
  // is better paid while the tree still runs. Only a warm-up: what it reads
  // is never used, and a failure is ignored.
  WarmPages(opts_.pid, to_copy, copy_buf_.base, bytes);
  LOG_DEBUG("dump: %lu pages written since the parent image: %lu MiB for their copies made in %.3f ms", pages,
            bytes >> 20, static_cast<double>(MonotonicNs() - t0) / 1e6);
}

// -R: the tree runs on (or stays stopped with --leave-stopped), its network
// unlocked and the descriptors put back.
Status Dumper::ReleaseTree() {
  if (net_lock_) RETURN_IF_ERROR(net_lock_->Undo());
  shared_.PutBack();
  tree_.Release(opts_.leave_stopped);
  return OkStatus();
}

// The pages of every collected process, side by side: each process's page
// pipeline is a task of the one arena, so --jobs bounds them all together,
// and the in-order write stages of several processes (one file each) run at
// the same time instead of one after another.
Status Dumper::DumpAllPages() {
  std::vector<ProcessDump*> all;
  for (const auto& pd : dumps_) all.push_back(pd.get());
  return DumpPagesOf(all);
}

Status Dumper::DumpPagesOf(const std::vector<ProcessDump*>& which) {
  const uint64_t start = MonotonicNs();
  const uint64_t shmem_pages_ns = stats_.pages_ns;  // shared memory objects, dumped while collecting
  std::vector<Status> results(which.size());
  // Processes are written side by side already: the jobs left per process
  // bound its writers.
  writer_jobs_ = std::max(1, arena_->jobs() / std::max(1, static_cast<int>(which.size())));
  arena_->Execute([&] {
    tbb::parallel_for(size_t{0}, which.size(), size_t{1}, [&](size_t i) {
      results[i] = DumpProcessPages(which[i]).WithContext("dump of process " + std::to_string(which[i]->pid));
    });
  });
  for (const ProcessDump* pd : which) stats_.Add(pd->stats);
  // Stage times stay thread time; the pages stage is wall time: the shared
  // memory objects', then that of every process's pages side by side.
  stats_.pages_ns = shmem_pages_ns + (MonotonicNs() - start);
  for (const Status& st : results) RETURN_IF_ERROR(st);
  return OkStatus();
}

// The core is complete once the process is collected: it is written before
// the pages (in a stream, metadata comes first); the pagemap after them.
Status Dumper::WriteCore(const ProcessDump& pd) {
  FAULT_POINT("core-write");
  RETURN_IF_ERROR(WriteMessage("core-" + std::to_string(pd.pid) + ".img", streams::FileKind::kCore, pd.proc));
  pids_.push_back(pd.pid);
  return OkStatus();
}

// The pagemaps, the stats and, last, the inventory: then the image is
// complete (committed).
Status Dumper::FinishImage() {
  for (const auto& pd : dumps_) {
    RETURN_IF_ERROR(WriteMessage("pagemap-" + std::to_string(pd->pid) + ".img", streams::FileKind::kPageMap,
                                 pd->pagemap));
  }
  RETURN_IF_ERROR(WriteMessage("stats-dump.img", streams::FileKind::kStats, stats_.ToProto()));
  if (!sink_->streamed()) {
    KeepTracking();
    RETURN_IF_ERROR(WriteInventory());
  }
  RETURN_IF_ERROR(sink_->Commit());
  committed_ = true;
  return OkStatus();
}

// The smaps of every seized process are read on background threads while
// this thread collects the rest (each taken before its first remote call).
void Dumper::StartVmaPrefetch() {
  std::vector<pid_t> pids;
  // MapsFirst: each process's smaps is read once it is collected (Add).
  if (!MapsFirst()) {
    for (const SeizedProcess& sp : tree_.processes()) pids.push_back(sp.pid);
  }
  vma_prefetch_.Start(std::move(pids), arena_ ? arena_->jobs() : 1);
}

// The tracking armed by this dump outlives it in a keeper (engine/track.h),
// named in the inventory. A stream's inventory is written first: a stream
// leaves no tracking.
void Dumper::KeepTracking() {
  if (!arm_ || tracking_.empty()) return;
  const std::string keeper = WriteTracking::KeeperName(image_id_);
  Status ks = tracking_.Keep(keeper);
  if (ks.ok()) {
    tracker_ = keeper;
  } else {
    LOG_WARN("dump: write tracking not kept (%s): the next increment compares contents", ks.ToString().c_str());
  }
}

Status Dumper::WriteInventory() {
  FAULT_POINT("inventory");
  img::Inventory inv;
  inv.set_format_version(streams::kFormatVersion);
  inv.set_tool_version(CF_VERSION);
  inv.set_root_pid(opts_.pid);
  if (sink_->streamed()) {
    // Written before the processes: their pids are those seized, in order.
    for (const SeizedProcess& sp : tree_.processes()) inv.add_pids(sp.pid);
  } else {
    for (int32_t p : pids_) inv.add_pids(p);
  }
  inv.set_checksum("xxh3");
  inv.set_compression(opts_.compress);
  inv.set_leave_running(opts_.leave_running);
  inv.set_image_id(image_id_);
  inv.set_pre_dump(pre_dump());
  inv.set_tracker(tracker_);
  if (parent_) {
    inv.set_parent(opts_.prev_images_dir);
    inv.set_parent_id(parent_->image.inventory.image_id());
  }
  // Without -R the lock stays for restore to remove.
  if (net_lock_ && !opts_.leave_running) inv.set_net_lock(net_lock_->table());
  if (net_ns_) *inv.mutable_net_ns() = *net_ns_;
  if (cgroups_) {
    for (const img::CgroupDir& d : cgroups_->dirs()) *inv.add_cgroup_dirs() = d;
    for (const img::CgroupMember& r : cgroups_->roots()) *inv.add_cgroup_roots() = r;
  }
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  inv.set_dump_time_unix_ns(static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec));
  utsname u;
  if (uname(&u) == 0) inv.set_kernel(u.release);
  return WriteMessage("inventory.img", streams::FileKind::kInventory, inv);
}

// pre-dump: frozen while the mappings are listed and scanned, then
// released; the pages are read while the tree runs (engine/incremental.h).
// Only memory is saved: no cores, no descriptors, no shared memory objects.
Status Dumper::RunPreDump(uint64_t start) {
  if (sink_->streamed()) return Error("pre-dump: write it to an images directory (-D), not a stream", EINVAL);
  page_opts_.skip_vanished = true;
  stats_.drain = "read";  // the pages are read after the release
  const uint64_t frozen_start = MonotonicNs();
  {
    ScopedTimer t(&stats_.seize_ns);
    tree_.set_stop_timeout_ms(static_cast<int>(std::min<int64_t>(int64_t{opts_.timeout} * 1000, INT32_MAX)));
    RETURN_IF_ERROR(tree_.SeizeTree(opts_.pid));
  }
  StartVmaPrefetch();
  // Pages a child shares copy-on-write with its parent are INHERITED in a
  // pre-dump too (FindShared: parents come before their children).
  FindCowTree();
  for (const SeizedProcess& sp : tree_.processes()) {
    auto pd = std::make_unique<ProcessDump>();
    pd->pid = sp.pid;
    const std::string ctx = "pre-dump of process " + std::to_string(sp.pid);
    {
      ScopedTimer t(&stats_.collect_ns);
      RETURN_IF_ERROR(CollectMm(sp.pid, &pd->proc, vma_prefetch_.Take(sp.pid)).status().WithContext(ctx));
    }
    pd->pagemap.set_pages_file("pages-" + std::to_string(sp.pid) + ".img");
    if (auto st = ReadStat(sp.pid); st.ok()) pd->pagemap.set_start_time(st->start_time);
    SetUpTracking(pd.get());
    ASSIGN_OR_RETURN(pd->sources, ScanPages(pd->pid, pd->proc, page_opts_, &pd->stats, &pd->pagemap, &pd->track));
    pd->scanned = true;
    by_pid_[sp.pid] = pd.get();
    RETURN_IF_ERROR(FindShared(pd.get(), sp.parent).WithContext(ctx));
    pids_.push_back(sp.pid);
    stats_.processes++;
    stats_.threads += static_cast<uint32_t>(sp.threads.size());
    dumps_.push_back(std::move(pd));
  }
  for (const auto& pd : dumps_) pd->frames.reset();
  tree_.Release(false);
  const uint64_t released = MonotonicNs();
  stats_.frozen_ns = released - frozen_start;
  LOG_INFO("pre-dump: process tree %d released after %.3f ms; reading its pages", opts_.pid,
           static_cast<double>(stats_.frozen_ns) / 1e6);
  RETURN_IF_ERROR(DumpAllPages());
  stats_.total_ns = MonotonicNs() - start;
  stats_.after_release_ns = MonotonicNs() - released;
  RETURN_IF_ERROR(FinishImage());
  LOG_INFO("pre-dump: memory of process tree %d saved to %s", opts_.pid, sink_->where().c_str());
  return OkStatus();
}

// Every thread's cgroups, and the directories restore may have to create
// (with their properties, when --manage-cgroups asks for them).
Status Dumper::CollectCgroups() {
  ASSIGN_OR_RETURN(kinds::CgroupMode mode, kinds::ParseCgroupMode(opts_.manage_cgroups.empty()
                                                                      ? "none"
                                                                      : opts_.manage_cgroups.c_str()));
  if (mode == kinds::CgroupMode::kIgnore) return OkStatus();
  kinds::CgroupDumpInput in;
  for (const SeizedProcess& sp : tree_.processes()) {
    for (const SeizedThread& t : sp.threads) in.threads[sp.pid].push_back(t.tid);
    ASSIGN_OR_RETURN(proc::ProcStat st, ReadStat(sp.pid));
    in.parents[sp.pid] = st.ppid;
  }
  in.root = opts_.pid;
  in.props = mode != kinds::CgroupMode::kNone;
  in.roots = opts_.cgroup_roots;
  ASSIGN_OR_RETURN(cgroups_, kinds::CgroupCollect::Read(in));
  return OkStatus();
}

// A tree in a network namespace of its own: what the namespace holds is
// read before the lock goes in, then the whole namespace is locked.
Status Dumper::CollectNetns(const std::vector<pid_t>& pids) {
  ASSIGN_OR_RETURN(netns_, kinds::TreeNetns::Find(pids));
  if (!netns_) return OkStatus();
  ASSIGN_OR_RETURN(net_ns_, netns_->Read());
  kinds::SetTreeNetns(netns_->fd());
  ASSIGN_OR_RETURN(net_lock_, kinds::NetLock::Start(opts_.pid, opts_.network_lock, netns_->fd()));
  return OkStatus();
}

Status Dumper::ExplainVanished(Status s) const {
  constexpr uint32_t kPfExiting = 0x4;
  for (const SeizedProcess& sp : tree_.processes()) {
    auto st = ReadStat(sp.pid);
    if (!st.ok() || st->state == 'Z' || st->state == 'X' || (st->flags & kPfExiting)) {
      return Error("process " + std::to_string(sp.pid) + " died during the dump (" + s.ToString() + ")");
    }
  }
  return s;
}

void Dumper::StartPropsPrefetch() {
  for (const SeizedProcess& sp : tree_.processes()) prefetched_[sp.pid] = std::make_unique<Prefetched>();
  for (const SeizedProcess& sp : tree_.processes()) {
    Prefetched* p = prefetched_[sp.pid].get();
    props_prefetch_.Post([p, pid = sp.pid] {
      p->src = std::make_unique<kinds::ProcessSource>(pid);
      p->status = CollectProcessProps(*p->src, &p->props, PropsPart::kUntraced);
      p->done.set_value();
      return OkStatus();
    });
  }
}

// A collected process: its cgroups and descriptor table filled in, its
// core written (or its smaps read later), then pinned, armed or scanned.
Status Dumper::AfterCollect(ProcessDump* pd, bool vmsplice) {
  if (cgroups_) cgroups_->Fill(&pd->proc);
  fd_tables_.Fill(&pd->proc);
  SetUpTracking(pd);
  if (after_collect_beside_) {
    // The core is complete: written and scanned on the worker, in order
    // (a parent's frames before its children's), from here on only read.
    after_collect_.Post([this, pd] {
      Status s = WriteCore(*pd);
      by_pid_[pd->pid] = pd;
      if (s.ok() && share_cow_) s = ScanProcess(pd);
      return s.WithContext("dump of process " + std::to_string(pd->pid));
    });
    return OkStatus();
  }
  if (pd->maps_first) {
    // The VMAs tracking covers are found now (registering takes the mmap
    // lock for writing, as the remote call brk() does); then smaps, whose
    // walk holds it for reading, is read beside the scan.
    {
      ScopedTimer t(&stats_.scan_ns);
      RETURN_IF_ERROR(CheckTracked(pd->pid, pd->proc, opts_.force_pagemap_fallback, &pd->track));
    }
    vma_prefetch_.Add(pd->pid);
  } else {
    RETURN_IF_ERROR(WriteCore(*pd));
  }
  by_pid_[pd->pid] = pd;
  if (vmsplice) return PinProcess(pd);
  if (opts_.live) return ArmLive(pd);
  if (share_cow_) return ScanProcess(pd);  // parents before their children
  return OkStatus();
}

Status Dumper::Run() {
  const uint64_t start = MonotonicNs();
  RETURN_IF_ERROR(Prepare());
  page_opts_.force_pagemap_fallback = opts_.force_pagemap_fallback;
  page_opts_.jobs = opts_.jobs;
  ASSIGN_OR_RETURN(page_opts_.codec, streams::ParseCodec(opts_.compress));
  arena_.emplace(opts_.jobs);
  page_opts_.arena = &*arena_;
  // An image that may become a parent stores its pages' hashes.
  page_opts_.hash_pages = pre_dump() || opts_.track_mem || parent_ != nullptr;
  if (pre_dump()) return RunPreDump(start);
  kinds::ShmemDumpOptions shmem_opts{page_opts_.codec, page_opts_.arena, nullptr};
  shmem_opts.count = [this](uint64_t scanned, const sched::PagePipelineStats& ps) {
    stats_.pages_scanned += scanned;
    AddPipelineStats(ps, &stats_);
  };
  shmem_.emplace(sink_.get(), std::move(shmem_opts));
  fd_ctx_.emplace(sink_.get(), opts_, &*shmem_, &net_lock_);
  stats_.drain = opts_.drain;
  const bool vmsplice = opts_.drain == "vmsplice";
  if (vmsplice) InitPipeBudget();

  if (opts_.live) {
    // Write-protect while the tree still runs (engine/live.h); the freeze
    // then protects only what changed since. Without it, all at the freeze.
    live_ = std::make_unique<LiveSave>();
    if (Status pa = live_->PreArm(opts_.pid); !pa.ok()) {
      LOG_WARN("dump: --live: not armed before the freeze (%s): memory is protected while frozen",
               pa.ToString().c_str());
      live_ = std::make_unique<LiveSave>();
    }
    stats_.live_prearm_pause_ns = live_->prearm_pause_ns();
    stats_.live_prearm_ns = live_->prearm_ns();
    stats_.pages_live_prearmed = live_->pages_prearmed();
  }
  PrepareCopyBuffer();
  uint64_t frozen_start = MonotonicNs();
  {
    ScopedTimer t(&stats_.seize_ns);
    tree_.set_stop_timeout_ms(static_cast<int>(std::min<int64_t>(int64_t{opts_.timeout} * 1000, INT32_MAX)));
    RETURN_IF_ERROR(tree_.SeizeTree(opts_.pid));
  }
  FindCowTree();  // before MapsFirst is asked
  DecideMapsFirst();
  StartVmaPrefetch();
  {
    ScopedTimer t(&stats_.collect_ns);
    std::vector<pid_t> pids;
    for (const SeizedProcess& sp : tree_.processes()) pids.push_back(sp.pid);
    RETURN_IF_ERROR(CollectNetns(pids));
    RETURN_IF_ERROR(shared_.Collect(pids, *fd_ctx_, arena_ ? &*arena_ : nullptr));
    RETURN_IF_ERROR(kinds::RefuseTimeNamespaces(pids));
    RETURN_IF_ERROR(kinds::RefusePidNamespaces(pids));
    ASSIGN_OR_RETURN(fd_tables_, kinds::FdTables::Read(pids));
  }
  // The cgroups (a file per thread: thousands in a process of thousands of
  // threads) are read on a thread of their own beside the collection of the
  // processes below, which is ptrace work on this one; taken before the
  // first process is filled in.
  std::future<Status> cgroups = std::async(std::launch::async, [this] { return CollectCgroups(); });
  auto take_cgroups = [&cgroups]() { return cgroups.valid() ? cgroups.get() : OkStatus(); };
  // A frozen tree written to a directory: each process's core and scan go to
  // the worker (AfterCollect), the tracer thread on to the next process.
  after_collect_beside_ = tree_.processes().size() > 1 && !vmsplice && !opts_.live && !sink_->streamed() &&
                          !MapsFirst();
  if (after_collect_beside_) StartPropsPrefetch();
  if (sink_->streamed()) {
    RETURN_IF_ERROR(take_cgroups());
    RETURN_IF_ERROR(WriteInventory());
  }
  // ptrace requests must come from the thread that seized the tree: every
  // process is collected here, in groups whose remote calls run side by
  // side; then their pages are dumped side by side on the arena's workers.
  const std::vector<SeizedProcess>& procs = tree_.processes();
  for (size_t first = 0; first < procs.size(); first += kCollectGroup) {
    const size_t end = std::min(procs.size(), first + kCollectGroup);
    const size_t at = dumps_.size();
    {
      std::vector<PendingRemote> remote(end - first);
      std::vector<RemoteTarget> targets;
      for (size_t i = first; i < end; ++i) {
        dumps_.push_back(std::make_unique<ProcessDump>());
        PendingRemote& r = remote[i - first];
        const std::string ctx = "dump of process " + std::to_string(procs[i].pid);
        RETURN_IF_ERROR(CollectProcess(procs[i], dumps_.back().get(), &r).WithContext(ctx));
        targets.push_back({&*r.rs, &r.sites, r.src.get(), &dumps_.back()->proc});
      }
      ScopedTimer t(&stats_.collect_ns);
      RETURN_IF_ERROR(CollectRemoteGroup(targets));
      for (PendingRemote& r : remote) RETURN_IF_ERROR(r.rs->Restore());
    }
    for (size_t i = first; i < end; ++i) {
      ProcessDump* pd = dumps_[at + i - first].get();
      const std::string ctx = "dump of process " + std::to_string(procs[i].pid);
      RETURN_IF_ERROR(FinishCollect(procs[i], pd).WithContext(ctx));
      RETURN_IF_ERROR(take_cgroups());
      RETURN_IF_ERROR(AfterCollect(pd, vmsplice).WithContext(ctx));
    }
  }
  RETURN_IF_ERROR(after_collect_.Finish());
  for (const auto& pd : dumps_) pd->frames.reset();
  uint64_t released = 0;
  bool copied = false;  // the pages to read were copied, the tree released (CopyAndRelease)
  if (opts_.live) RETURN_IF_ERROR(RunLiveSave(frozen_start, &released));
  RETURN_IF_ERROR(SetUpDedup());
  bool all_pinned = vmsplice;
  for (const auto& pd : dumps_) all_pinned = all_pinned && pd->pinned != nullptr;
  if (all_pinned && !opts_.leave_running) {
    // Every page left to read is pinned in a pipe: the tree can go now.
    // No rollback after this point.
    tree_.Kill();
    killed_ = true;
    // Only the image is left to save: a termination signal no longer stops us.
    DeferTermination();
    released = MonotonicNs();
    stats_.killed_early = true;
    LOG_INFO("dump: pages pinned; process tree %d killed before writing them", opts_.pid);
    Status st = DumpAllPages();
    if (!st.ok()) return st.WithContext("the process tree was already killed (its pages were pinned in pipes)");
  } else if (!opts_.live) {
    ASSIGN_OR_RETURN(copied, CopyAndRelease(&released));
    if (!copied) RETURN_IF_ERROR(SettleVmas(/*before_pages=*/true));
    RETURN_IF_ERROR(DumpAllPages());
    if (dedup_) {
      stats_.dedup_entries = dedup_->entries();
      stats_.dedup_bytes = dedup_->bytes();
      LOG_DEBUG("dump: dedup: %lu pages in the table (%lu KiB), %lu hash hits, %lu with other bytes, %lu not read again",
                stats_.dedup_entries, stats_.dedup_bytes >> 10, dedup_->hash_hits(), dedup_->mismatches(),
                dedup_->fetch_failures());
    }
  }
  // Times so far: a stream cannot rewrite the stats at the end as a directory does.
  stats_.frozen_ns = released != 0 ? released - frozen_start : MonotonicNs() - frozen_start;
  stats_.total_ns = MonotonicNs() - start;
  RETURN_IF_ERROR(FinishImage());
  // The image is complete: from here on nothing rolls back.
  if (released == 0) {
    if (opts_.leave_running) {
      RETURN_IF_ERROR(ReleaseTree());
    } else {
      tree_.Kill();
      killed_ = true;
    }
    released = MonotonicNs();
  }
  if (net_lock_ && !opts_.leave_running) RETURN_IF_ERROR(net_lock_->Keep());
  if (!opts_.leave_running) fd_ctx_->KeepLinks();
  const uint64_t end = MonotonicNs();
  const tracing::InjectionTotals inj = tracing::ReadInjectionTotals();
  stats_.injected_calls = inj.calls + inj.code_runs;
  stats_.injected_ns = inj.ns;
  stats_.unguarded_calls = inj.unguarded;
  stats_.unguarded_ns = inj.unguarded_ns;
  stats_.frozen_ns = released - frozen_start;
  stats_.total_ns = end - start;
  if (vmsplice || opts_.live || copied) stats_.after_release_ns = end - released;
  // Rewrite the stats with the final times (best effort: the image is done).
  if (!sink_->streamed()) {
    img::DumpStats final_stats = stats_.ToProto();
    auto w = sink_->Create("stats-dump.img", streams::FileKind::kStats);
    if (w.ok() && w->WriteMessage(final_stats).ok()) (void)w->Finish();
  }
  LOG_INFO("dump: process tree %d dumped to %s (%s)", opts_.pid, sink_->where().c_str(),
           opts_.leave_stopped ? "left stopped" : opts_.leave_running ? "left running" : "killed");
  return OkStatus();
}

}  // namespace

int RunDump(const Options& opts) {
  if (!opts.log_file.empty()) {
    // With a stream there is no images directory: a relative log path is
    // relative to the current directory.
    const bool rel_dir = opts.log_file[0] != '/' && !opts.stream;
    const std::string path = rel_dir ? opts.InWorkDir(opts.log_file) : opts.log_file;
    if (rel_dir) mkdir((opts.work_dir.empty() ? opts.images_dir : opts.work_dir).c_str(), 0700);
    if (!SetLogFile(path)) {
      LOG_ERROR("cannot open log file %s: %m", path.c_str());
      return 1;
    }
  }
  for (const std::string& n : opts.no_effect) LOG_INFO("option %s: no effect here", n.c_str());
  if (opts.iterative > 0) return RunIterativeDump(opts);
  std::optional<Dumper> dumper(std::in_place, opts);
  Status s = dumper->Run();
  if (!s.ok() && dumper->vmas_disagreed()) {
    // Rolled back (the tree runs on): dump again, the VMAs from smaps first.
    LOG_INFO("%s: dumping again, VMAs from smaps first", s.ToString().c_str());
    dumper.reset();
    dumper.emplace(opts, /*maps_first=*/false);
    s = dumper->Run();
  }
  if (!s.ok() && dumper->live_changed() && !opts.stream) {
    // The live snapshot was lost to a change of the memory: the tree runs
    // on, the partial image is gone. Dump again, frozen to the end.
    LOG_WARN("dump: %s: dumping again without --live (frozen)", s.ToString().c_str());
    dumper.reset();
    Options frozen = opts;
    frozen.live = false;
    frozen.log_file.clear();  // the log is open already
    return RunDump(frozen);
  }
  if (!s.ok()) s = dumper->ExplainVanished(std::move(s));
  if (!s.ok()) {
    LOG_ERROR("%s", s.ToString().c_str());
    return 1;
  }
  // stdout may carry the stream: then the statistics go to stderr.
  if (opts.display_stats) dumper->stats().Print(opts.stream && opts.stream_to.empty() ? stderr : stdout);
  return 0;
}

}  // namespace cf::engine
