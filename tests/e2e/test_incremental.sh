#!/bin/bash
# Incremental dumps: three pre-dumps, then a dump, then a restore through the
# chain (tests/progs/incremental.c, 64 MiB changing between the rounds: 1% of
# its pages rewritten, new mappings, partial unmaps, mremap, mprotect splits,
# shared memory, a thread's pages, and a child forked between rounds 2 and 3;
# parent and child check every byte against a model after the restore).
#
#   - pre-dump 1 arms write tracking (uffd-wp) and leaves the target running
#     untraced with the same descriptors; its keeper holds the tracking
#   - pre-dump 2 (--prev-images-dir ../1) finds most pages unwritten by
#     tracking and stores them as PARENT references: its image is small
#   - a pre-dump whose tracking scan fails (CF_FAULT=track-scan) leaves the
#     target running and unchanged; it took the tracking from the keeper and
#     dropped it, so pre-dump 3 compares contents instead and is still right
#   - the final dump stores unchanged pages as PARENT; restore follows the
#     chain; every process verifies its memory
#   - a parent replaced by another dump, a removed one and a truncated pages
#     file of a parent are refused before any process is created
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog incremental "$W" 64
pid=$PROG_PID
D=$E2E_TMP/img

step() {
  local want=$1 i
  kill -USR2 "$pid"
  for ((i = 0; i < 200; i++)); do
    [ "$(cat "$W/step" 2>/dev/null)" = "$want" ] && return 0
    sleep 0.05
  done
  fail "the program did not finish step $want"
}

# pre_dump N [ARGS]: pre-dump into $D/N; the target must run on untraced with
# the same descriptors.
pre_dump() {
  local n=$1 before=$E2E_TMP/fds.before after=$E2E_TMP/fds.after
  shift
  fd_list "$pid" "$before"
  run_cf "pre-dump-$n" pre-dump -t "$pid" -D "$D/$n" --track-mem --display-stats -v4 -o "$E2E_TMP/pre-dump-$n.log" "$@"
  CF_LOG=$E2E_TMP/pre-dump-$n.log
  assert_cf_ok "pre-dump $n"
  CF_LOG=
  assert_running_untraced "$pid" "after pre-dump $n"
  fd_list "$pid" "$after"
  assert_same_file "$before" "$after" "pre-dump $n changed the target's descriptors"
}

# keeper_of DIR: whether the keeper named in DIR's inventory listens (its
# abstract socket is in /proc/net/unix), for up to 2 s until it is gone.
keeper_listens() {
  local id i
  id=$(cf_show "$1" "$E2E_TMP/keeper.json" && python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inventory"].get("tracker", ""))' "$E2E_TMP/keeper.json")
  [ -n "$id" ] || return 1
  for ((i = 0; i < 40; i++)); do
    grep -q "@$id\$" /proc/net/unix || return 1
    [ "${2:-}" = now ] && return 0
    sleep 0.05
  done
  return 0
}

mkdir -p "$D"
pre_dump 1
[ "$(stat_value "$CF_OUT" "pages written")" -ge 16384 ] || fail "pre-dump 1 wrote fewer than 64 MiB of pages"
grep -q "tracking: *uffd-wp" "$CF_OUT" || fail "pre-dump 1 did not arm uffd-wp tracking: $(cat "$CF_OUT")"
keeper_listens "$D/1" now || fail "no keeper holds the tracking after pre-dump 1"
step 1

pre_dump 2 --prev-images-dir ../1
unwritten() { sed -n 's/.*unwritten since it: \([0-9]*\),.*/\1/p' "$CF_OUT"; }
tracked=$(unwritten)
written=$(stat_value "$CF_OUT" "pages written")
[ "${tracked:-0}" -ge 15000 ] || fail "pre-dump 2: ${tracked:-no} pages found unwritten by tracking: $(cat "$CF_OUT")"
[ "$written" -le 1000 ] || fail "pre-dump 2: $written pages written, expected about 1% of 16384 and the new ones"
[ "$(readlink "$D/2/parent")" = ../1 ] || fail "no parent link in pre-dump 2"
step 2

# A pre-dump failing in its tracking scan rolls back: same memory map and
# descriptors. It took the tracking from pre-dump 2's keeper and drops it:
# VMAs that were apart only because one was tracked may merge then (maps
# compared merged).
snap() {
  maps_key "$pid" "$E2E_TMP/maps.key" || fail "cannot read the maps of $pid"
  maps_merge "$E2E_TMP/maps.key" "$1"
  fd_list "$pid" "$1.fds"
  cat "$1.fds" >>"$1"
}
snap "$E2E_TMP/snap.before"
CF_FAULT=track-scan run_cf fault pre-dump -t "$pid" -D "$E2E_TMP/fault" --prev-images-dir "$D/2" --track-mem
assert_cf_error "pre-dump with CF_FAULT=track-scan"
assert_running_untraced "$pid" "after the failed pre-dump"
snap "$E2E_TMP/snap.after"
assert_same_file "$E2E_TMP/snap.before" "$E2E_TMP/snap.after" "a failed pre-dump changed the target"
[ ! -e "$E2E_TMP/fault/inventory.img" ] || fail "the failed pre-dump left an inventory"
keeper_listens "$D/2" && fail "pre-dump 2's keeper is left after the tracking was taken"

# Without the tracking, contents are compared instead; tracking is armed again.
pre_dump 3 --prev-images-dir ../2
grep -q "tracking: *hash" "$CF_OUT" || fail "pre-dump 3 without a keeper: $(cat "$CF_OUT")"
[ "$(stat_value "$CF_OUT" "pages in parent")" -ge 15000 ] || fail "pre-dump 3: content compare found too few pages"
step 3

child_pid "$W"
child=$CHILD_PID
run_cf dump dump -t "$pid" -D "$D/4" --prev-images-dir ../3 --track-mem --display-stats -v4 -o "$E2E_TMP/dump.log"
CF_LOG=$E2E_TMP/dump.log
assert_cf_ok "final dump"
CF_LOG=
grep -q "tracking: *uffd-wp" "$CF_OUT" || fail "the final dump did not use tracking: $(cat "$CF_OUT")"
[ "$(unwritten)" -ge 15000 ] || fail "the final dump found $(unwritten) pages unwritten by tracking"
[ "$(stat_value "$CF_OUT" "pages untracked")" -le 20000 ] || fail "the final dump tracked too little" 
wait_gone "$pid" 10
wait_gone "$child" 10
[ "$(stat_value "$CF_OUT" "pages in parent")" -ge 15000 ] || fail "the final dump took too few pages from its parent"
cf_show "$D/4" "$E2E_TMP/show.json"
pycheck "final image refers to its parent" "$E2E_TMP/show.json" "$pid" <<'EOF'
show = load(sys.argv[1])
pm = proc(show, int(sys.argv[2]))["pagemap"]
if not page_ranges(pm, "PARENT"):
    fail("no PARENT range in the final pagemap")
EOF

# A damaged chain is refused before any process is created (the killed
# processes reaped first, so their pids are free).
wait_pid_free "$pid" 20
wait_pid_free "$child" 20
refuse() {
  local what=$1 expect=$2
  run_cf "refuse" restore -D "$D/4" -d
  assert_cf_error "restore with $what"
  cf_error_line | grep -q "$expect" || fail "restore with $what: $(cf_error_line)"
  pid_absent "$pid" || fail "restore with $what created process $pid"
}
mv "$D/3" "$D/3.good"
refuse "its parent removed" "parent image"
start_prog counter "$E2E_TMP/w2"
run_cf other pre-dump -t "$PROG_PID" -D "$D/3"
assert_cf_ok "another pre-dump in place of the parent"
kill_prog "$PROG_PID"
refuse "its parent replaced by another dump" "replaced by another dump"
rm -rf "$D/3"
cp -a "$D/3.good" "$D/3"
pages2=$(ls "$D/2"/pages-"$pid".img)
cp "$pages2" "$E2E_TMP/pages2.good"
truncate -s $(($(stat -c %s "$pages2") / 2)) "$pages2"
refuse "a truncated pages file two levels up" "truncated"
cp "$E2E_TMP/pages2.good" "$pages2"

restore_d restore "$D/4" "$pid"
E2E_PIDS+=("$child")
assert_running_untraced "$child" "the child after restore"
check_pass "$W"
log "PASS"
