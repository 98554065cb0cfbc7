#!/bin/bash
# Several pages files for one large process (sched::WritersFor: 64 MiB or
# more to read and --jobs 2): memmix 96 MB (tests/progs/memmix.c).
#   - dump --jobs 2 (killed): pages-PID.img and pages-PID-1.img, the pagemap
#     names the second, chunks lie in both; `show` lists both files; restore
#     brings memmix back and its self-check passes;
#   - the same restored process dumped with --jobs 1: one file only;
#   - with --drain vmsplice, and live (-R --live): two files, restored;
#   - dump --jobs 2 again; damaged copies of that image are refused by
#     restore with one Error line naming the second file: a byte flipped in
#     it, it cut short, it removed; no process is left;
#   - a pre-dump (--jobs 2, two files) then a dump against it
#     (--prev-images-dir): restore reads the parent's two files;
#   - CF_FAULT=image-pwrite (a positioned write fails) with dump -R: the dump
#     fails cleanly, memmix runs on, and no file of the dump is left;
#   - merge of the incremental image: one pages file, and it restores.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

MB=96
W=$E2E_TMP/memmix
start_prog memmix "$W" "$MB"
pid=$PROG_PID

# files DIR: the pages files of the image in DIR, sorted.
files() { (cd "$1" && ls pages-*.img 2>/dev/null | sort | tr '\n' ' '); }

D1=$E2E_TMP/img-1
dump_kill dump-1 "$pid" "$D1" --jobs 2
[ "$(files "$D1")" = "pages-$pid-1.img pages-$pid.img " ] || fail "dump --jobs 2 wrote pages files: $(files "$D1")"
cf_show "$D1" "$E2E_TMP/show-1.json"
pycheck "show: two pages files, the pagemap names the second, chunks in both" "$E2E_TMP/show-1.json" "$pid" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
p = o["processes"][sys.argv[2]]
pm = p["pagemap"]
assert pm.get("extra_pages_files") == ["pages-%s-1.img" % sys.argv[2]], pm.get("extra_pages_files")
files = set(c.get("file", 0) for c in pm["chunks"])
assert files == {0, 1}, files
more = p["pages"]["more_files"]
assert len(more) == 1 and more[0]["file"] == "pages-%s-1.img" % sys.argv[2], more
assert len(more[0]["chunks"]) > 0 and len(p["pages"]["chunks"]) > 0
EOF
restore_d restore-1 "$D1" "$pid"
check_pass "$W" 60

# --jobs 1: one writer, one file.
D2=$E2E_TMP/img-2
dump_kill dump-2 "$pid" "$D2" --jobs 1
[ "$(files "$D2")" = "pages-$pid.img " ] || fail "dump --jobs 1 wrote pages files: $(files "$D2")"
restore_d restore-2 "$D2" "$pid"
check_pass "$W" 60

# The vmsplice drain (pages pinned, then written from pipes): two files.
D2V=$E2E_TMP/img-2v
dump_kill dump-2v "$pid" "$D2V" --jobs 2 --drain vmsplice
[ "$(files "$D2V")" = "pages-$pid-1.img pages-$pid.img " ] ||
  fail "dump --drain vmsplice wrote pages files: $(files "$D2V")"
restore_d restore-2v "$D2V" "$pid"
check_pass "$W" 60

# A live checkpoint (-R --live: pages saved while memmix runs): two files.
DL=$E2E_TMP/img-live
run_cf dump-live dump -t "$pid" -D "$DL" -R --live --jobs 2 -v4 -o "$E2E_TMP/dump-live.log"
CF_LOG=$E2E_TMP/dump-live.log
assert_cf_ok "dump -R --live --jobs 2"
CF_LOG=
[ "$(files "$DL")" = "pages-$pid-1.img pages-$pid.img " ] || fail "dump --live wrote pages files: $(files "$DL")"
kill_prog "$pid"
wait_pid_free "$pid" 10
restore_d restore-live "$DL" "$pid"
check_pass "$W" 60

# Damaged second files.
GOOD=$E2E_TMP/img-3
dump_kill dump-3 "$pid" "$GOOD" --jobs 2
SECOND=pages-$pid-1.img
[ -s "$GOOD/$SECOND" ] || fail "dump-3 wrote no $SECOND"
flip_middle() {
  python3 -c 'import os, sys
p = sys.argv[1]; off = os.path.getsize(p) // 2
f = open(p, "r+b"); f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xFF]))' "$1"
}
cut_short() { truncate -s $(($(stat -c %s "$1") * 3 / 4)) "$1"; }
remove() { rm "$1"; }
for how in flip_middle cut_short remove; do
  dir=$E2E_TMP/bad-$how
  rm -rf "$dir"
  cp -r "$GOOD" "$dir" || fail "copy image"
  "$how" "$dir/$SECOND" || fail "$how: cannot damage $SECOND"
  wait_pid_free "$pid" 10
  E2E_PIDS+=("$pid")
  run_cf "restore-$how" restore -D "$dir" -d -v4 -o "$E2E_TMP/restore-$how.log"
  CF_LOG=$E2E_TMP/restore-$how.log
  assert_cf_error "$how"
  [ "$CF_RC" = 1 ] || fail "$how: restore exited $CF_RC, want 1"
  cf_error_line | grep -q "$SECOND" || fail "$how: the error does not name $SECOND: $(cf_error_line)"
  assert_pid_absent "$pid" "$how" 2
  CF_LOG=
  log "ok: $how -> $(cf_error_line)"
done
restore_d restore-3 "$GOOD" "$pid"
check_pass "$W" 60

# Incremental: the parent has two files.
P=$E2E_TMP/pre
run_cf pre-dump pre-dump -t "$pid" -D "$P" --jobs 2 -v4 -o "$E2E_TMP/pre-dump.log"
CF_LOG=$E2E_TMP/pre-dump.log
assert_cf_ok "pre-dump --jobs 2"
CF_LOG=
assert_running_untraced "$pid" "after the pre-dump"
[ "$(files "$P")" = "pages-$pid-1.img pages-$pid.img " ] || fail "pre-dump --jobs 2 wrote pages files: $(files "$P")"
D4=$E2E_TMP/img-4
dump_kill dump-4 "$pid" "$D4" --jobs 2 --prev-images-dir ../pre
restore_d restore-4 "$D4" "$pid"
check_pass "$W" 60

# A positioned write fails: nothing of the dump is left, memmix runs on.
D5=$E2E_TMP/img-5
CF_FAULT=image-pwrite run_cf fault dump -t "$pid" -D "$D5" -R --jobs 2
assert_cf_error "CF_FAULT=image-pwrite"
cf_error_line | grep -q "image-pwrite" || fail "fault: $(cf_error_line)"
assert_running_untraced "$pid" "after the failed dump"
left=$(ls -A "$D5" 2>/dev/null | tr '\n' ' ')
[ -z "$left" ] || fail "the failed dump left files: $left"
check_pass "$W" 60

# merge of the incremental image (its parent in two files) into one image
# with one pages file; it restores.
M=$E2E_TMP/merged
run_cf merge merge -D "$D4" "$M"
assert_cf_ok "merge -D $D4"
[ "$(files "$M")" = "pages-$pid.img " ] || fail "merge wrote pages files: $(files "$M")"
kill_prog "$pid"
wait_pid_free "$pid" 10
restore_d restore-merged "$M" "$pid"
check_pass "$W" 60
log "PASS"
