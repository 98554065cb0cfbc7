#!/bin/bash
# Zombie children (tests/progs/zombies.c): exited with a code, killed by a
# signal, a clone child with no exit signal, a zombie group leader with a
# live member, a zombie whose group leader is gone, one of another uid.
#
# 1. dump -R: the image lists the zombies with their status; the program
#    still finds them all (nothing was reaped).
# 2. dump (kill), restore: each zombie is back with its pid, status, group
#    and uid, unwaited, and no SIGCHLD reached the program.
# 3. the restored tree is dumped and restored again, and passes again.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog zombies "$W"
root=$PROG_PID

dump_r "$E2E_TMP/img-r" "$root"
pycheck "zombies in show" "$E2E_TMP/show.json" "$root" <<'PY'
show = load(sys.argv[1])
core = proc(show, int(sys.argv[2]))["core"]
z = core.get("zombies", [])
if len(z) != 7:
    fail("%d zombies in the image, want 7: %r" % (len(z), z))
statuses = sorted(int(x.get("exit_status", 0)) for x in z)
if statuses != sorted([0, 7 << 8, 9, 11, 5 << 8, 9 << 8, 3 << 8]) and \
   statuses != sorted([0, 7 << 8, 9, 11 | 0x80, 5 << 8, 9 << 8, 3 << 8]):
    fail("zombie statuses %r" % statuses)
PY
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"

dump_kill dump2 "$root" "$E2E_TMP/img2"
restore_d restore2 "$E2E_TMP/img2" "$root"
check_pass "$W"
log "PASS"
