#!/bin/bash
# dump -R --live: the tree is frozen only to collect and write-protect its
# memory; its pages are saved while it runs (engine/live.h). On a program
# that never stops writing (tests/progs/live_writer.c: 2 writer threads
# sweeping 64 MiB with a generation number, one passing it through read(2)
# into a page of its own):
#   - the dump succeeds, says it copied pages on fault, and the program runs
#     on, its memory never seen torn;
#   - a second live dump while the program forks (SIGUSR2: the child writes
#     its copy of the memory) succeeds too; a third with the copies made on
#     fault bound to 8 pages (CF_LIVE_STASH_PAGES) holds writers back;
#   - each image, restored, is the memory of one instant: every writer
#     resumes where the freeze caught it and finds each page holding what
#     that instant implies (a page saved after its write, or a torn image,
#     fails the self-check), and runs on;
#   - --live without -R, or with --drain vmsplice, is refused with an Error
#     line and the program runs on; so does a live dump failing at the
#     injected points (CF_FAULT), its maps and descriptors unchanged;
#   - memory of the snapshot unmapped during the save loses the live
#     snapshot (unless it was saved first): criu-fast says so and dumps
#     again frozen; the program runs on.
#   - a tree of 3 processes with 4 threads each (tests/progs/busytree.c),
#     dumped live, runs on; restored from that image it passes its check.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog live_writer "$W" 64 2
pid=$PROG_PID

run_cf no-r dump -t "$pid" -D "$E2E_TMP/no-r" --live
assert_cf_error "--live without -R"
grep -q -- "--live needs -R" "$CF_ERR" || fail "--live without -R: $(cf_error_line)"
run_cf vmsplice dump -t "$pid" -D "$E2E_TMP/vms" -R --live --drain vmsplice
assert_cf_error "--live with --drain vmsplice"
assert_running_untraced "$pid" "after the refusals"

run_cf live1 dump -t "$pid" -D "$E2E_TMP/img1" -R --live --display-stats -v4 -o "$E2E_TMP/live1.log"
CF_LOG=$E2E_TMP/live1.log
assert_cf_ok "dump -R --live"
grep -q '^  live pages:' "$CF_OUT" || fail "no live line in --display-stats: $(cat "$CF_OUT")"
copied=$(sed -n 's/^  live pages: .* \([0-9]*\) copied on fault.*/\1/p' "$CF_OUT")
log "$(grep '^  live' "$CF_OUT" | tr -s ' ')"
[ "${copied:-0}" -gt 0 ] || fail "no page was copied on fault while the writers ran: $(grep live "$CF_OUT")"
[ -s "$E2E_TMP/img1/inventory.img" ] || fail "no inventory after dump --live"
assert_running_untraced "$pid" "after dump --live"
check_pass "$W"

# A second live dump while the program forks.
"$CRIU_FAST" dump -t "$pid" -D "$E2E_TMP/img2" -R --live -v4 -o "$E2E_TMP/live2.log" >"$E2E_TMP/live2.out" 2>"$E2E_TMP/live2.err" &
cf=$!
for ((i = 0; i < 500; i++)); do
  grep -q 'runs on after' "$E2E_TMP/live2.log" 2>/dev/null && break
  kill -0 "$cf" 2>/dev/null || break
  sleep 0.01
done
kill -USR2 "$pid"
wait "$cf" || fail "dump --live while the program forks: exit $? ($(head -c 300 "$E2E_TMP/live2.err"))"
check_pass "$W"

# A third with the copies made on fault bound to 8 pages: past the bound a
# writer's fault waits until the pipeline has taken copies out (or saved
# its page); the image is still that of one instant.
CF_LIVE_STASH_PAGES=8 run_cf bound dump -t "$pid" -D "$E2E_TMP/img-bound" -R --live --display-stats
assert_cf_ok "dump -R --live with 8 pages of copies at most"
held=$(sed -n 's/^  live stash: *\([0-9]*\) faults held.*/\1/p' "$CF_OUT")
copied=$(sed -n 's/^  live pages: .* \([0-9]*\) copied on fault.*/\1/p' "$CF_OUT")
log "bound of 8 copies: $(grep -E '^  live (pages|stash)' "$CF_OUT" | tr -s ' ' | tr '\n' ';')"
[ -n "$held" ] || fail "no live stash line in --display-stats: $(cat "$CF_OUT")"
# Without the bound the writers get hundreds of pages copied.
[ "$held" -gt 0 ] || [ "${copied:-0}" -le 8 ] || fail "$copied pages copied on fault, no fault held, bound 8"
assert_running_untraced "$pid" "after dump --live with a bound"
check_pass "$W"

for img in img1 img2 img-bound; do
  kill_prog "$pid"
  wait_pid_free "$pid" 20
  restore_d "restore-$img" "$E2E_TMP/$img" "$pid"
  check_pass "$W"
done
log "three live images restored consistent; the program ran on"

# A live dump failing before the release (collect), at it (live-release) or
# after it (image-write) exits 1 with an Error line; the program runs on
# untraced, with the same maps and descriptors (its userfaultfds closed,
# its memory unprotected) and passes its self-check.
for point in collect live-release image-write; do
  snapshot "$pid" "$E2E_TMP/before-$point" || fail "snapshot of $pid"
  CF_FAULT=$point run_cf "fault-$point" dump -t "$pid" -D "$E2E_TMP/fault-$point" -R --live
  assert_cf_error "dump --live with CF_FAULT=$point"
  grep -q "fault injected at $point" "$CF_ERR" || fail "CF_FAULT=$point not reached: $(cf_error_line)"
  [ -e "$E2E_TMP/fault-$point/inventory.img" ] && fail "CF_FAULT=$point: an inventory was left"
  assert_running_untraced "$pid" "after CF_FAULT=$point"
  assert_same_snapshot "$pid" "$E2E_TMP/before-$point" "after CF_FAULT=$point"
  check_pass "$W"
done

# Memory of the snapshot unmapped during the save (64 MiB mapped above the
# writers', so saved last): either the dump saved it first, or the live
# snapshot is lost, and criu-fast says why and dumps again frozen (the
# partial image removed first); either way it exits 0 with an image and the
# program runs on, unharmed.
kill_prog "$pid"
W2=$E2E_TMP/w2
start_prog live_writer "$W2" 128 1 unmap
pid2=$PROG_PID
"$CRIU_FAST" dump -t "$pid2" -D "$E2E_TMP/img3" -R --live --display-stats --jobs 1 -v4 -o "$E2E_TMP/live3.log" >"$E2E_TMP/live3.out" 2>"$E2E_TMP/live3.err" &
cf=$!
for ((i = 0; i < 1000; i++)); do
  grep -q 'runs on after' "$E2E_TMP/live3.log" 2>/dev/null && break
  kill -0 "$cf" 2>/dev/null || break
  sleep 0.005
done
kill -USR2 "$pid2"
wait "$cf"
rc=$?
[ "$rc" = 0 ] || fail "unmap during the save: criu-fast exited $rc: $(head -c 300 "$E2E_TMP/live3.err")"
[ -s "$E2E_TMP/img3/inventory.img" ] || fail "unmap during the save: no image"
if grep -q 'dumping again without --live' "$E2E_TMP/live3.log"; then
  grep -q -- "--live: process .* changed its memory before it was saved: munmap" "$E2E_TMP/live3.log" ||
    fail "unmap during the save: the fallback does not say why"
  grep -q '^  live' "$E2E_TMP/live3.out" && fail "unmap during the save: stats of a live dump after the fallback"
  log "unmap during the save: $(grep -m1 -o 'changed its memory.*' "$E2E_TMP/live3.log" | cut -c1-120)... dumped again frozen"
else
  log "unmap during the save: it came after its pages were saved (the live dump stood)"
fi
assert_running_untraced "$pid2" "after the unmap during a live dump"
check_pass "$W2"
kill_prog "$pid2"

# A tree: 3 processes of 4 threads each (tests/progs/busytree.c: a spinner,
# a sleeper, a reader blocked in read(2) on a pipe another thread writes):
# dump -R --live, every process runs on and passes its self-check; then the
# image, restored, passes it too.
W3=$E2E_TMP/w3
start_prog busytree "$W3" 3 16
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 3 ] || fail "expected 3 processes in the tree, found ${#all[@]}"
run_cf tree dump -t "$root" -D "$E2E_TMP/tree" -R --live --display-stats -v4 -o "$E2E_TMP/tree.log"
CF_LOG=$E2E_TMP/tree.log
assert_cf_ok "dump -R --live of a tree"
grep -q '^  processes: *3' "$CF_OUT" || fail "tree: $(grep processes "$CF_OUT")"
for p in "${all[@]}"; do assert_running_untraced "$p" "tree process $p after dump --live"; done
check_pass "$W3"
for p in "${all[@]}"; do kill -KILL "$p" 2>/dev/null; done
for p in "${all[@]}"; do wait_gone "$p" 10; done
for p in "${all[@]}"; do wait_pid_free "$p" 20; done
restore_d restore-tree "$E2E_TMP/tree" "$root"
check_pass "$W3"
log "a tree dumped live and restored"
