// jemalloc's options for one run of criu-fast, chosen from its command line
// before jemalloc starts.
//
// jemalloc reads its options once, at its first allocation, which a
// library's constructor makes before main(). engine/main.cc calls
// ChooseMallocConf from a .preinit_array function, which the dynamic loader
// runs before any constructor: nothing here may allocate.
//
// Huge pages for criu-fast's own heap (kMallocConfHuge) save a dump or a
// restore of one big process many page faults. A restore of a tree forks
// each process from its parent, a copy of criu-fast: every process then
// splits the huge pages it inherits as it first writes to them, or faults
// in fresh ones, and the tree restores faster with 4 KiB pages
// (kMallocConfSmall; README, "Scale"). MALLOC_CONF still overrides both.
#pragma once

namespace cf::engine {

inline constexpr const char* kMallocConfHuge = "thp:always,metadata_thp:always";
inline constexpr const char* kMallocConfSmall = "thp:default,metadata_thp:disabled";

// kMallocConfSmall for `restore` from an images directory (-D DIR,
// -DDIR, --images-dir DIR or =DIR; "." by default) that holds two process
// images or more; kMallocConfHuge otherwise (a stream's count is unknown
// before it is read).
const char* ChooseMallocConf(int argc, const char* const* argv);

// At least |n| process images (core-*.img) in |dir|; false if it cannot be
// read. Allocates nothing.
bool HasProcessImages(const char* dir, int n);

// jemalloc's transparent huge page mode in this process ("always",
// "default", ...), or "none" without jemalloc (the sanitizer build).
const char* MallocThpMode();

}  // namespace cf::engine
