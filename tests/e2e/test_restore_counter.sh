#!/bin/bash
# Restore of one busy single-threaded process (tests/progs/counter.c).
#
# counter is dumped (and so killed) while it counts, then restored with -d:
#   - criu-fast exits 0, the pid file names the original pid, and that pid
#     runs again, untraced, with the same executable and command line,
#   - /proc/PID/maps has the same lines as right before the dump (start-end,
#     perms, offset, path), the descriptors are the same (number, target,
#     offset, flags), and the session, process group and blocked/ignored/
#     caught signal sets in /proc/PID/status are the same,
#   - it keeps using CPU, and its self-check passes (the counter increases,
#     globals, heap and a stack value intact), twice.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/counter
D=$E2E_TMP/img
start_prog counter "$W"
pid=$PROG_PID
assert_cpu_advancing "$pid" "before the dump"

# status_key PID: the /proc/PID/status lines a restore must reproduce.
status_key() {
  grep -E '^(Name|Umask|Uid|Gid|Groups|SigBlk|SigIgn|SigCgt|CapPrm|CapEff|NoNewPrivs|Seccomp):' "/proc/$1/status"
  awk '{ sub(/^.*\) /, ""); print "stat: pgrp", $3, "session", $4 }' "/proc/$1/stat"
}

maps_key "$pid" "$E2E_TMP/maps-before" || fail "read /proc/$pid/maps"
fd_list "$pid" "$E2E_TMP/fds-before" || fail "read /proc/$pid/fd"
status_key "$pid" >"$E2E_TMP/status-before" || fail "read /proc/$pid/status"
tr '\0' ' ' <"/proc/$pid/cmdline" >"$E2E_TMP/cmdline-before"
exe_before=$(readlink "/proc/$pid/exe")

dump_kill dump "$pid" "$D"
restore_d restore "$D" "$pid"
# One process: criu-fast's heap stays in huge pages (engine/malloc_choice.h).
thp=$(sed -n "s/.*jemalloc's huge pages: \([a-z]*\).*/\1/p" "$E2E_TMP/restore.log")
# (Not `ldd | grep -q`: under pipefail, grep leaving early may fail ldd.)
case $(ldd "$CRIU_FAST") in *libjemalloc*) ;; *) want=none ;; esac
case $thp in "${want:-always}") ;; *) fail "restore of one process: jemalloc's huge pages '$thp', want ${want:-always}" ;; esac

[ "$(readlink "/proc/$pid/exe")" = "$exe_before" ] || fail "exe is $(readlink "/proc/$pid/exe"), want $exe_before"
tr '\0' ' ' <"/proc/$pid/cmdline" >"$E2E_TMP/cmdline-after"
assert_same_file "$E2E_TMP/cmdline-before" "$E2E_TMP/cmdline-after" "/proc/$pid/cmdline differs after the restore"
maps_key "$pid" "$E2E_TMP/maps-after" || fail "read /proc/$pid/maps after the restore"
assert_same_file "$E2E_TMP/maps-before" "$E2E_TMP/maps-after" "/proc/$pid/maps differs after the restore"
fd_list "$pid" "$E2E_TMP/fds-after" || fail "read /proc/$pid/fd after the restore"
assert_same_file "$E2E_TMP/fds-before" "$E2E_TMP/fds-after" "the descriptors differ after the restore"
status_key "$pid" >"$E2E_TMP/status-after" || fail "read /proc/$pid/status after the restore"
assert_same_file "$E2E_TMP/status-before" "$E2E_TMP/status-after" "/proc/$pid/status differs after the restore"
ppid=$(awk '{ sub(/^.*\) /, ""); print $2 }' "/proc/$pid/stat")
[ "$ppid" != "$$" ] || fail "the restored process is a child of the test shell"
[ "$(cat "/proc/$ppid/comm" 2>/dev/null)" != criu-fast ] || fail "the restored process is still a child of criu-fast ($ppid)"

assert_cpu_advancing "$pid" "after the restore"
check_pass "$W"
sleep 0.2
check_pass "$W"
# The maps did not change while it ran on (no restore leftovers mapped late).
maps_key "$pid" "$E2E_TMP/maps-later" || fail "read /proc/$pid/maps"
assert_same_file "$E2E_TMP/maps-before" "$E2E_TMP/maps-later" "/proc/$pid/maps changed after the restore"
log "PASS"
