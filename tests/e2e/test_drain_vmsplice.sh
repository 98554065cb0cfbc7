#!/bin/bash
# The vmsplice drain (--drain vmsplice): the parasite pins the pages of each
# process in pipes (tests/progs/tree.c, a tree of 5 processes with private
# memory).
#
# 1. dump -R --drain vmsplice: every process runs on untraced, with exactly
#    the maps and descriptors it had (the parasite leaves no trace); the
#    self-check passes; the stats say vmsplice and count pinned pages.
# 2. dump --drain vmsplice --jobs 1 (kill) + restore: the tree was killed
#    before the pages were written (frozen time < total time); it passes.
# 3. the same with --jobs 2 --compress lz4.
# 4. a fault injected while the parasite is in place (CF_FAULT=parasite), and
#    one while draining the pipes of a -R dump (CF_FAULT=drain): the dump
#    fails with one error, the tree runs on unchanged and passes.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog tree "$W" 32
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 5 ] || fail "expected 5 processes in the tree, found ${#all[@]}"
for p in "${all[@]}"; do snapshot "$p" "$E2E_TMP/snap-$p" || fail "snapshot $p"; done

# --- 1. -R: no trace --------------------------------------------------------------------
run_cf dump-r dump -t "$root" -D "$E2E_TMP/img-r" -R --drain vmsplice --display-stats
assert_cf_ok "dump -R --drain vmsplice"
for p in "${all[@]}"; do
  assert_running_untraced "$p" "after dump -R --drain vmsplice"
  assert_same_snapshot "$p" "$E2E_TMP/snap-$p" "after dump -R --drain vmsplice"
done
grep -q "drain backend: *vmsplice" "$CF_OUT" || fail "--display-stats does not name the vmsplice backend"
grep -qE "pin time: .*\(([1-9][0-9]*) pages in pipes" "$CF_OUT" || fail "no pages pinned: $(grep pin "$CF_OUT")"
check_pass "$W"

# --- 2, 3. kill after pinning; restore ----------------------------------------------------
round=0
for args in "--jobs 1" "--jobs 2 --compress lz4"; do
  round=$((round + 1))
  read -r -a extra <<<"$args"
  dump_kill "dump$round" "$root" "$E2E_TMP/img$round" --drain vmsplice --display-stats "${extra[@]}"
  frozen=$(stat_value "$CF_OUT" "frozen time")
  total=$(stat_value "$CF_OUT" "total time")
  python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < float(sys.argv[2]))' "$frozen" "$total" ||
    fail "round $round: frozen time $frozen ms is not below the total $total ms (killed before writing?)"
  grep -q "written after the tree was killed" "$CF_OUT" || fail "round $round: the tree was not killed before the writing"
  for p in "${all[@]}"; do wait_gone "$p" 10; done
  restore_d "restore$round" "$E2E_TMP/img$round" "$root"
  for p in "${all[@]}"; do E2E_PIDS+=("$p"); done
  check_pass "$W"
  log "ok: $args: frozen $frozen ms of $total ms"
done

# --- 4. faults -------------------------------------------------------------------------------
for p in "${all[@]}"; do snapshot "$p" "$E2E_TMP/snap2-$p" || fail "snapshot $p"; done
for point in parasite drain; do
  CF_FAULT=$point run_cf "fault-$point" dump -t "$root" -D "$E2E_TMP/img-fault-$point" --drain vmsplice -R
  assert_cf_error "CF_FAULT=$point"
  for p in "${all[@]}"; do
    assert_running_untraced "$p" "after CF_FAULT=$point"
    assert_same_snapshot "$p" "$E2E_TMP/snap2-$p" "after CF_FAULT=$point"
  done
  assert_no_inventory "$E2E_TMP/img-fault-$point" "CF_FAULT=$point"
  check_pass "$W"
  log "ok: CF_FAULT=$point -> $(cf_error_line)"
done
log "PASS"
