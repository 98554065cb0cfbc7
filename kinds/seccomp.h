// seccomp: each thread's mode (none, strict, filters), its filters and its
// no_new_privs flag.
//
// Dump. The mode and no_new_privs come with a thread's credentials (its
// /proc/PID/task/TID/status, kinds/thread_props.cc). The filters of a
// thread in filter mode are read with PTRACE_SECCOMP_GET_FILTER, oldest
// (index 0) to newest, and their flags with PTRACE_SECCOMP_GET_METADATA.
// The kernel keeps a chain by its newest filter, each filter pointing at the
// one installed before it, and shares chains between threads and across
// fork. The image keeps that shape: Process.seccomp_filters holds each
// distinct (program, flags, parent) once, and a thread names the newest
// filter of its chain. Two kernel filters equal in all three behave the
// same, so comparing contents is enough (kcmp's KCMP_SECCOMP_FILTER only
// compares two tasks' newest filters).
//
// The dump itself runs system calls in the frozen threads (remote calls,
// parasite): a filter could refuse them. The threads are seized with
// PTRACE_O_SUSPEND_SECCOMP (ptrace/seize.cc), under which the kernel checks
// no seccomp rule for a traced task; it needs CAP_SYS_ADMIN and a tracer
// not under seccomp itself. Without it, a thread under seccomp is refused.
//
// Restore (blobs/restorer/restorer.c). The filters every thread has are
// installed by the leader before it creates the threads, so they inherit
// the very same chain (a later SECCOMP_FILTER_FLAG_TSYNC needs the threads'
// chains to be one); each thread then installs the rest of its own, oldest
// first, before its credentials drop CAP_SYS_ADMIN. Strict mode is each
// thread's last call. The restored tree is traced with
// PTRACE_O_SUSPEND_SECCOMP meanwhile (restore/restore.cc), so the restorer's
// later calls and criu-fast's remote calls are not filtered. Chains shared
// between processes come back as copies of equal contents (each process is
// restored on its own).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "common/status.h"
#include "criu_fast.pb.h"
#include "kinds/kind.h"
#include "kinds/process_props.h"

namespace cf::kinds {

// Reads the filter chains of the threads of |p| in filter mode (their
// seccomp_mode is already read), each distinct filter once into
// p->seccomp_filters. Runs on the thread that seized them.
Status CollectSeccompFilters(pid_t pid, img::Process* p);

// Whether threads under seccomp can be dumped: the tracer may suspend their
// filters. |tid| is a seized, stopped thread in seccomp mode |mode|.
Status CheckSeccompSuspended(pid_t tid, uint32_t mode);

// Bytes of the args block the filters of |p| take (records and programs).
uint64_t SeccompArgsBytes(const img::Process& p);

// Writes the filters into the args block (at args->seccomp_off, room for
// SeccompArgsBytes) and the chain every thread shares.
void SeccompToArgs(const img::Process& p, ProcessArgs* out);

// Whether some thread of |p| is under seccomp (restore traces it with
// PTRACE_O_SUSPEND_SECCOMP).
bool UsesSeccomp(const img::Process& p);

// `check`: PTRACE_O_SUSPEND_SECCOMP on a seized child; and a child's
// filter read back with PTRACE_SECCOMP_GET_FILTER and its flags with
// PTRACE_SECCOMP_GET_METADATA.
ProbeResult ProbeSeccompSuspend();
ProbeResult ProbeSeccompFilters();

}  // namespace cf::kinds
