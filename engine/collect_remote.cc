// State only the task itself can report, read by syscalls run in the frozen
// target (ptrace/remote_syscall.h).
//
// Process-wide: the properties of kinds/process_props.h read by remote
// calls (sigactions, itimers, brk, POSIX timers), in the leader, in one
// attach. Each property names its items; their outputs are laid out one
// after the other in one scratch block, and read back in one
// process_vm_readv per block (a block holds up to kBlock bytes: a process
// with thousands of timers takes several).
//
// Per thread: the properties of kinds/thread_props.h read by a remote call
// (sigaltstack, clear_child_tid), for every thread, the leader included, by
// one path: in groups, the threads of a group running their calls at once.
// Results land in scratch memory of each thread and are read back in one
// process_vm_readv per thread.
#include <algorithm>
#include <array>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "engine/collect.h"
#include "kinds/process_props.h"
#include "kinds/thread_props.h"
#include "memdrain/thread_calls.h"
#include "common/log.h"

namespace cf::engine {
namespace {

// Bytes of process-wide output read back at once (1024 timers' itimerspec).
constexpr uint64_t kBlock = 16384;

// A process may have thousands of threads: their remote calls run in groups
// of this many, all threads of a group at once.
constexpr size_t kGroup = 256;

// From this many threads on, their calls are made by the parasite
// (memdrain/thread_calls.h: one stop per thread instead of two per call,
// for a few remote calls more per process), in groups of up to
// kParasiteGroup threads.
constexpr size_t kParasiteMin = 16;
constexpr size_t kParasiteGroup = 1024;

Status CheckCall(long r, const std::string& what, pid_t pid) {
  if (r < 0 && r > -4096) return ErrnoStatus(static_cast<int>(-r), what + " in " + std::to_string(pid));
  return OkStatus();
}

uint64_t Aligned(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

// One item of a remote-read process property.
struct Item {
  const kinds::ProcessRemoteRead* read;
  size_t index;  // among the property's items
  int64_t key;
  uint64_t off;  // of its output in the block
};

// The items of every remote-read process property of |proc|, and the bytes
// of their outputs, one after the other.
Status PlanItems(kinds::ProcessSource& src, img::Process* proc, std::vector<Item>* items, uint64_t* total) {
  std::vector<int64_t> keys;
  *total = 0;
  for (const kinds::ProcessProperty& p : kinds::ProcessProperties()) {
    if (!p.remote) continue;
    keys.clear();
    RETURN_IF_ERROR(p.remote->items(src, proc, &keys));
    for (size_t i = 0; i < keys.size(); ++i) items->push_back({p.remote, i, keys[i], 0});
    *total += Aligned(p.remote->item_size) * keys.size();
  }
  return OkStatus();
}

Status ItemError(const Item& it, uint32_t c, long r, pid_t pid) {
  std::string what = it.read->calls[c].what;
  if (it.read->item_name) what += std::string(" of ") + it.read->item_name + " " + std::to_string(it.key);
  return ErrnoStatus(static_cast<int>(-r), what + " in process " + std::to_string(pid));
}

// Runs the calls of |items| (from PlanItems) in the leader, one block of
// output after another.
Status RunItems(tracing::RemoteSyscall& rs, std::vector<Item>& items, uint64_t total, img::Process* proc) {
  const pid_t pid = proc->pid();
  if (items.empty()) return OkStatus();
  ASSIGN_OR_RETURN(uint64_t base, rs.Scratch(std::max<uint64_t>(std::min(total, kBlock), 8)));
  std::vector<uint8_t> out;
  std::vector<long> results;
  for (size_t first = 0; first < items.size();) {
    // The items whose outputs fit in one block.
    uint64_t used = 0;
    size_t end = first;
    for (; end < items.size(); ++end) {
      const uint64_t size = Aligned(items[end].read->item_size);
      if (end > first && used + size > kBlock) break;
      items[end].off = used;
      used += size;
    }
    results.assign((end - first) * 2, 0);
    for (size_t i = first; i < end; ++i) {
      const Item& it = items[i];
      for (uint32_t c = 0; c < it.read->nr_calls; ++c) {
        const kinds::RemoteCallSpec& call = it.read->calls[c];
        const std::array<uint64_t, 6> a = call.args(it.key, base + it.off);
        ASSIGN_OR_RETURN(long r, rs.Call(call.nr, a[0], a[1], a[2], a[3], a[4], a[5]));
        if (r < 0 && r > -4096) return ItemError(it, c, r, pid);
        results[(i - first) * 2 + c] = r;
      }
    }
    out.resize(used);
    if (used) RETURN_IF_ERROR(rs.ReadScratch(base, out.data(), used));
    for (size_t i = first; i < end; ++i) {
      const Item& it = items[i];
      it.read->decode(it.index, it.key, out.data() + it.off, &results[(i - first) * 2], proc);
    }
    first = end;
  }
  return OkStatus();
}

}  // namespace

Status CollectProcessByRemoteCalls(tracing::RemoteSyscall& rs, kinds::ProcessSource& src, img::Process* proc) {
  std::vector<Item> items;
  uint64_t total = 0;
  RETURN_IF_ERROR(PlanItems(src, proc, &items, &total));
  return RunItems(rs, items, total, proc);
}

namespace {

// The thread properties read by a call in the thread (kinds/thread_props.h),
// each output with its place in one block per thread.
struct ThreadReads {
  std::vector<const kinds::RemoteRead*> reads;
  std::vector<const char*> names;
  std::vector<uint64_t> offs;
  uint64_t size = 0;  // of the block

  ThreadReads() {
    for (const kinds::ThreadProperty& p : kinds::ThreadProperties()) {
      if (!p.remote) continue;
      reads.push_back(p.remote);
      names.push_back(p.name);
      offs.push_back(size);
      size += (p.remote->size + 7) & ~uint64_t{7};
    }
  }
};

// The remote-read properties of one group of threads: |threads[i]| is
// filled by calls in the thread of |rs[i]|. Each property's output has its
// place in one scratch block per thread.
Status CollectGroup(std::span<tracing::RemoteSyscall* const> rs, std::span<img::Thread* const> threads) {
  const ThreadReads tr;
  const auto& [reads, names, offs, size] = tr;
  if (reads.empty()) return OkStatus();
  std::vector<uint64_t> base(rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    ASSIGN_OR_RETURN(base[i], rs[i]->Scratch(size));
  }
  // Every read of a thread in one list, all threads at once.
  std::vector<std::vector<tracing::RemoteSyscall::SeqCall>> calls(rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    for (size_t k = 0; k < reads.size(); ++k) calls[i].push_back({reads[k]->nr, reads[k]->args(base[i] + offs[k])});
  }
  std::vector<std::vector<long>> r;
  RETURN_IF_ERROR(tracing::RemoteSyscall::RunSequences(rs, calls, &r));
  for (size_t i = 0; i < rs.size(); ++i) {
    for (size_t k = 0; k < reads.size(); ++k) {
      RETURN_IF_ERROR(CheckCall(r[i][k], std::string("remote read of ") + names[k] + " of thread", threads[i]->tid()));
    }
  }
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < rs.size(); ++i) {
    RETURN_IF_ERROR(rs[i]->ReadScratch(base[i], out.data(), out.size()));
    for (size_t k = 0; k < reads.size(); ++k) reads[k]->decode(out.data() + offs[k], threads[i]);
  }
  return OkStatus();
}

// The remote-read properties of every thread, by the parasite's thread
// calls (memdrain/thread_calls.h): all the calls of a thread in one run.
// False in *done when the parasite cannot be used here (remote calls then).
Status CollectThreadsByParasite(tracing::RemoteSyscall& leader, img::Process* proc, bool* done) {
  *done = false;
  const pid_t pid = proc->pid();
  const size_t n = static_cast<size_t>(proc->threads_size());
  const ThreadReads tr;
  const auto& [reads, names, offs, size] = tr;
  if (reads.empty()) {
    *done = true;
    return OkStatus();
  }
  if (reads.size() > memdrain::ThreadCalls::kMaxCalls || size > memdrain::ThreadCalls::kOutBytes) return OkStatus();
  auto injected = memdrain::ThreadCalls::Inject(&leader, 1 + std::min(n - 1, kParasiteGroup));
  if (!injected.ok()) {
    LOG_DEBUG("threads of %d: no thread calls (%s), remote calls instead", pid, injected.status().ToString().c_str());
    return OkStatus();
  }
  memdrain::ThreadCalls& tc = **injected;
  *done = true;
  std::vector<std::vector<memdrain::ThreadCall>> calls;
  std::vector<long> results;
  std::vector<uint8_t> out;
  // Groups of the other threads, the leader in each: it watches criu-fast.
  for (size_t first = 1; first < n; first += kParasiteGroup) {
    const size_t end = std::min(n, first + kParasiteGroup);
    std::vector<tracing::RemoteSyscall> attached;
    attached.reserve(end - first);
    std::vector<tracing::RemoteSyscall*> rs{&leader};
    std::vector<img::Thread*> threads{proc->mutable_threads(0)};
    for (size_t i = first; i < end; ++i) {
      img::Thread* t = proc->mutable_threads(static_cast<int>(i));
      ASSIGN_OR_RETURN(tracing::RemoteSyscall trs,
                       tracing::RemoteSyscall::Attach(pid, t->tid(), &leader.sites(), tracing::RemoteSyscall::Guard::kNone));
      attached.push_back(std::move(trs));
      rs.push_back(&attached.back());
      threads.push_back(t);
    }
    calls.assign(rs.size(), {});
    for (size_t i = 0; i < rs.size(); ++i) {
      for (size_t k = 0; k < reads.size(); ++k) {
        const std::array<uint64_t, 6> a = reads[k]->args(tc.OutAddr(i) + offs[k]);
        calls[i].push_back({reads[k]->nr, a});
      }
    }
    if (Status st = tc.Run(rs, calls, &results, &out); !st.ok()) {
      if (first != 1 || !tc.watch_failed()) return st;
      // The leader cannot watch criu-fast (no descriptor left for a
      // pidfd): every thread is back as it was; remote calls instead.
      LOG_INFO("threads of %d: %s: remote calls instead", pid, st.ToString().c_str());
      for (tracing::RemoteSyscall& t : attached) RETURN_IF_ERROR(t.Restore());
      *done = false;
      return tc.Remove();
    }
    // The leader's properties come with the first group only.
    for (size_t i = first == 1 ? 0 : 1; i < rs.size(); ++i) {
      for (size_t k = 0; k < reads.size(); ++k) {
        RETURN_IF_ERROR(CheckCall(results[i * memdrain::ThreadCalls::kMaxCalls + k],
                                  std::string("remote read of ") + names[k] + " of thread", threads[i]->tid()));
        reads[k]->decode(out.data() + i * memdrain::ThreadCalls::kOutBytes + offs[k], threads[i]);
      }
    }
    for (tracing::RemoteSyscall& t : attached) RETURN_IF_ERROR(t.Restore());
  }
  return tc.Remove();
}

}  // namespace

Status CollectThreadsByRemoteCalls(tracing::RemoteSyscall& leader, const tracing::RemoteSites& sites,
                                   img::Process* proc) {
  const pid_t pid = proc->pid();
  const size_t n = static_cast<size_t>(proc->threads_size());
  if (n >= kParasiteMin) {
    bool done = false;
    RETURN_IF_ERROR(CollectThreadsByParasite(leader, proc, &done));
    if (done) return OkStatus();
  }
  for (size_t first = 0; first < n; first += kGroup) {
    const size_t end = std::min(n, first + kGroup);
    // The leader (thread 0) is already attached: it joins the first group.
    std::vector<tracing::RemoteSyscall> attached;
    attached.reserve(end - first);
    std::vector<tracing::RemoteSyscall*> rs;
    std::vector<img::Thread*> threads;
    for (size_t i = first; i < end; ++i) {
      img::Thread* t = proc->mutable_threads(static_cast<int>(i));
      if (i == 0) {
        rs.push_back(&leader);
      } else {
        ASSIGN_OR_RETURN(tracing::RemoteSyscall trs, tracing::RemoteSyscall::Attach(pid, t->tid(), &sites));
        attached.push_back(std::move(trs));
        rs.push_back(&attached.back());
      }
      threads.push_back(t);
    }
    RETURN_IF_ERROR(CollectGroup(rs, threads));
    for (tracing::RemoteSyscall& t : attached) RETURN_IF_ERROR(t.Restore());
  }
  return OkStatus();
}

Status CollectRemoteGroup(std::span<const RemoteTarget> targets) {
  using SeqCall = tracing::RemoteSyscall::SeqCall;
  const ThreadReads tr;
  // A process read with the others: its items, and its threads other than
  // the leader, attached here.
  struct Joined {
    const RemoteTarget* target;
    std::vector<Item> items;
    uint64_t total = 0;  // bytes of the items' outputs, before the leader's thread reads
    std::vector<tracing::RemoteSyscall> attached;
  };
  std::vector<Joined> joined;
  joined.reserve(targets.size());
  // Every thread that takes part: its calls and where its outputs are.
  std::vector<tracing::RemoteSyscall*> who;
  std::vector<std::vector<SeqCall>> calls;
  std::vector<uint64_t> base;
  for (const RemoteTarget& t : targets) {
    img::Process* proc = t.proc;
    const size_t n = static_cast<size_t>(proc->threads_size());
    std::vector<Item> items;
    uint64_t total = 0;
    RETURN_IF_ERROR(PlanItems(*t.src, proc, &items, &total));
    if (total > kBlock || n >= kParasiteMin || n == 0) {
      // Several blocks of output, or the parasite's thread calls: alone.
      RETURN_IF_ERROR(RunItems(*t.leader, items, total, proc));
      RETURN_IF_ERROR(CollectThreadsByRemoteCalls(*t.leader, *t.sites, proc));
      continue;
    }
    Joined& j = joined.emplace_back();
    j.target = &t;
    j.items = std::move(items);
    j.total = total;
    j.attached.reserve(n - 1);  // no reallocation: |who| points into it
    for (size_t i = 0; i < n; ++i) {
      tracing::RemoteSyscall* rs = t.leader;
      if (i > 0) {
        ASSIGN_OR_RETURN(tracing::RemoteSyscall a,
                         tracing::RemoteSyscall::Attach(proc->pid(), proc->threads(static_cast<int>(i)).tid(), t.sites));
        j.attached.push_back(std::move(a));
        rs = &j.attached.back();
      }
      // The leader's block: the process's items, then its thread reads.
      const uint64_t own = i == 0 ? total : 0;
      ASSIGN_OR_RETURN(const uint64_t b, rs->Scratch(std::max<uint64_t>(own + tr.size, 8)));
      std::vector<SeqCall> c;
      if (i == 0) {
        uint64_t off = 0;
        for (Item& it : j.items) {
          it.off = off;
          off += Aligned(it.read->item_size);
          for (uint32_t k = 0; k < it.read->nr_calls; ++k) {
            c.push_back({it.read->calls[k].nr, it.read->calls[k].args(it.key, b + it.off)});
          }
        }
      }
      for (size_t k = 0; k < tr.reads.size(); ++k) c.push_back({tr.reads[k]->nr, tr.reads[k]->args(b + own + tr.offs[k])});
      who.push_back(rs);
      calls.push_back(std::move(c));
      base.push_back(b);
    }
  }
  if (who.empty()) return OkStatus();
  std::vector<std::vector<long>> results;
  RETURN_IF_ERROR(tracing::RemoteSyscall::RunSequences(who, calls, &results));
  // Every result checked and every output read back and stored, thread by
  // thread in the order they were added.
  std::vector<uint8_t> out;
  size_t w = 0;
  for (Joined& j : joined) {
    img::Process* proc = j.target->proc;
    for (int i = 0; i < proc->threads_size(); ++i, ++w) {
      const uint64_t own = i == 0 ? j.total : 0;
      const std::vector<long>& r = results[w];
      if (r.size() != calls[w].size()) return Errorf("remote reads of process %d stopped early", proc->pid());
      size_t at = 0;
      if (i == 0) {
        for (const Item& it : j.items) {
          for (uint32_t k = 0; k < it.read->nr_calls; ++k, ++at) {
            if (r[at] < 0 && r[at] > -4096) return ItemError(it, k, r[at], proc->pid());
          }
        }
      }
      img::Thread* t = proc->mutable_threads(i);
      for (size_t k = 0; k < tr.reads.size(); ++k) {
        RETURN_IF_ERROR(CheckCall(r[at + k], std::string("remote read of ") + tr.names[k] + " of thread", t->tid()));
      }
      out.resize(own + tr.size);
      RETURN_IF_ERROR(who[w]->ReadScratch(base[w], out.data(), out.size()));
      if (i == 0) {
        at = 0;
        for (const Item& it : j.items) {
          it.read->decode(it.index, it.key, out.data() + it.off, &r[at], proc);
          at += it.read->nr_calls;
        }
      }
      for (size_t k = 0; k < tr.reads.size(); ++k) tr.reads[k]->decode(out.data() + own + tr.offs[k], t);
    }
    for (tracing::RemoteSyscall& a : j.attached) RETURN_IF_ERROR(a.Restore());
  }
  return OkStatus();
}

}  // namespace cf::engine
