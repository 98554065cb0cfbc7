// Dumping the memory of one frozen process: scan, then the page pipeline.
//
// 1. Scan (on the calling thread): per VMA, the pages that must be saved
//    (pagemap/scan.h): present or swapped private anonymous pages but the zero
//    page and the written (COW) pages of private file mappings. Shared
//    anonymous memory and memfds are saved once per object (kinds/shmem.h);
//    shared file mappings and the vDSO are not saved.
// 2. The page list, in address order, goes through the page pipeline
//    (sched/page_pipeline.h) on --jobs threads: batches of up to kChunkPages
//    pages are drained (memdrain/page_reader.h, or the pipes the vmsplice
//    parasite filled: memdrain/pinned_pages.h), their all-zero pages dropped
//    (recorded as ZERO ranges), the rest compressed with --compress and
//    written as one framed chunk of pages-PID.img; the pagemap records DATA
//    ranges in the same order.
// No ptrace request is made here: draining uses process_vm_readv and
// /proc/PID/mem only, which any thread may do.
#pragma once

#include <sys/types.h>

#include <span>
#include <vector>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "engine/stats.h"
#include "memdrain/drain.h"
#include "memdrain/parasite.h"
#include "memdrain/pinned_pages.h"
#include "pagemap/vma.h"
#include "sched/arena.h"
#include "sched/page_pipeline.h"
#include "streams/codec.h"
#include "streams/image_file.h"

namespace cf::engine {

inline constexpr uint64_t kChunkPages = sched::kChunkPages;  // 2 MiB of raw data per chunk

struct PageDumpOptions {
  bool force_pagemap_fallback = false;
  streams::CodecSpec codec;
  int jobs = 0;                    // threads of the page pipeline (0: number of CPUs)
  sched::Arena* arena = nullptr;   // run there (shared by the processes of a dump); null: an own one of |jobs|
  // Incremental dumps (sched::PagePipelineOptions).
  bool hash_pages = false;
  const pagemap::ParentPages* parent = nullptr;
  bool skip_vanished = false;
  // Deduplication within the dump (sched/dedup.h), shared by every process.
  sched::DedupTable* dedup = nullptr;
};

// Write tracking during a scan (pagemap/uffd_track.h, engine/track.h).
struct TrackScan {
  int uffd = -1;           // the process's userfaultfd, or -1: no tracking
  bool inherited = false;  // the one the parent image armed: its written bits hold since the parent's scan
  bool rearm = false;      // write-protect again, for the next increment
  const pagemap::ParentPages* parent = nullptr;  // the parent's pages of this process
  // Per VMA of the process (by index): tracked since the parent's scan,
  // found by CheckTracked before the scan; empty: found during the scan.
  std::vector<uint8_t> tracked;
};

// Finds before the scan which VMAs of |proc| |track| covers since the
// parent's scan, as the scan would (into track->tracked). That check
// registers each VMA with the userfaultfd again, which takes the process's
// mmap lock for writing: a dump that reads smaps beside the scan (its walk
// holds the lock for reading) does it first.
Status CheckTracked(pid_t pid, const img::Process& proc, bool fallback, TrackScan* track);

// Adds what one page pipeline run did (stage thread times, counters) to |stats|.
void AddPipelineStats(const sched::PagePipelineStats& ps, DumpCounters* stats);

// The steps of a process's page dump (engine/dump.cc puts them together).
// Scan: the pages to save, in address order; the guard regions go to
// |pagemap|. With |track|, pages that tracking saw unwritten since the
// parent's scan and that the parent holds are marked from_parent (not read);
// mappings tracking did not cover are read in full (counted as untracked).
Result<std::vector<sched::PageSource>> ScanPages(pid_t pid, const img::Process& proc, const PageDumpOptions& opts,
                                                 DumpCounters* stats, img::PageMap* pagemap,
                                                 const TrackScan* track = nullptr);

// Copy-on-write sharing after fork (pagemap/frames.h, kinds/fork_cow.h).
// The pages of |sources| (those taken from a parent image included) in VMAs
// fork copies, whose frames a parent process keeps for its children to
// compare.
std::vector<pagemap::PageRange> ForkCopiedPages(const img::Process& proc, std::span<const sched::PageSource> sources);
// The pages of |sources| a child may share with |parent|: in VMAs fork
// copied that |parent| has alike (kinds::SameAfterFork), which restore can
// hand down again the same way. Pages tracking took from the parent image
// are among them: sharing is decided first (INHERITED wins over PARENT).
std::vector<pagemap::PageRange> InheritablePages(const img::Process& child, const img::Process& parent,
                                                 std::span<const sched::PageSource> sources);
// Takes |pages| out of |sources| (they are not read).
void RemovePages(const pagemap::RangeSet& pages, std::vector<sched::PageSource>* sources);
// Records |pages| in |pagemap| as INHERITED ranges, in address order among
// the ranges the page pipeline wrote.
void AddInherited(const pagemap::RangeSet& pages, img::PageMap* pagemap);

// The page pipeline over |sources|, reading through |drain| (a
// memdrain::PageReader, or the pipes of PinPages below), into |pages| (the
// process's pages files: one, or several for a large process).
Status WritePages(pid_t pid, std::span<const sched::PageSource> sources, const memdrain::PageDrain& drain,
                  const PageDumpOptions& opts, std::span<streams::ImageWriter* const> pages,
                  img::PageMap* pagemap, DumpCounters* stats);
// Pipes needed to pin all of |sources| (the pipeline's batches, each cut
// into pipes of memdrain::PipeCapacity()).
uint64_t PipesNeeded(std::span<const sched::PageSource> sources);
// |sources| cut at batch boundaries into windows that need at most
// |max_pipes| pipes each (at least one batch per window).
std::vector<std::vector<sched::PageSource>> SplitByPipes(std::span<const sched::PageSource> sources,
                                                         uint64_t max_pipes);
// Pins the pages of |sources| with |parasite| (in pipes; batches of
// unreadable VMAs are copied with /proc/PID/mem) into |out|.
Status PinPages(pid_t pid, std::span<const sched::PageSource> sources, memdrain::Parasite& parasite,
                memdrain::PinnedPages* out, DumpCounters* stats);

}  // namespace cf::engine
