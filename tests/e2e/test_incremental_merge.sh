#!/bin/bash
# `criu-fast merge -D DIR OUT` makes an increment and its chain of parents one
# self-contained image (tests/progs/incremental.c changes 1% of 32 MiB per
# step):
#   pre-dump 1, pre-dump 2 (parent 1), dump 3 (parent 2, the tree killed);
#   merge 3 into M (lz4), then 1, 2 and 3 are removed: M restores alone and
#   the program checks every byte; M has no PARENT range and holds about one
#   full dump's pages; M dumped again serves as a parent (hashes kept).
# A merge into an existing directory, or of a chain missing a parent, fails
# and leaves nothing behind.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog incremental "$W" 32
pid=$PROG_PID
cd "$E2E_TMP" || fail "cd $E2E_TMP"

step() {
  kill -USR2 "$pid"
  for ((i = 0; i < 200; i++)); do [ "$(cat "$W/step" 2>/dev/null)" = "$1" ] && return; sleep 0.05; done
  fail "the program did not take step $1"
}

run_cf pre1 pre-dump -t "$pid" -D 1 --track-mem
assert_cf_ok "pre-dump 1"
step 1
run_cf pre2 pre-dump -t "$pid" -D 2 --track-mem --prev-images-dir ../1
assert_cf_ok "pre-dump 2"
step 2
dump_kill dump3 "$pid" 3 --track-mem --prev-images-dir ../2

# A merge needs a new directory.
mkdir taken
run_cf merge-taken merge -D 3 taken
assert_cf_error "merge into an existing directory"
[ -d taken ] || fail "a failed merge removed a directory it did not make"

run_cf merge merge -D 3 M --compress lz4 --display-stats
assert_cf_ok "merge -D 3 M"
grep -q "images merged: *3" "$CF_OUT" || fail "merge --display-stats: $(cat "$CF_OUT")"
cf_show M "$E2E_TMP/show-m.json"
pycheck "merged pagemap" "$E2E_TMP/show-m.json" "$pid" <<'PY'
show, pid = load(sys.argv[1]), int(sys.argv[2])
inv = show["inventory"]
if inv.get("parent") or inv.get("parent_id"):
    fail("the merged inventory still names a parent: %s" % inv.get("parent"))
pm = proc(show, pid)["pagemap"]
kinds = set(r.get("kind", "DATA") for r in pm.get("ranges", []))
if "PARENT" in kinds:
    fail("the merged pagemap has PARENT ranges")
data = u(pm.get("data_pages"))
if data < 8000:
    fail("the merged image holds %d pages, a full dump of 32 MiB holds more than 8000" % data)
if u(pm.get("page_hashes")) < data:
    fail("the merged pagemap has %d page hashes for %d pages" % (u(pm.get("page_hashes")), data))
PY
rm -rf 1 2 3
restore_d restore M "$pid"
check_pass "$W"

# The merged image is a parent like any other.
step 3
dump_kill dump4 "$pid" 4 --prev-images-dir ../M --display-stats
inpar=$(stat_value "$E2E_TMP/dump4.out" "pages in parent") || fail "dump 4: no 'pages in parent'"
[ "$inpar" -ge 7000 ] || fail "dump 4 found only $inpar pages in the merged parent"
restore_d restore4 4 "$pid"
check_pass "$W"

# A chain with a parent missing is refused, and no directory is left.
kill_prog "$pid"
rm -rf M
run_cf merge-broken merge -D 4 M2
assert_cf_error "merge of a chain whose parent is gone"
[ ! -e M2 ] || fail "a failed merge left M2 behind"
log "PASS"
