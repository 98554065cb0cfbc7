#!/bin/bash
# dump -R of a tree with few pages to read (engine/dump.cc, CopyAndRelease):
# the pages are copied while the tree is frozen, the tree runs on, and the
# copies are written after the release. On a program that never stops
# writing its memory (tests/progs/live_writer.c: 2 writer threads sweeping
# 16 MiB with a generation number):
#   - the dump says it copied the pages frozen, and the program runs on;
#   - the image, restored, is its memory at one instant: every writer
#     resumes where the freeze caught it and finds each page holding what
#     that instant implies (a page read after the release fails the check);
#   - a failure after the release (CF_FAULT=image-write) or just before it
#     (copy-release) exits 1 with an Error line, leaves no inventory, and the
#     program runs on untraced with the same maps and descriptors;
#   - more than the bound to read (64 MiB) is written frozen, as before.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog live_writer "$W" 16 2
pid=$PROG_PID

run_cf copy dump -t "$pid" -D "$E2E_TMP/img" -R --display-stats
assert_cf_ok "dump -R of 16 MiB"
grep -q '^  copy time: .* pages copied frozen' "$CF_OUT" || fail "no copy line in --display-stats: $(cat "$CF_OUT")"
log "$(grep -E '^  (frozen time|copy time|after release)' "$CF_OUT" | tr -s ' ' | tr '\n' ';')"
assert_running_untraced "$pid" "after dump -R"
check_pass "$W"

for point in copy-release image-write; do
  snapshot "$pid" "$E2E_TMP/before-$point" || fail "snapshot of $pid"
  CF_FAULT=$point run_cf "fault-$point" dump -t "$pid" -D "$E2E_TMP/fault-$point" -R
  assert_cf_error "dump -R with CF_FAULT=$point"
  grep -q "fault injected at $point" "$CF_ERR" || fail "CF_FAULT=$point not reached: $(cf_error_line)"
  assert_no_inventory "$E2E_TMP/fault-$point" "CF_FAULT=$point"
  assert_running_untraced "$pid" "after CF_FAULT=$point"
  assert_same_snapshot "$pid" "$E2E_TMP/before-$point" "after CF_FAULT=$point"
  check_pass "$W"
done

kill_prog "$pid"
wait_pid_free "$pid" 20
restore_d restore "$E2E_TMP/img" "$pid"
check_pass "$W"
kill_prog "$pid"

# Past the bound: written frozen (no copy line), restored alike.
W2=$E2E_TMP/w2
start_prog live_writer "$W2" 96 2
pid2=$PROG_PID
run_cf big dump -t "$pid2" -D "$E2E_TMP/img-big" -R --display-stats
assert_cf_ok "dump -R of 96 MiB"
grep -q '^  copy time:' "$CF_OUT" && fail "96 MiB copied before the release (bound 64 MiB)"
check_pass "$W2"
kill_prog "$pid2"
wait_pid_free "$pid2" 20
restore_d restore-big "$E2E_TMP/img-big" "$pid2"
check_pass "$W2"
kill_prog "$pid2"
log PASS
