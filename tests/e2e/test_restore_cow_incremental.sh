#!/bin/bash
# Memory a child shares copy-on-write with its parent stays shared through
# increments (tests/progs/cow_tree.c: root -> child -> grandchild, quarters
# of a region written by each, a private file mapping). Sharing is decided
# before the parent image is looked up: a page the child still shares with
# its parent process is INHERITED in every increment, never PARENT (which
# would restore it from the image chain as a private copy).
#
#   0. (without --track-mem) dump -R, and dump -R --live: the tree runs on,
#      still sharing;
#   1. pre-dump twice (the second against the first), the tree running on
#      and still sharing (it checks its frames after each pre-dump);
#   2. dump against the second pre-dump: the child's and the grandchild's
#      pagemaps hold their shared pages as INHERITED, the root's unchanged
#      pages are PARENT references; restore through the chain; the tree
#      checks every byte and, frame by frame, which pages each process
#      shares with its parent;
#   3. merge the chain into one image: the INHERITED ranges stay; restore
#      it; the same check.
# Both with write tracking (--track-mem, as zdtm's --pre runs do) and without
# it on the final dump (content compare).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

MB=16
QUARTER=$((MB * 256 / 4))

# pages_of SHOW_JSON PID KIND: pages of ranges of KIND in PID's pagemap.
pages_of() {
  pycheck "$3 pages of $2" "$1" "$2" "$3" "$E2E_TMP/kind.count" <<'PY'
show, pid, kind, out = load(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
p = proc(show, pid)
n = sum(u(r.get("nr_pages")) for r in p["pagemap"].get("ranges", []) if r.get("kind") == kind)
open(out, "w").write("%d\n" % n)
PY
  cat "$E2E_TMP/kind.count"
}

# check_image TAG DIR ROOT CHILD GRAND: the child and grandchild keep their
# shared pages as INHERITED in DIR's top pagemaps.
check_image() {
  local tag=$1 dir=$2 root=$3 child=$4 grand=$5 c g
  cf_show "$dir" "$E2E_TMP/show-$tag.json"
  c=$(pages_of "$E2E_TMP/show-$tag.json" "$child" INHERITED)
  g=$(pages_of "$E2E_TMP/show-$tag.json" "$grand" INHERITED)
  log "$tag: INHERITED pages: child $c, grandchild $g"
  [ "$c" -ge $((2 * QUARTER)) ] || fail "$tag: the child's pagemap has $c INHERITED pages, want >= $((2 * QUARTER))"
  [ "$g" -ge $((3 * QUARTER)) ] || fail "$tag: the grandchild's pagemap has $g INHERITED pages, want >= $((3 * QUARTER))"
  INHERITED_SUM=$((c + g))
}

# pre_dump TAG PID DIR ARGS...: a pre-dump; the tree runs on, untraced.
pre_dump() {
  local tag=$1 pid=$2 dir=$3
  shift 3
  run_cf "$tag" pre-dump -t "$pid" -D "$dir" -v4 -o "$E2E_TMP/$tag.log" "$@"
  CF_LOG=$E2E_TMP/$tag.log
  assert_cf_ok "$tag"
  CF_LOG=
  assert_running_untraced "$pid" "after $tag"
}

run_chain() {
  local mode=$1 W=$E2E_TMP/w-$1 root child grand extra=()
  [ "$mode" = track ] && extra=(--track-mem)
  start_prog cow_tree "$W" "$MB"
  root=$PROG_PID
  child_pid "$W" ready.child
  child=$CHILD_PID
  child_pid "$W" ready.grandchild
  grand=$CHILD_PID
  check_pass "$W"

  local P=$E2E_TMP/img-$mode
  mkdir -p "$P"
  if [ "$mode" = compare ]; then
    # A dump -R leaves the sharing alone too (a parent's pages are read
    # without pinning them).
    dump_r "$P/0" "$root" "$child" "$grand"
    check_pass "$W"
    # Nor does dump -R --live (it reads every process of a tree so).
    run_cf dump-live dump -t "$root" -D "$P/live" -R --live -v4 -o "$E2E_TMP/dump-live.log"
    CF_LOG=$E2E_TMP/dump-live.log
    assert_cf_ok "dump -R --live"
    CF_LOG=
    assert_running_untraced "$root" "after dump -R --live"
    check_pass "$W"
  fi
  pre_dump "pre-$mode-1" "$root" "$P/1" --track-mem
  check_pass "$W"
  pre_dump "pre-$mode-2" "$root" "$P/2" --track-mem --prev-images-dir ../1
  check_image "pre-$mode-2" "$P/2" "$root" "$child" "$grand"
  check_pass "$W"
  dump_kill "dump-$mode" "$root" "$P/3" --prev-images-dir ../2 --display-stats "${extra[@]}"
  local inh
  inh=$(stat_value "$E2E_TMP/dump-$mode.out" "pages inherited") || fail "--display-stats: no 'pages inherited'"
  check_image "dump-$mode" "$P/3" "$root" "$child" "$grand"
  [ "$inh" = "$INHERITED_SUM" ] || fail "$mode: --display-stats says $inh inherited pages, the pagemaps $INHERITED_SUM"
  local rp
  rp=$(pages_of "$E2E_TMP/show-dump-$mode.json" "$root" PARENT)
  [ "$rp" -ge "$QUARTER" ] || fail "$mode: the root's pagemap has $rp PARENT pages: the dump did not use its parent image"
  restore_d "restore-$mode" "$P/3" "$root"
  check_pass "$W"
  log "$mode: after restore the child shares $(cat "$W/shared.child") pages, the grandchild $(cat "$W/shared.grandchild")"

  if [ "$mode" = track ]; then
    run_cf "merge-$mode" merge -D "$P/3" "$P/M"
    assert_cf_ok "merge of $P/3"
    check_image "merge-$mode" "$P/M" "$root" "$child" "$grand"
    kill_prog "$grand"
    kill_prog "$child"
    kill_prog "$root"
    restore_d "restore-merged" "$P/M" "$root"
    check_pass "$W"
  fi
}

run_chain track
run_chain compare
log "PASS"
