#!/bin/bash
# Descriptors the dump cannot take yet are refused (tests/progs/pipe_holder.c).
#
# For each kind still unsupported (an epoll instance watching another one, a pty
# slave whose master is outside the tree (without --shell-job), an
# established TCP connection without --tcp-established, a listening unix socket with a
# connection waiting to be accepted that sent data already, a socket pair with a unix
# socket in flight, a file locked with flock or a POSIX lock, a corked UDP socket
# holding unsent data; pipes, socket pairs, eventfds, timerfds, signalfds, inotify and
# epoll are dumped: see test_pipes.sh, test_socketpairs.sh, test_eventfds.sh,
# test_fdkinds.sh): a default dump
# (which would kill the target on success) must exit 1
# with one "Error:" line naming the pid, the fd number and the kind; the target
# must run on untraced and unchanged (maps, descriptors, queued data: its
# self-check), and no inventory.img may be written.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

# mode -> regex the error line must contain (case-insensitive)
declare -A KIND=(
  [epollnest]='nested epoll'
  [tty]='tty|terminal|pty'
  [inet]='socket'
  [unixbound]='socket'
  [scmrights]='socket'
  [flock]='lock'
  [posixlock]='lock'
  [udpcork]='UDP_CORK'
)
# (pipe_holder's epollclosed and pidfd modes are dumped now: test_epoll_moved.sh,
# test_pidfds.sh)
MODES=(epollnest tty inet unixbound scmrights flock posixlock udpcork)

n=0
for mode in "${MODES[@]}"; do
  if [ "$mode" = tty ] && [ ! -c /dev/ptmx ]; then
    log "no /dev/ptmx: tty case left out"
    continue
  fi
  n=$((n + 1))
  W=$E2E_TMP/w-$mode
  D=$E2E_TMP/img-$mode
  start_prog pipe_holder "$W" "$mode"
  pid=$PROG_PID
  snapshot "$pid" "$E2E_TMP/snap-$mode" || fail "$mode: snapshot of $pid"
  mapfile -t fdnums < <(sed -n 's/^fd \([0-9]*\)$/\1/p' "$W/expect")
  [ "${#fdnums[@]}" -gt 0 ] || fail "$mode: no fd numbers in $W/expect"

  run_cf "dump-$mode" dump -t "$pid" -D "$D"
  [ "$CF_RC" = 1 ] || fail "$mode: criu-fast exited $CF_RC, want 1"
  assert_cf_error "$mode"
  line=$(cf_error_line)
  grep -qiE "${KIND[$mode]}" <<<"$line" || fail "$mode: the error does not name the kind (/${KIND[$mode]}/): $line"
  grep -qw "$pid" <<<"$line" || fail "$mode: the error does not name pid $pid: $line"
  named=0
  for fd in "${fdnums[@]}"; do
    grep -qE "(^|[^0-9])$fd([^0-9]|$)" <<<"${line//$pid/}" && named=1
  done
  [ "$named" = 1 ] || fail "$mode: the error names none of the fds ${fdnums[*]}: $line"

  assert_running_untraced "$pid" "$mode"
  assert_same_snapshot "$pid" "$E2E_TMP/snap-$mode" "$mode"
  check_pass "$W"
  assert_no_inventory "$D" "$mode"
  log "ok: $mode -> $line"
  kill_prog "$pid"
done
log "PASS ($n kinds)"
