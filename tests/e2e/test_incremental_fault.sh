#!/bin/bash
# A pre-dump that fails at any point rolls back, also at the points of
# incremental dumps (CF_FAULT=<point>): reading the parent image
# (parent-read), the tracking scan of an increment (track-scan), and every
# stage a pre-dump shares with a dump. For each point, on a counter
# (tests/progs/counter.c) with a good pre-dump as parent (its keeper holding
# the tracking):
#   - criu-fast exits 1 with one "Error:" line, no inventory is left,
#   - the target runs untraced with the same memory map and descriptors,
#     and its self-check passes.
# A failure to arm tracking (track-arm) is not fatal: the pre-dump succeeds
# without tracking (the next increment compares contents), and the target
# holds no new descriptor.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

# Not "drain": a pre-dump reads while the tree runs and takes a page it
# cannot read for one unmapped meanwhile (left out of the image).
POINTS=(parent-read seize scan track-scan image-write inventory)

n=0
for point in "${POINTS[@]}"; do
  n=$((n + 1))
  what="pre-dump with CF_FAULT=$point"
  # A fresh target each time: a keeper left by an earlier run (parent-read
  # fails before taking it) would hold the target's tracking.
  W=$E2E_TMP/w-$point
  start_prog counter "$W"
  pid=$PROG_PID
  P=$E2E_TMP/parent-$point
  run_cf "good-$point" pre-dump -t "$pid" -D "$P"
  assert_cf_ok "good pre-dump before $point"
  snapshot "$pid" "$E2E_TMP/before-$point" || fail "snapshot of $pid"
  CF_FAULT=$point run_cf "fault-$point" pre-dump -t "$pid" -D "$E2E_TMP/img-$point" --prev-images-dir "$P" --track-mem
  [ "$CF_RC" = 1 ] || fail "$what: criu-fast exited $CF_RC, want 1"
  assert_cf_error "$what"
  grep -q "fault injected at $point" "$CF_ERR" || fail "$what: the fault was not reached: $(cf_error_line)"
  assert_running_untraced "$pid" "$what"
  assert_same_snapshot "$pid" "$E2E_TMP/before-$point" "$what"
  assert_no_inventory "$E2E_TMP/img-$point" "$what"
  check_pass "$W"
  log "ok: $what -> $(cf_error_line)"
  kill_prog "$pid"
done

W=$E2E_TMP/w-track-arm
start_prog counter "$W"
pid=$PROG_PID

fd_list "$pid" "$E2E_TMP/fds.before"
CF_FAULT=track-arm run_cf track-arm pre-dump -t "$pid" -D "$E2E_TMP/img-track-arm" --display-stats
assert_cf_ok "pre-dump with CF_FAULT=track-arm (tracking is optional)"
assert_running_untraced "$pid" "after track-arm"
fd_list "$pid" "$E2E_TMP/fds.after"
assert_same_file "$E2E_TMP/fds.before" "$E2E_TMP/fds.after" "a failed tracking arm left a descriptor in the target"
grep -q "write tracking not armed" "$CF_ERR" || fail "track-arm: no warning on stderr: $(cat "$CF_ERR")"
check_pass "$W"
log "PASS ($n fault runs and track-arm)"
