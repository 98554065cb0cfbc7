#!/bin/bash
# Strict seccomp (tests/progs/seccomp_strict.c) in one thread of a process
# whose main thread has none, and in a child process.
#
# 0. criu-fast run under a seccomp filter of its own cannot suspend the
#    tree's (PTRACE_O_SUSPEND_SECCOMP): the dump is refused with one error
#    naming the thread, and the tree runs on, strict tasks included.
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

# A criu-fast under an allow-all filter (python3 installs it, then execs).
cat >"$E2E_TMP/under_seccomp" <<EOF2
#!/bin/sh
exec python3 -c '
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
allow = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0x7fff0000))  # BPF_RET|BPF_K, RET_ALLOW
prog = ctypes.create_string_buffer(struct.pack("HxxxxxxQ", 1, ctypes.addressof(allow)))
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.syscall(317, 1, 0, prog) != 0:
    sys.exit("seccomp: errno %d" % ctypes.get_errno())
os.execv(sys.argv[1], sys.argv[1:])
' "$CRIU_FAST" "\$@"
EOF2
chmod +x "$E2E_TMP/under_seccomp"
real_cf=$CRIU_FAST
CRIU_FAST=$E2E_TMP/under_seccomp
run_cf dump-filtered dump -t "$root" -D "$E2E_TMP/img-f" -R
CRIU_FAST=$real_cf
assert_cf_error "dump by a criu-fast under seccomp"
cf_error_line | grep -q "under seccomp (mode 1)" || fail "unexpected error: $(cf_error_line)"
assert_running_untraced "$root" "after the refused dump"
assert_running_untraced "$child" "the child after the refused dump"
[ "$(ls "/proc/$root/task" | wc -l)" = 2 ] || fail "the strict thread died in the refused dump"

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
