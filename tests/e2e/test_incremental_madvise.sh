#!/bin/bash
# VmFlags changed between a pre-dump and the dump come back from the
# increment (tests/progs/madvise.c), whose pages are copied frozen and
# written after the release (engine/dump.cc, CopyAndRelease); run twice:
# as by default (smaps read first), and with CF_MAPS_FIRST=1, where the dump
# lists the VMAs from /proc/PID/maps, scans and copies the pages while smaps
# (the only source of VmFlags) is read beside it, and adopts smaps' flags
# only where it lists the same VMAs (MapsFirst, SettleVmas). madvise() and
# munlock() over whole mappings change no line of /proc/PID/maps:
#   - pre-dump; the program undoes or replaces the advice of each mapping
#     (DONTFORK -> DOFORK, HUGEPAGE -> NOHUGEPAGE, mlock -> munlock, ...);
#   - dump -R --prev-images-dir: the image holds the new VmFlags, the
#     program runs on;
#   - restored from the increment, each mapping has the VmFlags it had at
#     the dump (the self-check compares them with smaps), its contents, and
#     a child forked then sees the new fork semantics.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

for mode in default maps-first; do
  mf=0
  [ "$mode" = maps-first ] && mf=1
  W=$E2E_TMP/w-$mode
  start_prog madvise "$W"
  pid=$PROG_PID
  run_cf pre pre-dump -t "$pid" -D "$E2E_TMP/$mode-pre"
  assert_cf_ok "pre-dump"
  kill -USR2 "$pid"
  for ((i = 0; i < 200; i++)); do [ "$(cat "$W/step" 2>/dev/null)" = 1 ] && break; sleep 0.05; done
  [ "$(cat "$W/step" 2>/dev/null)" = 1 ] || fail "the program did not change its advice"
  check_pass "$W"

  CF_MAPS_FIRST=$mf run_cf inc dump -R -t "$pid" -D "$E2E_TMP/$mode-inc" --prev-images-dir "../$mode-pre" --display-stats -v4 -o "$E2E_TMP/$mode-inc.log"
  assert_cf_ok "dump -R --prev-images-dir"
  grep -q '^  copy time: .* pages copied frozen' "$CF_OUT" || fail "no copy line in --display-stats: $(cat "$CF_OUT")"
  if [ "$mode" = maps-first ]; then
    grep -q '^  smaps wait:' "$CF_OUT" || fail "CF_MAPS_FIRST=1: the VMAs were not scanned from maps: $(cat "$CF_OUT")"
  fi
  grep -q 'dumping again, VMAs from smaps first' "$E2E_TMP/$mode-inc.log" && fail "smaps disagreed with maps: $(grep -m1 'not those of smaps' "$E2E_TMP/$mode-inc.log")"
  assert_running_untraced "$pid" "after the increment"
  check_pass "$W"
  cf_show "$E2E_TMP/$mode-inc" "$E2E_TMP/$mode-show.json"
  pycheck "the new VmFlags in the image" "$E2E_TMP/$mode-show.json" "$pid" <<'PY'
show, pid = load(sys.argv[1]), int(sys.argv[2])
flags = set()
for v in proc(show, pid)["core"]["vmas"]:
    flags.update(v.get("vmflags", "").split())
# DONTFORK, WIPEONFORK and mlock were undone: no VMA has them (the vDSO
# has "dd" of its own).
left = {"dc", "wf", "lo"} & flags
if left:
    fail("VmFlags %s in the image, undone before the dump" % sorted(left))
missing = {"hg", "nh", "sr", "rr", "mg"} - flags
if missing:
    fail("no VMA of the image has VmFlags %s" % sorted(missing))
PY

  kill_prog "$pid"
  wait_pid_free "$pid" 20
  restore_d "restore-$mode" "$E2E_TMP/$mode-inc" "$pid"
  check_pass "$W"
  kill_prog "$pid"
  log "$mode: ok"
done
log PASS
