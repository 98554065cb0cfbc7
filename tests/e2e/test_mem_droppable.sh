#!/bin/bash
# Droppable memory and memory wiped on fork (tests/progs/mem_droppable.c).
#
# 1. dump -R: the image holds no page of the droppable vma (the kernel may
#    drop them at any time: they are not saved, as with CRIU); the
#    self-check passes.
# 2. dump (kill) + restore -d: the droppable vma is droppable again and
#    empty, the vma wiped on fork keeps its bytes and its flag; a child
#    forked after the restore sees both wiped.
# 3. The same with 320 MiB more in one mapping: the dump lists the VMAs from
#    maps and reads smaps beside the scan (DecideMapsFirst), where the
#    droppable vma looks like any other; smaps then tells it apart and its
#    pages are left out before any is read, without dumping again. Also
#    with CF_MAPS_FIRST=0 (smaps first): the same image contents.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

# check_image SHOW PID MIN_PAGES: the image (show's JSON) holds one
# droppable vma and none of its pages, and at least MIN_PAGES DATA pages.
check_image() {
  pycheck "no droppable pages in the image, at least $3 pages saved" "$@" <<'EOF2'
show = load(sys.argv[1])
p = proc(show, int(sys.argv[2]))
dp = [v for v in p["core"].get("vmas", []) if " dp" in " " + v.get("vmflags", "")]
if len(dp) != 1:
    fail("%d droppable vmas in the image, want 1" % len(dp))
start, end = u(dp[0]["start"]), u(dp[0]["end"])
n = overlap_pages(page_ranges(p["pagemap"], "DATA"), start, end)
if n:
    fail("%d pages of the droppable vma were saved" % n)
total = sum(e - s for s, e in page_ranges(p["pagemap"], "DATA")) // 4096
if total < int(sys.argv[3]):
    fail("%d pages saved, want at least %s" % (total, sys.argv[3]))
EOF2
}

W=$E2E_TMP/w
start_prog mem_droppable "$W"
root=$PROG_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root"
check_image "$E2E_TMP/show.json" "$root" 0
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
touch "$W/restored"
check_pass "$W"
kill -KILL "$root" 2>/dev/null
wait_gone "$root" 10

# --- 3. much memory in few VMAs: VMAs listed from maps ---------------------------
for mf in auto 0; do
  W=$E2E_TMP/w-$mf
  start_prog mem_droppable "$W" 320
  root=$PROG_PID
  if [ "$mf" = auto ]; then
    dump_kill "dump-$mf" "$root" "$E2E_TMP/img-$mf" --display-stats
    log_file=$E2E_TMP/dump-$mf.log
    grep -q "smaps read beside the scan (VMAs listed from maps)" "$log_file" ||
      fail "the VMAs were not listed from maps: $(grep -m1 'resident pages' "$log_file")"
    grep -q "droppable VMAs found in smaps after the scan" "$log_file" || fail "the droppable vma was not set right"
    ! grep -q "reading it again\|dumping again\|dumps again" "$log_file" || fail "smaps was read again or the dump done again"
    grep -q '^  smaps wait:' "$E2E_TMP/dump-$mf.out" || fail "no smaps wait in the stats: $(cat "$E2E_TMP/dump-$mf.out")"
  else
    CF_MAPS_FIRST=0 dump_kill "dump-$mf" "$root" "$E2E_TMP/img-$mf" --display-stats
    ! grep -q '^  smaps wait:' "$E2E_TMP/dump-$mf.out" || fail "CF_MAPS_FIRST=0: the VMAs were listed from maps"
  fi
  cf_show "$E2E_TMP/img-$mf" "$E2E_TMP/show-$mf.json"
  check_image "$E2E_TMP/show-$mf.json" "$root" $((320 * 256))
  restore_d "restore-$mf" "$E2E_TMP/img-$mf" "$root"
  touch "$W/restored"
  check_pass "$W"
  kill -KILL "$root" 2>/dev/null
  wait_gone "$root" 10
done
log "PASS"
