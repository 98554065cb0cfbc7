#!/bin/bash
# Timerfds (tests/progs/timerfds.c): a periodic timer with unread
# expirations, one that fired exactly once (and its dup), an armed and an
# expired one-shot, a disarmed one, and an absolute CLOCK_REALTIME one with
# TFD_TIMER_CANCEL_ON_SET.
#
# 1. dump -R: the program runs on untraced; the image has each timer's
#    clock, period, time left, unread expirations (exact: the dump counts the
#    periods a periodic timer missed) and absolute deadline; the self-check
#    passes (the dump consumed no expiration).
# 2. dump (kill) + restore -d: every timer is back with its clock, flags,
#    setting and expirations; the periodic one keeps firing; the self-check
#    passes.
# 3. once more.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog timerfds "$W"
pid=$PROG_PID

# --- 1. dump -R ------------------------------------------------------------------
run_cf dump-r dump -t "$pid" -D "$E2E_TMP/img-r" -R -v4 -o "$E2E_TMP/dump-r.log"
CF_LOG=$E2E_TMP/dump-r.log
assert_cf_ok "dump -R"
assert_running_untraced "$pid" "after dump -R"
cf_show "$E2E_TMP/img-r" "$E2E_TMP/show.json"
pycheck "timerfds in the image" "$E2E_TMP/show.json" "$pid" <<'EOF2'
import time
show = load(sys.argv[1])
fds = {f["fd"]: f for f in proc(show, int(sys.argv[2]))["core"]["fds"] if fd_kind(f) == "timerfd"}
if sorted(fds) != [3, 4, 5, 6, 7, 8, 9]:
    fail("timerfds at %r, want 3..9" % sorted(fds))
t = {n: fds[k]["timerfd"] for n, k in zip(["tp", "tl", "to", "te", "td", "ta", "tl2"], range(3, 10))}
def num(n, key):
    return u(t[n].get(key))
S = 10**9
clocks = [t[n].get("clockid", 0) for n in ["tp", "tl", "to", "te", "td", "ta"]]
if clocks != [1, 7, 1, 1, 0, 0]:
    fail("clocks %r" % clocks)
if num("tp", "interval_ns") != S // 10 or num("tp", "ticks") < 2 or not 0 < num("tp", "value_ns") <= S // 10:
    fail("tp (periodic, unread) %r" % t["tp"])
if num("tl", "interval_ns") != 1000 * S or num("tl", "ticks") != 1 or not 900 * S < num("tl", "value_ns") < 1000 * S:
    fail("tl (fired once) %r" % t["tl"])
if t["tl2"] != t["tl"] or fds[4]["file_id"] != fds[9]["file_id"] or len({f["file_id"] for f in fds.values()}) != 6:
    fail("tl and tl2 should be one description, the others one each")
if num("to", "ticks") != 0 or num("to", "interval_ns") != 0 or not 900 * S < num("to", "value_ns") <= 1000 * S:
    fail("to (armed one-shot) %r" % t["to"])
if num("te", "ticks") != 1 or num("te", "value_ns") != 0 or num("te", "interval_ns") != 0:
    fail("te (expired one-shot) %r" % t["te"])
if num("td", "ticks") or num("td", "value_ns") or num("td", "interval_ns"):
    fail("td (disarmed) %r" % t["td"])
if t["ta"].get("settime_flags") != 3 or abs(num("ta", "expires_ns") / S - (time.time() + num("ta", "value_ns") / S)) > 5:
    fail("ta (absolute) %r" % t["ta"])
if not fds[3]["flags"] & 0o4000 or fds[5]["flags"] & 0o4000 or not fds[9]["cloexec"] or fds[4].get("cloexec"):
    fail("flags")
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------
dump_kill dump "$pid" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$pid"
check_pass "$W"

# --- 3. once more ------------------------------------------------------------------
dump_kill dump2 "$pid" "$E2E_TMP/img2"
restore_d restore2 "$E2E_TMP/img2" "$pid"
check_pass "$W"
check_pass "$W"
log "PASS"
