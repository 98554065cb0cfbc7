#!/bin/bash
# Restore of descriptors, cwd and umask (tests/progs/files_sig.c): regular
# files with offsets, O_APPEND, FD_CLOEXEC, a dup sharing the offset, a
# deleted-but-open file, /dev/null and /dev/zero; plus its signal handlers,
# mask and itimer.
#
# files_sig is dumped (killed) and restored with -d, twice in a row:
#   - the descriptors are the same (number, target, offset, flags: fdinfo),
#     /proc/PID/cwd and the Umask line are the same,
#   - no file appeared or went away in W/files and W/cwd_dir: the deleted
#     file was recreated for the restore and is gone again, nothing else is
#     left behind,
#   - the self-check passes (offsets, flags, close-on-exec, the shared offset,
#     the deleted file's contents and link count, handlers, mask, timer),
#   - a write through the O_APPEND descriptor (seeked to 0 first) lands at
#     the end of append.log (W/do-append asks for it; checked inside and here).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/files
start_prog files_sig "$W"
pid=$PROG_PID
[ -e "$W/files/ghost.bin" ] && fail "ghost.bin exists before the dump"
want_log=$'line 1\nline 2\n'

for round in 1 2; do
  D=$E2E_TMP/img-$round
  fd_list "$pid" "$E2E_TMP/fds-before-$round" || fail "read /proc/$pid/fd"
  grep -q 'ghost.bin (deleted)' "$E2E_TMP/fds-before-$round" || fail "no deleted ghost.bin among the descriptors"
  dir_listing "$W" >"$E2E_TMP/ls-before-$round"
  cwd_before=$(readlink "/proc/$pid/cwd")
  umask_before=$(grep '^Umask:' "/proc/$pid/status")
  [ "$umask_before" = $'Umask:\t0027' ] || fail "umask before the dump: '$umask_before'"

  dump_kill "dump-$round" "$pid" "$D"
  restore_d "restore-$round" "$D" "$pid"

  fd_list "$pid" "$E2E_TMP/fds-after-$round" || fail "read /proc/$pid/fd"
  assert_same_file "$E2E_TMP/fds-before-$round" "$E2E_TMP/fds-after-$round" \
    "round $round: descriptors (target, pos, flags) differ after the restore"
  dir_listing "$W" >"$E2E_TMP/ls-after-$round"
  assert_same_file "$E2E_TMP/ls-before-$round" "$E2E_TMP/ls-after-$round" \
    "round $round: files in $W changed by the restore"
  [ -e "$W/files/ghost.bin" ] && fail "round $round: the deleted ghost.bin exists again after the restore"
  [ "$(readlink "/proc/$pid/cwd")" = "$cwd_before" ] || fail "round $round: cwd $(readlink "/proc/$pid/cwd"), want $cwd_before"
  [ "$(grep '^Umask:' "/proc/$pid/status")" = "$umask_before" ] || fail "round $round: $(grep '^Umask:' "/proc/$pid/status")"

  check_pass "$W"
  touch "$W/do-append" || fail "touch do-append"
  check_pass "$W"
  [ -e "$W/do-append" ] && fail "round $round: the program did not act on do-append"
  want_log+=$'appended\n'
  [ "$(cat "$W/files/append.log"; echo x)" = "${want_log}x" ] ||
    fail "round $round: append.log is '$(cat "$W/files/append.log")', want '$want_log'"
  check_pass "$W"
  log "round $round: ok"
done
log "PASS"
