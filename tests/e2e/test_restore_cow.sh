#!/bin/bash
# Memory a child shares copy-on-write with its parent after fork comes back
# shared (tests/progs/cow_tree.c: root -> child -> grandchild, quarters of a
# region written by each at different times). The dump stores a page that a
# child still shares with its parent once (INHERITED in the child's
# pagemap); restore fills the parent first and hands the memory down by fork.
#
#   1. the tree checks its bytes and, by /proc/PID/pagemap frames, which
#      pages each process shares with its parent;
#   2. dump (kill): --display-stats counts the inherited pages, the child's
#      and grandchild's pagemaps hold INHERITED ranges; restore; check again
#      (the sharing is back, exactly);
#   3. the same through a dump with the vmsplice drain (its pins must not
#      hide the sharing);
#   4. a grandchild sharing its parent's descriptor table (CLONE_FILES):
#      restore cannot hand memory down there, so its inherited pages are
#      filled from its parent's images (bytes checked, sharing not; the
#      second dump finds none to share).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

MB=16

# inherited_pages SHOW_JSON PID: INHERITED pages in PID's pagemap.
inherited_pages() {
  pycheck "inherited pages of $2" "$1" "$2" "$E2E_TMP/inh.count" <<'PY'
show, pid, out = load(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
p = proc(show, pid)
n = sum(u(r.get("nr_pages")) for r in p["pagemap"].get("ranges", []) if r.get("kind") == "INHERITED")
open(out, "w").write("%d\n" % n)
PY
  cat "$E2E_TMP/inh.count"
}

run_tree() {
  local mode=$1 W=$E2E_TMP/w-$1 root child grand
  shift
  start_prog cow_tree "$W" "$MB" "$@"
  root=$PROG_PID
  child_pid "$W" ready.child
  child=$CHILD_PID
  child_pid "$W" ready.grandchild
  grand=$CHILD_PID
  check_pass "$W"
  local quarter=$((MB * 256 / 4))
  [ "$(cat "$W/shared.child")" -ge $((2 * quarter)) ] || fail "$mode: child shares $(cat "$W/shared.child") pages before the dump"

  local round=0 drain
  for drain in read vmsplice; do
    round=$((round + 1))
    local D=$E2E_TMP/img-$mode-$round
    dump_kill "dump-$mode-$round" "$root" "$D" --display-stats --drain "$drain"
    local inh
    inh=$(stat_value "$E2E_TMP/dump-$mode-$round.out" "pages inherited") || fail "--display-stats: no 'pages inherited'"
    cf_show "$D" "$E2E_TMP/show-$mode-$round.json"
    local c g
    c=$(inherited_pages "$E2E_TMP/show-$mode-$round.json" "$child")
    g=$(inherited_pages "$E2E_TMP/show-$mode-$round.json" "$grand")
    log "$mode, drain $drain: $inh pages inherited (child $c, grandchild $g)"
    [ "$c" -ge $((2 * quarter)) ] || fail "$mode: the child's pagemap has $c INHERITED pages, want >= $((2 * quarter))"
    # With a shared table the sharing does not come back: the second dump
    # finds none in the grandchild.
    if [ "$mode" = fork ] || [ "$round" = 1 ]; then
      [ "$g" -ge $((3 * quarter)) ] || fail "$mode: the grandchild's pagemap has $g INHERITED pages, want >= $((3 * quarter))"
    fi
    [ "$inh" = $((c + g)) ] || fail "$mode: --display-stats says $inh inherited pages, the pagemaps $((c + g))"
    restore_d "restore-$mode-$round" "$D" "$root"
    check_pass "$W"
    log "$mode: after restore $round the child shares $(cat "$W/shared.child") pages, the grandchild $(cat "$W/shared.grandchild")"
  done
}

run_tree fork
run_tree fdt fdt
log "PASS"
