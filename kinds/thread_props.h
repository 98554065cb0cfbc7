// Per-thread properties: one table, each entry with its read (dump) and its
// apply (restore), run by the same code for the thread-group leader and for
// every other thread.
//
// A property is read in one of two ways:
//   read    by criu-fast, the tracer: ptrace requests, /proc/PID/task/TID;
//   remote  by one system call run inside the frozen thread (sigaltstack,
//           prctl): the call, given where its output goes, and how to
//           decode that output. The dump runs each such call in all the
//           threads of a group at once (engine/collect_remote.cc).
// and applied in one of two ways:
//   to_args into the thread's record of the restorer args (cf_rst_thread,
//           blobs/restorer/restorer_abi.h), which the restorer blob sets
//           in the thread itself, one function for every thread;
//   load    by criu-fast with ptrace, once the restorer has stopped
//           (registers, xstate, blocked mask: the very last step).
// Each entry has exactly one read and one apply (kinds/thread_props_test.cc).
//
// Process-wide state (sigactions, itimers, the process's signal queue,
// credentials, ...) is the per-process table, kinds/process_props.h: read
// once per process.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <span>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "blobs/restorer/restorer_abi.h"

namespace cf::kinds {

// A property read by one system call run in the thread.
struct RemoteRead {
  long nr;
  uint32_t size;  // bytes the call writes at its output address
  // The call's arguments, given the address of its output in the thread.
  std::array<uint64_t, 6> (*args)(uint64_t out);
  // Stores the output (|size| bytes read back from the thread).
  void (*decode)(const uint8_t* out, img::Thread* t);
};

// Where a thread's properties go in the restorer args.
struct ThreadArgs {
  cf_rst_thread* thread;     // its record
  cf_rst_siginfo* siginfo;   // the args block's queued signals (all queues)
  uint32_t* nr_siginfo;      // records used so far in |siginfo|
  uint32_t max_siginfo;      // room in |siginfo|
};

struct ThreadProperty {
  const char* name;
  Status (*read)(pid_t pid, pid_t tid, img::Thread* out);
  const RemoteRead* remote;
  void (*to_args)(const img::Thread& t, ThreadArgs* out);
  Status (*load)(pid_t tid, const img::Thread& t);
};

// The table, in the order the properties are read and applied.
std::span<const ThreadProperty> ThreadProperties();

// Number of signals the thread's properties queue in the restorer args
// (its private queue), for sizing the args block.
uint32_t QueuedSignals(const img::Thread& t);

// Reads one signal queue of |tid| with PTRACE_PEEKSIGINFO: the thread's own,
// or with |shared| its process's.
Status PeekSignals(pid_t tid, bool shared, google::protobuf::RepeatedPtrField<img::SigInfo>* out);

// Appends one queued signal to the restorer args (|tid| 0: process-wide).
void AddSigInfo(const img::SigInfo& si, int32_t tid, ThreadArgs* out);

// Reads criu-fast's own credentials, which the restored threads are
// compared with, unless read already (kinds::ReadInheritedState).
void ReadOwnCredentials();

}  // namespace cf::kinds
