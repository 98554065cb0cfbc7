#!/bin/bash
# Signalfds (tests/progs/signalfds.c): two signalfds with their masks, one
# dup'ed, a blocked SIGHUP pending.
#
# 1. dump -R: the image has each mask (and one file id for the dup); the
#    program runs on; the self-check passes.
# 2. dump (kill) + restore -d: a SIGUSR2 sent from outside and a queued
#    SIGRTMIN+1 are read through the restored signalfd, the pending SIGHUP
#    through the other; flags are back.
# 3. once more.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog signalfds "$W"
pid=$PROG_PID

# check W: SIGUSR2 from here, then the self-check.
check() {
  kill -USR2 "$pid" || fail "kill -USR2 $pid"
  check_pass "$W"
}

run_cf dump-r dump -t "$pid" -D "$E2E_TMP/img-r" -R -v4 -o "$E2E_TMP/dump-r.log"
CF_LOG=$E2E_TMP/dump-r.log
assert_cf_ok "dump -R"
assert_running_untraced "$pid" "after dump -R"
cf_show "$E2E_TMP/img-r" "$E2E_TMP/show.json"
pycheck "signalfds in the image" "$E2E_TMP/show.json" "$pid" <<'EOF2'
show = load(sys.argv[1])
fds = {f["fd"]: f for f in proc(show, int(sys.argv[2]))["core"]["fds"] if fd_kind(f) == "signalfd"}
if sorted(fds) != [3, 4, 5]:
    fail("signalfds at %r, want 3, 4, 5" % sorted(fds))
rtmin1 = 35  # glibc's SIGRTMIN is 34
want = {3: (1 << (12 - 1)) | (1 << (rtmin1 - 1)), 4: 1 << (1 - 1), 5: (1 << (12 - 1)) | (1 << (rtmin1 - 1))}
got = {k: u(f["signalfd"].get("mask")) for k, f in fds.items()}
if got != want:
    fail("masks %r, want %r" % ({k: hex(v) for k, v in got.items()}, {k: hex(v) for k, v in want.items()}))
if fds[3]["file_id"] != fds[5]["file_id"] or fds[3]["file_id"] == fds[4]["file_id"]:
    fail("fds 3 and 5 should share one description, 4 have its own")
EOF2
CF_LOG=
check

dump_kill dump "$pid" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$pid"
check

dump_kill dump2 "$pid" "$E2E_TMP/img2"
restore_d restore2 "$E2E_TMP/img2" "$pid"
check
check
log "PASS"
