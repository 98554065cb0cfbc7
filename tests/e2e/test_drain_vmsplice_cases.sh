#!/bin/bash
# More cases of the vmsplice drain backend (--drain vmsplice,
# memdrain/parasite.h); test_drain_vmsplice.sh has the basic ones.
#
# 1. dump -R of memmix: /proc/PID/maps and the descriptor list are exactly
#    what they were (the parasite's area, its pipes and pidfd are all gone),
#    the process runs on untraced and its memory self-check passes; the stats
#    say drain "vmsplice" and every scanned page was pinned.
# 2. dump (kill) of memmix: the tree is killed once its pages are pinned, so
#    the frozen time is shorter than the total and after_release_ns > 0;
#    restore -d, self-check PASS.
# 3. the same for a tree of five processes (tests/progs/tree.c: each process
#    checks its own memory), a process with 4 threads (the parasite runs on
#    the leader only) and mappings.c (a PROT_NONE area with data: copied
#    while frozen, not vmspliced).
# 4. a descriptor budget too small for the tree (criu-fast under
#    prlimit --nofile): the processes that do not fit are drained with
#    process_vm_readv instead (the tree stays frozen to the end); restore
#    PASS.
# 5. CF_FAULT=parasite (a fault while the parasite is in place, after it was
#    injected), with and without -R: criu-fast fails cleanly, the target runs
#    on untraced with the same maps and descriptors, and passes its check.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

# --- 1. dump -R: no trace ------------------------------------------------------
W=$E2E_TMP/memmix
start_prog memmix "$W" 64
pid=$PROG_PID
snapshot "$pid" "$E2E_TMP/snap-r" || fail "snapshot of $pid"
run_cf dump-r dump -t "$pid" -D "$E2E_TMP/img-r" -R --drain vmsplice --display-stats -v4 -o "$E2E_TMP/dump-r.log"
CF_LOG=$E2E_TMP/dump-r.log
assert_cf_ok "dump -R --drain vmsplice"
assert_running_untraced "$pid" "after dump -R --drain vmsplice"
assert_same_snapshot "$pid" "$E2E_TMP/snap-r" "after dump -R --drain vmsplice"
grep -q "parasite: removed from $pid" "$CF_LOG" || fail "the log does not say the parasite was removed"
check_pass "$W"
grep -q "drain backend:   vmsplice" "$CF_OUT" || fail "--display-stats does not name the vmsplice backend"
cf_show "$E2E_TMP/img-r" "$E2E_TMP/show-r.json"
pycheck "stats of dump -R" "$E2E_TMP/show-r.json" <<'EOF2'
st = load(sys.argv[1])["stats"]
if st.get("drain") != "vmsplice":
    fail("stats drain %r, want vmsplice" % st.get("drain"))
if int(st.get("pages_pinned", 0)) != int(st["pages_scanned"]) or int(st["pages_scanned"]) < 10000:
    fail("pages pinned %s, scanned %s" % (st.get("pages_pinned"), st["pages_scanned"]))
if int(st.get("pin_ns", 0)) <= 0:
    fail("no pin time")
EOF2
CF_LOG=

# --- 2. dump (kill), restore ---------------------------------------------------
dump_kill dump-k "$pid" "$E2E_TMP/img-k" --drain vmsplice --display-stats
frozen=$(stat_value "$CF_OUT" "frozen time")
total=$(stat_value "$CF_OUT" "total time")
grep -q "written after the tree was killed" "$CF_OUT" || fail "the stats do not say the tree was killed before writing"
log "memmix 64 MB, vmsplice, kill: frozen $frozen ms, total $total ms"
cf_show "$E2E_TMP/img-k" "$E2E_TMP/show-k.json"
pycheck "frozen vs total" "$E2E_TMP/show-k.json" <<'EOF2'
st = load(sys.argv[1])["stats"]
fz, tot, after = int(st["frozen_ns"]), int(st["total_ns"]), int(st.get("after_release_ns", 0))
if not (0 < fz < tot and after > 0):
    fail("frozen %d, total %d, after release %d" % (fz, tot, after))
EOF2
restore_d restore-k "$E2E_TMP/img-k" "$pid"
check_pass "$W"
kill_prog "$pid"

# --- 3. a tree, threads, a PROT_NONE area ---------------------------------------
W=$E2E_TMP/tree
start_prog tree "$W" 16
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 5 ] || fail "expected 5 processes in the tree, found ${#all[@]}"
dump_kill dump-tree "$root" "$E2E_TMP/img-tree" --drain vmsplice
for p in "${all[@]}"; do wait_gone "$p" 10; done
restore_d restore-tree "$E2E_TMP/img-tree" "$root"
for p in "${all[@]}"; do assert_running_untraced "$p" "tree after restore"; done
check_pass "$W"
kill_prog "$root"

for prog in threads mappings; do
  W=$E2E_TMP/$prog
  start_prog "$prog" "$W"
  p=$PROG_PID
  dump_kill "dump-$prog" "$p" "$E2E_TMP/img-$prog" --drain vmsplice
  restore_d "restore-$prog" "$E2E_TMP/img-$prog" "$p"
  check_pass "$W"
  kill_prog "$p"
done

# --- 4. a descriptor budget smaller than the tree ---------------------------------
# Each process of tree 48 needs 49 pipes of 1 MiB. criu-fast keeps 256
# descriptors in reserve: with 320 it may hold ~55 pipes (one process
# pinned, the others drained with process_vm_readv), with 290 ~25 (none
# pinned).
if command -v prlimit >/dev/null; then
  CRIU_FAST_REAL=$CRIU_FAST
  for case in "320 drained with process_vm_readv instead" "290 drained with process_vm_readv instead"; do
    nofile=${case%% *}
    want=${case#* }
    W=$E2E_TMP/tree-$nofile
    start_prog tree "$W" 48
    root=$PROG_PID
    mapfile -t all < <(tree_pids "$root")
    printf '#!/bin/sh\nexec prlimit --nofile=%s:%s "%s" "$@"\n' "$nofile" "$nofile" "$CRIU_FAST_REAL" \
      >"$E2E_TMP/cf-limited"
    chmod +x "$E2E_TMP/cf-limited"
    CRIU_FAST=$E2E_TMP/cf-limited
    run_cf "dump-$nofile" dump -t "$root" -D "$E2E_TMP/img-$nofile" --drain vmsplice -v4 -o "$E2E_TMP/dump-$nofile.log"
    CRIU_FAST=$CRIU_FAST_REAL
    CF_LOG=$E2E_TMP/dump-$nofile.log
    assert_cf_ok "dump --drain vmsplice with $nofile descriptors"
    grep -q "$want" "$CF_LOG" || fail "with $nofile descriptors the log does not say '$want'"
    CF_LOG=
    for p in "${all[@]}"; do wait_gone "$p" 10; done
    restore_d "restore-$nofile" "$E2E_TMP/img-$nofile" "$root"
    check_pass "$W"
    kill_prog "$root"
    log "ok: $nofile descriptors: $want"
  done
else
  log "prlimit missing: budget cases skipped"
fi

# --- 5. a fault while the parasite is in place ------------------------------------
for mode in kill leave-running; do
  what="CF_FAULT=parasite ($mode)"
  W=$E2E_TMP/w-fault-$mode
  D=$E2E_TMP/img-fault-$mode
  args=(-D "$D" --drain vmsplice -v4 -o "$E2E_TMP/fault-$mode.log")
  [ "$mode" = leave-running ] && args+=(-R)
  start_prog counter "$W"
  p=$PROG_PID
  snapshot "$p" "$E2E_TMP/snap-fault-$mode" || fail "$what: snapshot of $p"
  CF_FAULT=parasite run_cf "fault-$mode" dump -t "$p" "${args[@]}"
  CF_LOG=$E2E_TMP/fault-$mode.log
  [ "$CF_RC" = 1 ] || fail "$what: criu-fast exited $CF_RC, want 1"
  assert_cf_error "$what"
  grep -q "fault injected at parasite" "$CF_ERR" || fail "$what: the error is not the injected fault"
  grep -q "parasite: injected in $p" "$CF_LOG" || fail "$what: the parasite was never injected"
  grep -q "parasite: removed from $p" "$CF_LOG" || fail "$what: the log does not say the parasite was removed"
  assert_running_untraced "$p" "$what"
  assert_same_snapshot "$p" "$E2E_TMP/snap-fault-$mode" "$what"
  assert_cpu_advancing "$p" "$what"
  check_pass "$W"
  assert_no_inventory "$D" "$what"
  CF_LOG=
  kill_prog "$p"
done
log "PASS"
