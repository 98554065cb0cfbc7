#!/bin/bash
# The threads of a process with 16 threads or more read their own properties
# by the parasite's thread calls (memdrain/thread_calls.h), whose leader
# needs one descriptor (a pidfd of criu-fast) while they run. A process with
# no descriptor left (RLIMIT_NOFILE down to the descriptors it holds) gets
# remote calls instead: dump -R and the dump that kills it both succeed (the
# log says why), the process runs on, and the restored one passes its
# self-check (its threads and their counters, tests/progs/busytree.c). The
# restore itself works at that limit too: the restorer sets the resource
# limits last, after every descriptor of the restore is made.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog busytree "$W" 1 4 24
pid=$PROG_PID
[ "$(ls "/proc/$pid/task" | wc -l)" -ge 16 ] || fail "busytree has fewer than 16 threads"

# Its descriptors are 0..N-1: a soft limit of N leaves none free (raised
# again for each self-check, which opens its report file).
mapfile -t fds < <(ls "/proc/$pid/fd" | sort -n)
n=${#fds[@]}
[ "${fds[$((n - 1))]}" = $((n - 1)) ] || fail "descriptors of busytree are not 0..$((n - 1)): ${fds[*]}"
prlimit --pid "$pid" --nofile="$n:1024" || fail "prlimit --nofile=$n"
log "busytree holds $n descriptors, RLIMIT_NOFILE $n"

dump_r "$E2E_TMP/img-r" "$pid"
grep -q "remote calls instead" "$E2E_TMP/dump-r.log" || fail "dump -R: no fallback to remote calls in the log"
prlimit --pid "$pid" --nofile=1024:1024 && check_pass "$W"
prlimit --pid "$pid" --nofile="$n:1024"

dump_kill dump "$pid" "$E2E_TMP/img"
grep -q "remote calls instead" "$E2E_TMP/dump.log" || fail "dump: no fallback to remote calls in the log"
wait_pid_free "$pid" 20
restore_d restore "$E2E_TMP/img" "$pid"
[ "$(prlimit --pid "$pid" --nofile -o SOFT --raw --noheadings | tr -d " ")" = "$n" ] || fail "RLIMIT_NOFILE not restored"
prlimit --pid "$pid" --nofile=1024:1024 && check_pass "$W"
log "PASS: $n descriptors, the threads' properties by remote calls"
