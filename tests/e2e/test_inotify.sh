#!/bin/bash
# Inotify (tests/progs/inotifys.c): an instance watching a directory and a
# file under watch descriptors 2 and 4 (gaps left by removed watches), dup'ed,
# and a second instance watching the directory as wd 1.
#
# 1. dump -R: the image has each watch with its wd, mask, inode and the path
#    found from its file handle; the program runs on; the self-check passes.
# 2. dump (kill) + restore -d: touching the file and creating a file in the
#    directory give events with the same watch descriptors; flags and the
#    dup are back.
# 3. once more.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog inotifys "$W"
pid=$PROG_PID

run_cf dump-r dump -t "$pid" -D "$E2E_TMP/img-r" -R -v4 -o "$E2E_TMP/dump-r.log"
CF_LOG=$E2E_TMP/dump-r.log
assert_cf_ok "dump -R"
assert_running_untraced "$pid" "after dump -R"
cf_show "$E2E_TMP/img-r" "$E2E_TMP/show.json"
pycheck "inotify watches in the image" "$E2E_TMP/show.json" "$pid" "$(cd "$W" && pwd -P)" <<'EOF2'
show = load(sys.argv[1])
w = sys.argv[3]
fds = {f["fd"]: f for f in proc(show, int(sys.argv[2]))["core"]["fds"] if fd_kind(f) == "inotify"}
if sorted(fds) != [3, 4, 5]:
    fail("inotify fds at %r, want 3, 4, 5" % sorted(fds))
def watches(fd):
    return [(x["wd"], x["path"], x["mask"], u(x["inode"])) for x in fds[fd]["inotify"].get("watches", [])]
d, f = os.stat(w + "/dir"), os.stat(w + "/dir/file")
want1 = [(2, w + "/dir", 0x100, d.st_ino), (4, w + "/dir/file", 0x2, f.st_ino)]
if watches(3) != want1 or watches(5) != want1:
    fail("i1 watches %r / %r, want %r" % (watches(3), watches(5), want1))
if watches(4) != [(1, w + "/dir", 0x200, d.st_ino)]:
    fail("i2 watches %r" % watches(4))
if any(not x.get("fhandle") for x in fds[3]["inotify"]["watches"]):
    fail("a watch without its file handle")
if fds[3]["file_id"] != fds[5]["file_id"] or fds[3]["file_id"] == fds[4]["file_id"]:
    fail("fds 3 and 5 should share one description, 4 have its own")
EOF2
CF_LOG=
check_pass "$W"

dump_kill dump "$pid" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$pid"
check_pass "$W"

dump_kill dump2 "$pid" "$E2E_TMP/img2"
restore_d restore2 "$E2E_TMP/img2" "$pid"
check_pass "$W"
check_pass "$W"
log "PASS"
