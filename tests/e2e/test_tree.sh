#!/bin/bash
# A process tree (tests/progs/tree.c): root with a child in its own session,
# a child in its own process group, and a child with a grandchild, each with
# private memory.
#
# 1. dump -R: every process runs on untraced; the image lists all five with
#    their parent, session and group.
# 2. dump (kill): every process is gone; restore -d brings back the whole tree
#    with the same pids, parents, sessions and groups; each process checks its
#    memory, parent, session and group (SIGUSR1 through the root). criu-fast
#    restored it with its own heap in 4 KiB pages (its log says so).
# 3. the restored tree is dumped and restored again, and passes again.
# 4. dumps failing on the workers (CF_FAULT=scan, core-write) leave every
#    process running, untraced, and no complete image.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog tree "$W" 32
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 5 ] || fail "expected 5 processes in the tree, found ${#all[@]}: ${all[*]}"

# --- 1. dump -R --------------------------------------------------------------
run_cf dump-r dump -t "$root" -D "$E2E_TMP/img-r" -R
assert_cf_ok "dump -R of the tree"
for p in "${all[@]}"; do assert_running_untraced "$p" "after dump -R"; done
cf_show "$E2E_TMP/img-r" "$E2E_TMP/show.json"
pycheck "tree in show" "$E2E_TMP/show.json" "${all[@]}" <<'EOF'
show = load(sys.argv[1])
want = sorted(int(p) for p in sys.argv[2:])
inv = show["inventory"]
pids = [int(p) for p in inv["pids"]]
if sorted(pids) != want:
    fail("inventory pids %r, want %r" % (pids, want))
root = int(inv["root_pid"])
if pids[0] != root:
    fail("root %d is not first in %r" % (root, pids))
for pid in pids:
    core = proc(show, pid)["core"]
    st = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    ppid, pgid, sid = int(st[1]), int(st[2]), int(st[3])
    got = (int(core["ppid"]), int(core["pgid"]), int(core["sid"]))
    if got != (ppid, pgid, sid):
        fail("process %d: image has ppid/pgid/sid %r, /proc has %r" % (pid, got, (ppid, pgid, sid)))
EOF
check_pass "$W"

# --- 2. dump, then restore ------------------------------------------------------
run_cf dump dump -t "$root" -D "$E2E_TMP/img"
assert_cf_ok "dump of the tree"
for p in "${all[@]}"; do wait_gone "$p" 10; done
run_cf restore restore -D "$E2E_TMP/img" -d --pidfile "$E2E_TMP/pidfile" -v4 -o "$E2E_TMP/restore.log"
assert_cf_ok "restore -d of the tree"
# A tree is restored with criu-fast's heap in 4 KiB pages (engine/
# malloc_choice.h; "none" in a build without jemalloc).
thp=$(sed -n "s/.*jemalloc's huge pages: \([a-z]*\).*/\1/p" "$E2E_TMP/restore.log")
# (Not `ldd | grep -q`: under pipefail, grep leaving early may fail ldd.)
case $(ldd "$CRIU_FAST") in *libjemalloc*) ;; *) want=none ;; esac
case $thp in "${want:-default}") ;; *) fail "restore of a tree: jemalloc's huge pages '$thp', want ${want:-default}" ;; esac
[ "$(cat "$E2E_TMP/pidfile")" = "$root" ] || fail "pidfile holds $(cat "$E2E_TMP/pidfile"), want $root"
for p in "${all[@]}"; do assert_running_untraced "$p" "after restore"; done
check_pass "$W"

# --- 3. once more ------------------------------------------------------------------
run_cf dump2 dump -t "$root" -D "$E2E_TMP/img2"
assert_cf_ok "second dump of the tree"
for p in "${all[@]}"; do wait_gone "$p" 10; done
run_cf restore2 restore -D "$E2E_TMP/img2" -d
assert_cf_ok "second restore of the tree"
check_pass "$W"

# --- 4. a failure on the dump's workers -----------------------------------------
# A tree's cores, page scans and /proc properties are handled on worker
# threads beside the tracer thread (engine/dump.cc): a scan or a write that
# fails there fails the dump, and the tree runs on, as for a failure on the
# tracer thread.
for point in scan core-write; do
  CF_FAULT=$point run_cf "fault-$point" dump -t "$root" -D "$E2E_TMP/img-$point"
  [ "$CF_RC" = 1 ] || fail "CF_FAULT=$point: criu-fast exited $CF_RC, want 1"
  assert_cf_error "CF_FAULT=$point"
  grep -q "fault injected at $point" "$CF_ERR" || fail "CF_FAULT=$point: the error is '$(cf_error_line)'"
  for p in "${all[@]}"; do assert_running_untraced "$p" "after the dump that failed (CF_FAULT=$point)"; done
  check_pass "$W"
  assert_no_inventory "$E2E_TMP/img-$point" "CF_FAULT=$point"
done
log "PASS"
