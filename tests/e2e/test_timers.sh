#!/bin/bash
# POSIX timers and an interval itimer (tests/progs/timers.c: two threads,
# four timers with sparse ids: a periodic CLOCK_MONOTONIC SIGEV_SIGNAL one
# with a sigev_value, a CLOCK_REALTIME one-shot an hour away, a periodic
# SIGEV_THREAD_ID one for the second thread, a disarmed SIGEV_NONE one; and
# ITIMER_REAL every 50 ms).
#
# 1. dump -R: show has the four timers with their ids, clocks, signals,
#    values, notification (the worker's tid), intervals and time left, and
#    the itimer; the process runs on untraced, with the same maps, fds and
#    timers, and passes its self-check.
# 2. dump (kill), restore -d: /proc/PID/timers lists the same ids, clocks and
#    notification, and the self-check passes (timer_gettime on the saved ids,
#    periodic timers and the itimer keep firing with the right si_timerid and
#    si_value, the thread-directed one reaches the worker). Then the restored
#    process is dumped and restored once more and checked again.
# 3. a timer on another thread's CPU clock is refused at dump, naming the
#    process and the timer; the process runs on unchanged.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

run_cf check check
grep -q '^PR_TIMER_CREATE_RESTORE_IDS .* OK' "$CF_OUT" ||
  skip "this kernel cannot recreate timer ids: $(grep PR_TIMER_CREATE_RESTORE_IDS "$CF_OUT")"

W=$E2E_TMP/w
start_prog timers "$W"
pid=$PROG_PID
read -r id_a id_b id_c id_d worker _ <"$W/ids" || fail "cannot read $W/ids"
log "timers $id_a $id_b $id_c $id_d, worker thread $worker"

# /proc/PID/timers without the kernel's order: "id clock signal/value notify"
# per timer, sorted by id (notify names the pid or tid: the same after a restore).
timers_key() {
  awk '/^ID:/ { id = $2 } /^notify:/ { n = $2 } /^signal:/ { s = $2 } /^ClockID:/ { print id, $2, s, n }' \
    "/proc/$1/timers" | sort -n
}
timers_key "$pid" >"$E2E_TMP/timers.before"
[ "$(wc -l <"$E2E_TMP/timers.before")" = 4 ] || fail "expected 4 timers: $(cat "$E2E_TMP/timers.before")"

# 1. dump -R and the image.
snapshot "$pid" "$E2E_TMP/snap"
run_cf dump-r dump -t "$pid" -D "$E2E_TMP/img-r" -R
assert_cf_ok "dump -R"
assert_running_untraced "$pid" "after dump -R"
assert_same_snapshot "$pid" "$E2E_TMP/snap" "after dump -R"
timers_key "$pid" >"$E2E_TMP/timers.after-r"
assert_same_file "$E2E_TMP/timers.before" "$E2E_TMP/timers.after-r" "dump -R changed /proc/$pid/timers"
cf_show "$E2E_TMP/img-r" "$E2E_TMP/show.json"
pycheck "timers in show" "$E2E_TMP/show.json" "$pid" "$id_a" "$id_b" "$id_c" "$id_d" "$worker" <<'EOF'
show = load(sys.argv[1])
pid, a, b, c, d, worker = (int(x) for x in sys.argv[2:])
core = proc(show, pid)["core"]
timers = core.get("posix_timers", [])
byid = {int(t.get("id", 0)): t for t in timers}
if sorted(byid) != sorted([a, b, c, d]) or len(timers) != 4:
    fail("timer ids %r, want %r" % ([t.get("id") for t in timers], [a, b, c, d]))
if [int(t.get("id", 0)) for t in timers] != sorted(byid):
    fail("timers not sorted by id")
def ns(t, what):
    return u(t.get(what + "_sec")) * 10**9 + u(t.get(what + "_nsec"))
ms = 10**6
# SIGRTMIN is 34 with glibc: A = SIGRTMIN+2, B = +3, C = +4.
want = {
    a: dict(clock_id=1, signo=36, notify=0, sigev_value=0xa1a1a1a1a1, interval=40 * ms),
    b: dict(clock_id=0, signo=37, notify=0, sigev_value=0xb2, interval=0),
    c: dict(clock_id=1, signo=38, notify=4, sigev_value=0xc3, interval=60 * ms),
    d: dict(clock_id=7, notify=1, interval=0),
}
for i, w in want.items():
    t = byid[i]
    for k in ("clock_id", "signo", "notify"):
        if k in w and int(t.get(k, 0)) != w[k]:
            fail("timer %d: %s %s, want %s" % (i, k, t.get(k), w[k]))
    if "sigev_value" in w and u(t.get("sigev_value")) != w["sigev_value"]:
        fail("timer %d: sigev_value %s, want %#x" % (i, t.get("sigev_value"), w["sigev_value"]))
    if ns(t, "interval") != w["interval"]:
        fail("timer %d: interval %d ns, want %d" % (i, ns(t, "interval"), w["interval"]))
if int(byid[c].get("notify_tid", 0)) != worker:
    fail("timer %d: notify_tid %s, want the worker %d" % (c, byid[c].get("notify_tid"), worker))
if not 0 < ns(byid[a], "value") <= 40 * ms or not 0 < ns(byid[c], "value") <= 60 * ms:
    fail("periodic timers: %d and %d ns left" % (ns(byid[a], "value"), ns(byid[c], "value")))
if not 3000 * 10**9 < ns(byid[b], "value") <= 3600 * 10**9:
    fail("one-shot timer: %d ns left" % ns(byid[b], "value"))
if ns(byid[d], "value") != 0:
    fail("disarmed timer is armed in the image")
real = [t for t in core.get("itimers", []) if int(t.get("which", 0)) == 0]
if len(real) != 1 or u(real[0].get("interval_usec")) != 50000 or u(real[0].get("interval_sec")) != 0:
    fail("ITIMER_REAL %r, want a 50 ms interval" % real)
EOF
check_pass "$W"

# 2. dump + restore, twice.
for round in 1 2; do
  dump_kill "dump$round" "$pid" "$E2E_TMP/img$round"
  wait_pid_free "$pid" 10
  restore_d "restore$round" "$E2E_TMP/img$round" "$pid"
  timers_key "$pid" >"$E2E_TMP/timers.after$round"
  assert_same_file "$E2E_TMP/timers.before" "$E2E_TMP/timers.after$round" \
    "round $round: /proc/$pid/timers differs after restore"
  check_pass "$W"
done
kill_prog "$pid"

# 3. refused: a timer on the worker thread's CPU clock.
W2=$E2E_TMP/w2
start_prog timers "$W2" foreign-clock
pid2=$PROG_PID
read -r _ _ _ _ _ foreign <"$W2/ids" || fail "cannot read $W2/ids"
snapshot "$pid2" "$E2E_TMP/snap2"
run_cf dump-foreign dump -t "$pid2" -D "$E2E_TMP/img-foreign"
assert_cf_error "dump of a timer on another thread's CPU clock"
line=$(cf_error_line)
for word in "process $pid2" "timer $foreign" "CPU clock" "not supported"; do
  grep -qF -- "$word" <<<"$line" || fail "the refusal does not say '$word': $line"
done
assert_no_inventory "$E2E_TMP/img-foreign" "refused dump"
assert_running_untraced "$pid2" "after the refused dump"
assert_same_snapshot "$pid2" "$E2E_TMP/snap2" "after the refused dump"
check_pass "$W2"
log "PASS"
