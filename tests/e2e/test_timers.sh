#!/bin/bash
# POSIX timers and an interval itimer (tests/progs/timers.c): timer ids that
# are not the first ones, a periodic SIGEV_SIGNAL timer with a value, a
# one-shot armed an hour ahead, a periodic SIGEV_THREAD_ID timer aimed at the
# second thread, a disarmed SIGEV_NONE timer, and ITIMER_REAL every 50 ms.
#
# 1. dump -R: the image lists the four timers with their ids, clocks,
#    signals, values and notification; the process runs on and passes.
# 2. dump (kill) + restore -d: the same ids exist again, periodic timers keep
#    firing (to the right thread), the one-shot has its time left, the
#    itimer keeps its interval; the self-check passes.
# 3. once more, from the restored process.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog timers "$W"
pid=$PROG_PID
check_pass "$W"

run_cf dump-r dump -t "$pid" -D "$E2E_TMP/img-r" -R
assert_cf_ok "dump -R"
assert_running_untraced "$pid" "after dump -R"
cf_show "$E2E_TMP/img-r" "$E2E_TMP/show.json"
pycheck "POSIX timers in the image" "$E2E_TMP/show.json" "$pid" <<'EOF2'
show = load(sys.argv[1])
core = proc(show, int(sys.argv[2]))["core"]
timers = core.get("posix_timers", [])
if len(timers) != 4:
    fail("want 4 POSIX timers, image has %d: %r" % (len(timers), timers))
ids = [u(t.get("id", 0)) for t in timers]
if len(set(ids)) != 4 or set(ids) <= {0, 1, 2, 3}:
    fail("timer ids %r: want 4 distinct ids, not the first ones" % ids)
vals = sorted(u(t.get("sigev_value", 0)) for t in timers)
for want in (0xa1a1a1a1a1, 0xb2, 0xc3):
    if want not in vals:
        fail("no timer with sigev_value %#x: %r" % (want, vals))
itimers = [t for t in core.get("itimers", []) if u(t.get("which", 0)) == 0]
if not itimers or u(itimers[0].get("interval_usec", 0)) != 50000:
    fail("ITIMER_REAL: %r" % itimers)
EOF2
check_pass "$W"

dump_kill dump "$pid" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$pid"
check_pass "$W"

dump_kill dump2 "$pid" "$E2E_TMP/img2"
restore_d restore2 "$E2E_TMP/img2" "$pid"
check_pass "$W"
check_pass "$W"
log "PASS"
