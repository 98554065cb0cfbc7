#!/bin/bash
# More queued signals than the restorer args had room for (64 records: the
# rest were silently dropped): tests/progs/sigqueue_many.c queues 104
# real-time signals with values, 40 in the process's queue and 16 in each of
# its 4 threads' own queues.
#
# 1. The self-check passes before any dump (it takes every signal with
#    sigtimedwait and queues them again).
# 2. dump (kill): the image holds all 104, each queue's with its thread.
# 3. restore -d: every signal arrives again in its queue, with its si_value,
#    in order, none lost or duplicated. Twice in a row.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog sigqueue_many "$W"
pid=$PROG_PID
tids() { (cd "/proc/$1/task" && ls | sort -n | tr '\n' ' '); }
before=$(tids "$pid")
[ "$(echo "$before" | wc -w)" = 4 ] || fail "expected 4 threads, found: $before"
check_pass "$W"

for round in 1 2; do
  D=$E2E_TMP/img-$round
  dump_kill "dump-$round" "$pid" "$D"
  cf_show "$D" "$E2E_TMP/show-$round.json"
  pycheck "round $round: queued signals in the image" "$E2E_TMP/show-$round.json" "$pid" <<'PY'
show, pid = load(sys.argv[1]), int(sys.argv[2])
core = proc(show, pid)["core"]
shared = core.get("shared_pending", [])
if len(shared) != 40:
    fail("process queue: %d signals in the image, want 40" % len(shared))
total = len(shared)
for t in core["threads"]:
    n = len(t.get("pending", []))
    if n != 16:
        fail("thread %s: %d signals in the image, want 16" % (t["tid"], n))
    total += n
if total != 104:
    fail("%d queued signals in the image, want 104" % total)
PY
  restore_d "restore-$round" "$D" "$pid"
  after=$(tids "$pid")
  [ "$after" = "$before" ] || fail "round $round: threads $after, want $before"
  check_pass "$W"
  log "round $round: ok"
done
log "PASS"
