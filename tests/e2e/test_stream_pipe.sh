#!/bin/bash
# A process tree dumped as one lz4-compressed stream straight into a restore:
#   criu-fast dump -t ROOT --stream --compress lz4 | criu-fast restore --stream -d
# (tests/progs/tree.c: five processes, sessions, groups, 16 MiB each).
#   - the dump writes only the stream on stdout (its --display-stats and logs
#     go to stderr), both commands exit 0;
#   - every pid comes back, running untraced, and the tree's self-check
#     (memory, parents, sessions, groups) passes;
#   - the restore's staging directory in /dev/shm is gone afterwards.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init
# shellcheck source=stream_lib.sh
source "$(dirname "${E2E_LIB:-$0}")/stream_lib.sh"

W=$E2E_TMP/w
start_prog tree "$W" 16
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 5 ] || fail "expected 5 processes in the tree, found ${#all[@]}: ${all[*]}"
staging_dirs >"$E2E_TMP/staging.before"
E2E_PIDS+=("${all[@]}")

timeout -k 5 "$CF_TIMEOUT" bash -c '
  set -o pipefail
  "$1" dump -t "$2" --stream --compress lz4 --display-stats -v4 -o "$3/dump.log" 2>"$3/dump.err" |
    "$1" restore --stream -d --pidfile "$3/pidfile" -v4 -o "$3/restore.log" 2>"$3/restore.err"
  echo "${PIPESTATUS[0]} ${PIPESTATUS[1]}" >"$3/rcs"' _ "$CRIU_FAST" "$root" "$E2E_TMP"
read -r dump_rc restore_rc <"$E2E_TMP/rcs" || fail "the pipeline did not finish (timeout?)"
CF_ERR=$E2E_TMP/dump.err
CF_LOG=$E2E_TMP/dump.log
[ "$dump_rc" = 0 ] || fail "dump --stream exited $dump_rc"
grep -q "pages written" "$E2E_TMP/dump.err" || fail "dump --display-stats printed no statistics on stderr"
CF_ERR=$E2E_TMP/restore.err
CF_LOG=$E2E_TMP/restore.log
[ "$restore_rc" = 0 ] || fail "restore --stream exited $restore_rc"
[ "$(cat "$E2E_TMP/pidfile")" = "$root" ] || fail "pidfile holds '$(cat "$E2E_TMP/pidfile")', want $root"
grep -q "stream: stdin: .* unpacked to" "$E2E_TMP/restore.log" || fail "restore log does not report the stream"
for p in "${all[@]}"; do assert_running_untraced "$p" "after restore --stream"; done
check_pass "$W"
assert_no_new_staging "$E2E_TMP/staging.before" "restore --stream"
log "ok: tree of ${#all[@]} processes through a pipe"
