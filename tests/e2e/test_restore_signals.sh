#!/bin/bash
# Restore of signal state (tests/progs/signals.c): handlers with SA_SIGINFO,
# SA_RESTART, SA_ONSTACK, SA_RESETHAND|SA_NODEFER, an ignored signal, the
# blocked mask, pending signals (SIGTERM thread-directed, SIGINT process-wide,
# SIGRTMIN+1 queued three times with values 1, 2, 3), sigaltstack and a 0.2 s
# ITIMER_REAL.
#
# From outside: SigBlk, SigIgn and SigCgt in /proc/PID/status are the same
# after the restore as before the dump, and so are SigPnd and ShdPnd (SIGALRM
# left out: the timer may have a signal on its way at either moment).
# From inside (the self-check, run twice, then once more after a second dump
# and restore): every sigaction as the kernel has it, the mask and the alt
# stack unchanged; the pending signals still pending; unblocking delivers them
# with the right siginfo, the RT values in order 1, 2, 3; SA_ONSTACK runs on
# the alt stack; the itimer keeps firing.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/signals
start_prog signals "$W"
pid=$PROG_PID

sig_status() {
  grep -E '^(SigPnd|ShdPnd|SigBlk|SigIgn|SigCgt):' "/proc/$1/status" |
    python3 -c '
import sys
for line in sys.stdin:
    k, v = line.split(":")
    v = int(v, 16)
    if k in ("SigPnd", "ShdPnd"):
        v &= ~(1 << (14 - 1))  # SIGALRM
    print("%s %016x" % (k, v))'
}

check_pass "$W"  # the check works before any dump (and leaves the same state)
for round in 1 2; do
  D=$E2E_TMP/img-$round
  sig_status "$pid" >"$E2E_TMP/sig-before-$round" || fail "read /proc/$pid/status"
  dump_kill "dump-$round" "$pid" "$D"
  restore_d "restore-$round" "$D" "$pid"
  sig_status "$pid" >"$E2E_TMP/sig-after-$round" || fail "read /proc/$pid/status"
  assert_same_file "$E2E_TMP/sig-before-$round" "$E2E_TMP/sig-after-$round" \
    "round $round: signal sets in /proc/$pid/status differ after the restore"
  check_pass "$W"
  check_pass "$W"
  log "round $round: ok"
done
log "PASS"
