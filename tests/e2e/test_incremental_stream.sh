#!/bin/bash
# An increment sent as a stream: pre-dump into a directory, then
# `dump --stream --prev-images-dir DIR` (DIR relative to the current
# directory) piped into `restore --stream`, which receives only the increment
# and finds the parent directory; the program checks every byte.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog incremental "$W" 32
pid=$PROG_PID
cd "$E2E_TMP" || fail "cd $E2E_TMP"
run_cf pre-dump pre-dump -t "$pid" -D base
assert_cf_ok "pre-dump"
kill -USR2 "$pid"
for ((i = 0; i < 200; i++)); do [ "$(cat "$W/step" 2>/dev/null)" = 1 ] && break; sleep 0.05; done

timeout -k 5 "$CF_TIMEOUT" "$CRIU_FAST" dump -t "$pid" --stream --prev-images-dir base --display-stats \
  2>"$E2E_TMP/dump.err" >"$E2E_TMP/inc.stream"
rc=$?
[ "$rc" = 0 ] || fail "dump --stream --prev-images-dir exited $rc: $(cat "$E2E_TMP/dump.err")"
wait_gone "$pid" 10
size=$(stat -c %s "$E2E_TMP/inc.stream")
[ "$size" -lt $((4 * 1024 * 1024)) ] || fail "the increment stream holds $size bytes for 32 MiB with 1% rewritten"
[ "$(stat_value "$E2E_TMP/dump.err" "pages in parent")" -ge 7000 ] || fail "too few pages taken from the parent"

E2E_PIDS+=("$pid")
run_cf restore restore --stream -d <"$E2E_TMP/inc.stream"
assert_cf_ok "restore --stream of an increment"
assert_running_untraced "$pid" "after restore --stream"
check_pass "$W"

# Without its parent, the stream is refused before any process is created.
kill_prog "$pid"
wait_pid_free "$pid"
mv base base.moved
run_cf restore2 restore --stream -d <"$E2E_TMP/inc.stream"
assert_cf_error "restore --stream without the parent"
cf_error_line | grep -q "parent image" || fail "unexpected error: $(cf_error_line)"
pid_absent "$pid" || fail "a failed restore left process $pid"
log "PASS"
