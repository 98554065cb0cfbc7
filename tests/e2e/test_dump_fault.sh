#!/bin/bash
# A dump that fails at any stage rolls back (CF_FAULT=<point> fault injection).
#
# For each fault point, both for a default dump (which would kill the target)
# and for dump -R, on a fresh counter (tests/progs/counter.c):
#   - criu-fast exits 1 with one "Error:" line on stderr (no crash),
#   - the target is running and untraced (state not t/T, TracerPid 0),
#   - its /proc/PID/maps and descriptors are what they were before,
#   - it keeps counting and its self-check passes,
#   - the image dir has no inventory.img, even when it held one from an
#     earlier good dump (the -R runs reuse such a dir).
# A dump without a fault is run first, so the failures are the faults' doing.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

POINTS=(seize collect remote-syscall scan core-write drain image-write inventory)

# Baseline: the same dump without a fault succeeds and leaves a complete image.
W=$E2E_TMP/baseline
GOOD=$E2E_TMP/img-good
start_prog counter "$W"
run_cf baseline dump -t "$PROG_PID" -D "$GOOD" -R
assert_cf_ok "baseline dump -R without a fault"
[ -s "$GOOD/inventory.img" ] || fail "baseline dump wrote no inventory.img"
assert_running_untraced "$PROG_PID" "after the baseline dump"
check_pass "$W"
kill_prog "$PROG_PID"

n=0
for point in "${POINTS[@]}"; do
  for mode in kill leave-running; do
    n=$((n + 1))
    what="CF_FAULT=$point ($mode)"
    W=$E2E_TMP/w-$point-$mode
    D=$E2E_TMP/img-$point-$mode
    args=(dump -t "" -D "$D")
    if [ "$mode" = leave-running ]; then
      cp -r "$GOOD" "$D" || fail "copy $GOOD"
      args+=(-R)
    fi
    start_prog counter "$W"
    pid=$PROG_PID
    args[2]=$pid
    snapshot "$pid" "$E2E_TMP/snap-$point-$mode" || fail "$what: snapshot of $pid"

    CF_FAULT=$point run_cf "fault-$point-$mode" "${args[@]}"
    [ "$CF_RC" = 1 ] || fail "$what: criu-fast exited $CF_RC, want 1"
    assert_cf_error "$what"
    assert_running_untraced "$pid" "$what"
    assert_same_snapshot "$pid" "$E2E_TMP/snap-$point-$mode" "$what"
    assert_cpu_advancing "$pid" "$what"
    check_pass "$W"
    assert_no_inventory "$D" "$what"
    log "ok: $what -> $(cf_error_line)"
    kill_prog "$pid"
  done
done
log "PASS ($n fault runs)"
