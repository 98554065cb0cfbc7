#!/bin/bash
# dump --iterative (engine/iterative.cc): pre-dump rounds into DIR/pre-N
# while the dirty set shrinks, then the final dump into DIR against the last
# round; restore -D DIR follows the chain.
#   - a quiet program (tests/progs/counter.c): round 2 stores far fewer
#     pages than round 1, so there is a round 3; the final dump kills it, the
#     restore brings it back and its self-check passes;
#   - a program that rewrites all its memory all the time
#     (tests/progs/live_writer.c): the rounds stop once one does not shrink
#     (round 2 already, when the writer gets a CPU of its own); restored,
#     its memory is one instant's (self-check);
#   - --display-stats lists the rounds; --iterative with --live is refused.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog counter "$W"
pid=$PROG_PID
run_cf quiet dump -t "$pid" -D "$E2E_TMP/quiet" --iterative=4 --display-stats -v4 -o "$E2E_TMP/quiet.log"
CF_LOG=$E2E_TMP/quiet.log
assert_cf_ok "dump --iterative of a quiet program"
grep '^  round' "$CF_OUT" | while read -r line; do log "quiet: $line"; done
p1=$(sed -n 's/^  round 1: *\([0-9]*\) pages.*/\1/p' "$CF_OUT")
p2=$(sed -n 's/^  round 2: *\([0-9]*\) pages.*/\1/p' "$CF_OUT")
[ -n "$p1" ] && [ -n "$p2" ] || fail "no rounds in --display-stats: $(head -c 400 "$CF_OUT")"
[ $((p2 * 10)) -lt $((p1 * 9)) ] || fail "round 2 stored $p2 pages, round 1 $p1: a quiet program should converge"
grep -q '^  round 3:' "$CF_OUT" || fail "no round 3 although round 2 shrank"
[ -d "$E2E_TMP/quiet/pre-1" ] && [ -s "$E2E_TMP/quiet/inventory.img" ] || fail "missing images of the rounds"
wait_gone "$pid" 10
wait_pid_free "$pid" 20
restore_d restore-quiet "$E2E_TMP/quiet" "$pid"
check_pass "$W"
kill_prog "$pid"

W2=$E2E_TMP/w2
start_prog live_writer "$W2" 32 1
pid2=$PROG_PID
run_cf refused dump -t "$pid2" -D "$E2E_TMP/refused" --iterative --live -R
assert_cf_error "--iterative with --live"
run_cf busy dump -t "$pid2" -D "$E2E_TMP/busy" --iterative --display-stats -v4 -o "$E2E_TMP/busy.log"
CF_LOG=$E2E_TMP/busy.log
assert_cf_ok "dump --iterative of a busy program"
grep '^  round' "$CF_OUT" | while read -r line; do log "busy: $line"; done
grep -q '^  round 2:' "$CF_OUT" || fail "busy: no round 2"
# The rounds follow the rule: a round after round N >= 2 only when N stored
# less than nine tenths of N-1, and the last one did not shrink so (or hit
# the limit of rounds). How fast the writer dirties its memory depends on
# the CPU it gets, so the number of rounds is not fixed.
mapfile -t busy_pages < <(sed -n 's/^  round [0-9]*: *\([0-9]*\) pages.*/\1/p' "$CF_OUT")
n=${#busy_pages[@]}
for ((k = 1; k < n - 1; k++)); do
  [ $((busy_pages[k] * 10)) -lt $((busy_pages[k - 1] * 9)) ] ||
    fail "busy: round $((k + 2)) although round $((k + 1)) (${busy_pages[k]} pages) did not shrink from ${busy_pages[k - 1]}"
done
wait_gone "$pid2" 10
wait_pid_free "$pid2" 20
restore_d restore-busy "$E2E_TMP/busy" "$pid2"
check_pass "$W2"
