#!/bin/bash
# Restore while the pid belongs to a live process (dump -R left the original
# running): it must fail at once (no 10 s wait for the pid), with exit 1 and
# one "Error:" line saying the pid is in use, and the running original must be
# untouched: running untraced, same maps and descriptors, still counting, its
# self-check passing. Tried with and without -d. Then, with the original
# killed, the same image restores fine.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/counter
D=$E2E_TMP/img
start_prog counter "$W"
pid=$PROG_PID
dump_kill dump "$pid" "$D" -R
assert_running_untraced "$pid" "after dump -R"
snapshot "$pid" "$E2E_TMP/snap" || fail "snapshot of $pid"

for mode in -d wait; do
  args=(restore -D "$D" -v4 -o "$E2E_TMP/restore$mode.log")
  [ "$mode" = -d ] && args+=(-d)
  t0=$(date +%s%N)
  run_cf "restore$mode" "${args[@]}"
  t1=$(date +%s%N)
  CF_LOG=$E2E_TMP/restore$mode.log
  [ "$CF_RC" = 1 ] || fail "restore ($mode) with pid $pid in use: exit $CF_RC, want 1"
  assert_cf_error "restore ($mode) with pid $pid in use"
  cf_error_line | grep -q "$pid" || fail "restore ($mode): the error does not name pid $pid: $(cf_error_line)"
  cf_error_line | grep -qi "in use" || fail "restore ($mode): the error does not say the pid is in use: $(cf_error_line)"
  ms=$(((t1 - t0) / 1000000))
  [ "$ms" -lt 5000 ] || fail "restore ($mode) took $ms ms to see a live process holding pid $pid"
  CF_LOG=
  assert_running_untraced "$pid" "original after the failed restore ($mode)"
  assert_same_snapshot "$pid" "$E2E_TMP/snap" "original after the failed restore ($mode)"
  assert_cpu_advancing "$pid" "original after the failed restore ($mode)"
  check_pass "$W"
  log "ok ($mode): $(cf_error_line) (${ms} ms)"
done

kill_prog "$pid"
restore_d restore-free "$D" "$pid"
check_pass "$W"
log "PASS"
