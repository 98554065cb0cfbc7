#!/bin/bash
# Deduplication of pages by content within one dump (tests/progs/dedup_tree.c:
# a parent and a child, not sharing by copy-on-write, holding many equal
# pages, near-duplicates and equal pages at other offsets):
#   1. dump -R --no-dedup: nothing deduplicated (the size to beat);
#   2. dump -R (off by default: none), dump -R --track-mem --dedup: --display-stats and
#      stats-dump.img count about every pattern page but 8, the pages files
#      are smaller by that, both pagemaps hold DUP ranges, the child's also
#      referring to the parent's pages;
#   3. the parent changes some pages; an increment against image 2 (its
#      PARENT pages land on DUP ranges of the parent image) is restored and
#      checked (every byte of every page);
#   4. the increment and its parent merged, restored alone;
#   5. image 1 itself restored, and a --dedup dump that is no parent
#      (sampled keys), and a --dedup dump through a stream;
#   6. --dedup where the tree is not frozen throughout is refused.
# A DUP reference to a missing process or to a page not stored as DATA is
# refused by restore: unit tests (restore/images_test.cc, CheckDupRefs).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

PAGES=512
W=$E2E_TMP/w
start_prog dedup_tree "$W" "$PAGES"
pid=$PROG_PID
child_pid "$W"
child=$CHILD_PID
check_pass "$W"
expect=$(cat "$W/expect")
cd "$E2E_TMP" || fail "cd $E2E_TMP"

pages_bytes() { cat "$1"/pages-*.img | wc -c; }

# Sizes compared uncompressed (a codec squeezes equal pages as well).
dump_kill plain "$pid" 0 -R --no-dedup --display-stats --compress none
n0=$(stat_value "$E2E_TMP/plain.out" "pages deduplicated") || fail "--display-stats: no 'pages deduplicated'"
[ "$n0" = 0 ] || fail "--no-dedup: $n0 pages deduplicated"
s0=$(pages_bytes 0)

# Off by default: nothing deduplicated without --dedup.
dump_kill d0 "$pid" d0 -R --display-stats
[ "$(stat_value "$E2E_TMP/d0.out" "pages deduplicated")" = 0 ] || fail "dedup without --dedup"
# A dump that is no parent: pages keyed by a sampled hash (sched/dedup.h).
dump_kill ds "$pid" ds -R --display-stats --dedup
ns=$(stat_value "$E2E_TMP/ds.out" "pages deduplicated") || fail "--display-stats: no 'pages deduplicated'"
[ "$ns" -ge $((expect - 16)) ] || fail "dump --dedup (sampled keys): $ns pages deduplicated, want about $expect"
dump_kill d1 "$pid" 1 -R --track-mem --display-stats --dedup --compress none
n1=$(stat_value "$E2E_TMP/d1.out" "pages deduplicated") || fail "--display-stats: no 'pages deduplicated'"
inh=$(stat_value "$E2E_TMP/d1.out" "pages inherited") || fail "--display-stats: no 'pages inherited'"
s1=$(pages_bytes 1)
log "dedup: $n1 pages deduplicated, $inh inherited (the program expects $expect + $PAGES + 1); pages files $s0 -> $s1 bytes"
# The child's copy of B and of the random page before C are the parent's:
# inherited where the child's VMAs are alike the parent's, else equal to
# the parent's pages. Two pipelines may store the same pattern at the same
# instant (a few more stored); the processes' stacks and libraries add a
# few matches. A near-duplicate taken for its pattern would add 512.
want=$((expect + PAGES + 1))
[ $((n1 + inh)) -ge $((want - 16)) ] && [ $((n1 + inh)) -le $((want + 256)) ] ||
  fail "dump: $n1 pages deduplicated and $inh inherited, want about $want together"
[ "$n1" -ge $((expect - 16)) ] || fail "dump: $n1 pages deduplicated, want at least about $expect"
[ "$s1" -le $((s0 - (expect - 16) * 4096)) ] || fail "the pages files take $s1 bytes with dedup, $s0 without"
cf_show 1 "$E2E_TMP/show1.json"
pycheck "DUP ranges of image 1" "$E2E_TMP/show1.json" "$pid" "$child" "$n1" <<'PY'
show, pid, child, n = load(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if u(show["stats"].get("pages_dedup")) != n:
    fail("stats-dump.img says %s pages deduplicated, --display-stats %d" % (show["stats"].get("pages_dedup"), n))
total, cross = 0, 0
for p in (pid, child):
    dups = [r for r in proc(show, p)["pagemap"].get("ranges", []) if r.get("kind") == "DUP"]
    if not dups:
        fail("process %d has no DUP range" % p)
    total += sum(u(r.get("nr_pages")) for r in dups)
    cross += sum(u(r.get("nr_pages")) for r in dups if int(r.get("ref_pid", 0)) != p)
if total != n:
    fail("the pagemaps hold %d DUP pages, the stats say %d" % (total, n))
if cross < 100:
    fail("only %d DUP pages refer to the other process" % cross)
PY

# The parent rewrites every 16th page of A; then an increment against 1.
kill -USR2 "$pid"
for ((i = 0; i < 200; i++)); do [ -s "$W/step" ] && break; sleep 0.05; done
[ -s "$W/step" ] || fail "the program did not take its step"
dump_kill d2 "$pid" 2 --prev-images-dir ../1 --display-stats --dedup
wait_gone "$child" 10
cf_show 2 "$E2E_TMP/show2.json"
pycheck "PARENT ranges of image 2" "$E2E_TMP/show2.json" "$pid" <<'PY'
show, pid = load(sys.argv[1]), int(sys.argv[2])
par = sum(u(r.get("nr_pages")) for r in proc(show, pid)["pagemap"].get("ranges", []) if r.get("kind") == "PARENT")
if par < 400:
    fail("the increment takes only %d pages of the parent process from its parent image" % par)
PY
restore_d r2 2 "$pid"
check_pass "$W"
kill_prog "$pid"
kill_prog "$child"

run_cf merge merge -D 2 M
assert_cf_ok "merge -D 2 M"
restore_d rm M "$pid"
check_pass "$W"
kill_prog "$pid"
kill_prog "$child"

restore_d r1 1 "$pid"
check_pass "$W"
kill_prog "$pid"
kill_prog "$child"

restore_d rs ds "$pid"
check_pass "$W"

# Through a stream: dump --stream --dedup piped into restore --stream.
timeout -k 5 "$CF_TIMEOUT" bash -c '
  set -o pipefail
  "$1" dump -t "$2" --stream --dedup --display-stats -v4 -o "$3/sdump.log" 2>"$3/sdump.err" |
    "$1" restore --stream -d -v4 -o "$3/srestore.log" 2>"$3/srestore.err"
  echo "${PIPESTATUS[0]} ${PIPESTATUS[1]}" >"$3/rcs"' _ "$CRIU_FAST" "$pid" "$E2E_TMP"
read -r dump_rc restore_rc <"$E2E_TMP/rcs" || fail "the stream pipeline did not finish (timeout?)"
CF_ERR=$E2E_TMP/sdump.err CF_LOG=$E2E_TMP/sdump.log
[ "$dump_rc" = 0 ] || fail "dump --stream --dedup exited $dump_rc"
nst=$(stat_value "$E2E_TMP/sdump.err" "pages deduplicated") || fail "dump --stream: no 'pages deduplicated'"
[ "$nst" -ge $((expect - 16)) ] || fail "dump --stream --dedup: $nst pages deduplicated, want about $expect"
CF_ERR=$E2E_TMP/srestore.err CF_LOG=$E2E_TMP/srestore.log
[ "$restore_rc" = 0 ] || fail "restore --stream exited $restore_rc"
CF_LOG=
assert_running_untraced "$pid" "after restore --stream"
check_pass "$W"
kill_prog "$pid"
kill_prog "$child"

run_cf refuse pre-dump -t "$$" -D P --dedup
assert_cf_error "pre-dump --dedup"
cf_error_line | grep -q -- '--dedup' || fail "pre-dump --dedup: $(cf_error_line)"
log "PASS"
