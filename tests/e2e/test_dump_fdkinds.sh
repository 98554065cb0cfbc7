#!/bin/bash
# The dump side of timerfds, signalfds, inotify and epoll instances, without
# restoring (so it also runs in the sanitizer pass, which skips restores):
# for each of tests/progs/timerfds.c, signalfds.c, inotifys.c and epolls.c,
# a dump -R must succeed, leave every process running untraced and
# unchanged (maps and descriptors), save descriptors of the expected kinds
# with their state, and the program's self-check must pass afterwards.
# (test_timerfds.sh, test_signalfds.sh, test_inotify.sh and test_epoll.sh
# check the image contents in detail and restore.)
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

declare -A KINDS=(
  [timerfds]='timerfd:7'
  [signalfds]='signalfd:3'
  [inotifys]='inotify:3'
  [epolls]='epoll:2'
)
for prog in timerfds signalfds inotifys epolls; do
  W=$E2E_TMP/w-$prog
  start_prog "$prog" "$W"
  pid=$PROG_PID
  snapshot "$pid" "$E2E_TMP/snap-$prog" || fail "$prog: snapshot of $pid"
  run_cf "dump-$prog" dump -t "$pid" -D "$E2E_TMP/img-$prog" -R -v4 -o "$E2E_TMP/dump-$prog.log"
  CF_LOG=$E2E_TMP/dump-$prog.log
  assert_cf_ok "$prog: dump -R"
  assert_running_untraced "$pid" "$prog after dump -R"
  assert_same_snapshot "$pid" "$E2E_TMP/snap-$prog" "$prog after dump -R"
  cf_show "$E2E_TMP/img-$prog" "$E2E_TMP/show-$prog.json"
  pycheck "$prog: kinds in the image" "$E2E_TMP/show-$prog.json" "$pid" "${KINDS[$prog]}" <<'EOF2'
show = load(sys.argv[1])
kind, n = sys.argv[3].split(":")
fds = [f for f in proc(show, int(sys.argv[2]))["core"]["fds"] if fd_kind(f) == kind]
if len(fds) != int(n):
    fail("%d %s fds, want %s" % (len(fds), kind, n))
if any(u(f.get("file_id")) == 0 for f in fds):
    fail("an fd without a file id")
state = {"timerfd": lambda f: f.get("timerfd", {}).get("clockid") is not None,
         "signalfd": lambda f: u(f["signalfd"].get("mask")) != 0,
         "inotify": lambda f: len(f["inotify"].get("watches", [])) > 0,
         "epoll": lambda f: True}[kind]
if not all(state(f) for f in fds):
    fail("an fd without its state: %r" % fds)
EOF2
  CF_LOG=
  [ "$prog" = signalfds ] && { kill -USR2 "$pid" || fail "kill -USR2"; }
  check_pass "$W"
  kill_prog "$pid"
done
log "PASS"
