#!/bin/bash
# seccomp filters (tests/progs/seccomp_filters.c): a process whose three
# threads share the chain A <- D (D installed with TSYNC), and a child that
# inherited A across fork, whose main thread added B and whose other thread
# did not; no_new_privs in both.
#
# 1. dump -R: the filtered threads run on untouched (criu-fast's calls in
#    them are not filtered, PTRACE_O_SUSPEND_SECCOMP: A kills the process on
#    sigaltstack, which the dump runs in every thread); the image holds each
#    distinct filter once, with its parent, flags and each thread's mode.
# 2. dump (kill) + restore -d: in every thread the filtered calls fail with
#    their errno, the others work, and a new filter installed with TSYNC
#    reaches every thread (the threads share one chain again, not copies).
#    Checked twice.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog seccomp_filters "$W"
root=$PROG_PID
child=$(tr -dc '0-9' <"$W/ready.child")

dump_r "$E2E_TMP/img-r" "$root" "$child"
pycheck "seccomp in the image" "$E2E_TMP/show.json" "$root" "$child" <<'EOF2'
show = load(sys.argv[1])
root, child = int(sys.argv[2]), int(sys.argv[3])
def chain(core, top):
    out = []
    while top:
        f = core["seccomp_filters"][top - 1]
        out.append((len(f["prog"]), int(f.get("flags", 0))))
        top = int(f.get("parent", 0))
    return out[::-1]
LOG = 2  # SECCOMP_FILTER_FLAG_LOG
A = (64, LOG)  # 6 instructions of 8 bytes, base64 in show: 64 characters (the others: 4, 44)
for pid, nfilters, tops in ((root, 2, [[A, (44, 0)]] * 3), (child, 2, [[A, (44, 0)], [A]])):
    core = proc(show, pid)["core"]
    if len(core.get("seccomp_filters", [])) != nfilters:
        fail("process %d: %d filters saved, want %d (each once)" % (pid, len(core.get("seccomp_filters", [])), nfilters))
    threads = core["threads"]
    got = [chain(core, int(t.get("seccomp_filter", 0))) for t in threads]
    if got != tops:
        fail("process %d: chains %r, want %r" % (pid, got, tops))
    for t in threads:
        if int(t.get("seccomp_mode", 0)) != 2 or not t.get("no_new_privs"):
            fail("thread %s: mode %s no_new_privs %s" % (t["tid"], t.get("seccomp_mode"), t.get("no_new_privs")))
EOF2

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"
check_pass "$W"
log "PASS"
