#!/bin/bash
# An inotify watch on a deleted file the program holds open
# (kinds/inotify.cc; tests/progs/desc_inotify_deleted.c), between two
# watches on files that exist.
#
# 1. dump: the watch is saved without a path, the file in a ghost image;
# 2. restore: every watch has its number again, and the deleted file's
#    watch reports the program's writes to it (the watch is on the file the
#    descriptor holds, recreated from the ghost image and deleted again).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog desc_inotify_deleted "$W"
pid=$PROG_PID
check_pass "$W"

dump_kill dump "$pid" "$E2E_TMP/img"
cf_show "$E2E_TMP/img" "$E2E_TMP/show.json"
pycheck "watches in the image" "$E2E_TMP/show.json" "$pid" <<'PY'
show, pid = load(sys.argv[1]), int(sys.argv[2])
fds = {int(f["fd"]): f for f in proc(show, pid)["core"].get("fds", [])}
ws = [(int(w["wd"]), w.get("path", "")) for w in fds[20]["inotify"].get("watches", [])]
if [wd for wd, _ in ws] != [1, 2, 3] or ws[1][1] != "" or not ws[0][1] or not ws[2][1]:
    fail("watches %s: want 1 and 3 with a path, 2 (the deleted file) without" % ws)
if not fds[30].get("reg", {}).get("deleted"):
    fail("fd 30 is not saved as a deleted file: %s" % fds[30])
PY
[ -e "$W/d/gone" ] && fail "the deleted file is back before the restore"
restore_d restore "$E2E_TMP/img" "$pid"
[ -e "$W/d/gone" ] && fail "the deleted file stayed after the restore"
check_pass "$W"
log "PASS"
