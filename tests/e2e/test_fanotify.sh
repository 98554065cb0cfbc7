#!/bin/bash
# Fanotify groups (tests/progs/fanotifys.c): group flags, an inode mark and
# a mount mark with an ignored mask.
#
# 1. dump -R: the image has the group's flags and both marks with paths;
#    the self-check passes.
# 2. dump (kill) + restore -d: the group has the same flags and marks, and
#    opening the watched file queues an event; the self-check passes.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog fanotifys "$W"
root=$PROG_PID

dump_r "$E2E_TMP/img-r" "$root"
pycheck "fanotify in the image" "$E2E_TMP/show.json" "$root" "$W" <<'EOF2'
show = load(sys.argv[1])
root, w = int(sys.argv[2]), sys.argv[3]
fas = [f for f in proc(show, root)["core"].get("fds", []) if fd_kind(f) == "fanotify"]
if len(fas) != 1:
    fail("want one fanotify fd, got %d" % len(fas))
marks = fas[0]["fanotify"].get("marks", [])
paths = sorted((bool(m.get("mount")), m.get("path")) for m in marks)
if len(marks) != 2 or paths[0] != (False, w + "/watched") or not paths[1][0]:
    fail("marks %r" % marks)
EOF2
CF_LOG=
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"
log "PASS"
