// Shared pieces of the libFuzzer harnesses (tests/fuzz/README.md).
//
// The readers take paths and descriptors, so each input goes into a memfd
// that the harness names /proc/self/fd/N. Every record carries an XXH3
// checksum a mutated input almost never matches: the harnesses run each input
// twice, as it is (the checks that reject it) and with its checksums, stream
// digest and trailer counts recomputed (what lies behind them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/fd.h"

namespace cf::fuzz {

// Silences logging (errors included): once per process.
void Init();

// A memfd holding |data| (offset 0); aborts when none can be made, which is
// a harness failure, not a finding.
UniqueFd MemFile(const uint8_t* data, size_t size);

// A path that opens the file of |fd| anew.
std::string FdPath(int fd);

// A copy of an image file (FileHeader + records) with the checksum of every
// record that fits recomputed.
std::vector<uint8_t> FixImageChecksums(const uint8_t* data, size_t size);

// A copy of a stream with every record checksum recomputed and, when the
// trailer parses, its counts, byte offset and digest set to match what
// precedes it.
std::vector<uint8_t> FixStreamChecksums(const uint8_t* data, size_t size);

// Aborts with |what| when |cond| is false: a broken invariant is a finding.
void Check(bool cond, const char* what);

}  // namespace cf::fuzz
