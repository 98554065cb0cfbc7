#!/bin/bash
# A process with 4 threads (tests/progs/threads.c), each with TLS values, a
# counter and a name; one often inside nanosleep, one waiting on a condition
# variable (futex).
#
# 1. dump -R: every thread is in the image with its tid and name; the
#    process runs on and passes its self-check.
# 2. dump (kill), restore -d: the same tids exist again with their names, and
#    the self-check passes (counters advance, TLS, stack values and gettid()
#    intact in every thread). Twice in a row.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog threads "$W"
pid=$PROG_PID
tids() { (cd "/proc/$1/task" && ls | sort -n | tr '\n' ' '); }
before=$(tids "$pid")
[ "$(echo "$before" | wc -w)" = 4 ] || fail "expected 4 threads, found: $before"

run_cf dump-r dump -t "$pid" -D "$E2E_TMP/img-r" -R
assert_cf_ok "dump -R"
assert_running_untraced "$pid" "after dump -R"
cf_show "$E2E_TMP/img-r" "$E2E_TMP/show.json"
pycheck "threads in show" "$E2E_TMP/show.json" "$pid" $before <<'EOF'
show, pid = load(sys.argv[1]), int(sys.argv[2])
want = sorted(int(t) for t in sys.argv[3:])
threads = proc(show, pid)["core"]["threads"]
got = sorted(int(t["tid"]) for t in threads)
if got != want:
    fail("threads %r, want %r" % (got, want))
if int(threads[0]["tid"]) != pid:
    fail("the leader is not first")
names = sorted(t["comm"] for t in threads)
if names != ["threads", "worker-0", "worker-1", "worker\\2 x"]:
    fail("thread names %r" % names)
EOF
check_pass "$W"

for round in 1 2; do
  run_cf "dump$round" dump -t "$pid" -D "$E2E_TMP/img$round"
  assert_cf_ok "dump, round $round"
  wait_gone "$pid" 10
  run_cf "restore$round" restore -D "$E2E_TMP/img$round" -d
  assert_cf_ok "restore -d, round $round"
  after=$(tids "$pid")
  [ "$after" = "$before" ] || fail "round $round: threads $after, want $before"
  assert_running_untraced "$pid" "after restore, round $round"
  check_pass "$W"
done
log "PASS"
