#!/bin/bash
# Strict seccomp (tests/progs/seccomp_strict.c) in one thread of a process
# whose main thread has none, and in a child process.
#
# 1. dump -R: both strict tasks survive the dump (criu-fast's calls in them
#    would kill them, were they not suspended) and the image has each
#    thread's mode.
# 2. dump (kill) + restore -d: the modes are back, both tasks echo through
#    their pipes (read and write allowed), and a forbidden call (getpid)
#    kills the thread and the child.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog seccomp_strict "$W"
root=$PROG_PID
child=$(cat /proc/"$root"/task/"$root"/children 2>/dev/null | tr -dc "0-9")
[ -n "$child" ] || fail "no child of $root"

dump_r "$E2E_TMP/img-r" "$root" "$child"
[ "$(ls "/proc/$root/task" | wc -l)" = 2 ] || fail "the strict thread died in dump -R"
pycheck "modes in the image" "$E2E_TMP/show.json" "$root" "$child" <<'EOF2'
show = load(sys.argv[1])
root, child = int(sys.argv[2]), int(sys.argv[3])
modes = [int(t.get("seccomp_mode", 0)) for t in proc(show, root)["core"]["threads"]]
if modes != [0, 1]:
    fail("modes of the threads %r, want [0, 1]" % modes)
modes = [int(t.get("seccomp_mode", 0)) for t in proc(show, child)["core"]["threads"]]
if modes != [1]:
    fail("mode of the child %r, want [1]" % modes)
EOF2

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"
log "PASS"
