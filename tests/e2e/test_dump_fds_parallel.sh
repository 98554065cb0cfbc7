#!/bin/bash
# A process with hundreds of descriptors has them looked at side by side on
# the dump's workers (engine/shared_files.cc, CollectProcess: from 256 fds,
# with --jobs 2 or more), then recorded in order. The records must be those
# of a walk on one thread. The workload (scale fds N shared) is a process
# with N descriptions of one file at N offsets and a child that inherited
# them all, so every description is shared by the tree: its id, the first
# fd holding it and the kinds' tree pass depend on the order of the walk.
# Dump the same tree with --jobs 1 and --jobs 2 (-R), compare every
# descriptor record of the two images, check the child shares each of its
# parent's descriptions, then restore the --jobs 2 image and let the
# program check each descriptor's offset.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

N=600
W=$E2E_TMP/w
start_prog scale "$W" fds "$N" shared
pid=$PROG_PID
mapfile -t all < <(tree_pids "$pid")
[ "${#all[@]}" = 2 ] || fail "expected a process and its child, found ${#all[@]} processes"
child=${all[1]}
E2E_PIDS+=("$child")

for jobs in 1 2; do
  run_cf "dump-j$jobs" dump -t "$pid" -D "$E2E_TMP/j$jobs" -R --jobs "$jobs"
  assert_cf_ok "dump -R --jobs $jobs"
  assert_running_untraced "$pid" "after dump -R --jobs $jobs"
  assert_running_untraced "$child" "child after dump -R --jobs $jobs"
  cf_show "$E2E_TMP/j$jobs" "$E2E_TMP/show-j$jobs.json"
done
pycheck "the descriptor records of --jobs 1 and --jobs 2" "$E2E_TMP/show-j1.json" "$E2E_TMP/show-j2.json" \
  "$pid" "$child" "$N" <<'PY'
import json, sys
a, b, pid, child, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def fds(path, p):
    return json.load(open(path))["processes"][p]["core"]["fds"]
for p in (pid, child):
    fa, fb = fds(a, p), fds(b, p)
    if len(fa) < n:
        sys.exit(f"process {p}: the --jobs 1 image holds {len(fa)} descriptors, want at least {n}")
    if fa != fb:
        for x, y in zip(fa, fb):
            if x != y:
                sys.exit(f"process {p}: first difference: --jobs 1 {x} / --jobs 2 {y}")
        sys.exit(f"process {p}: {len(fa)} descriptors with --jobs 1, {len(fb)} with --jobs 2")
def data(p):
    return {f["fd"]: f for f in fds(b, p) if f.get("path", "").endswith("/fds.data")}
parent, kid = data(pid), data(child)
if sorted(int(f.get("pos", 0)) for f in parent.values()) != list(range(n)):
    sys.exit(f"the {n} descriptions of fds.data do not have offsets 0..{n - 1}")
if set(parent) != set(kid):
    sys.exit("the child does not hold the parent's fds.data descriptors")
for fd, f in parent.items():
    if not f.get("file_id") or f["file_id"] != kid[fd].get("file_id"):
        sys.exit(f"fd {fd}: the child's description {kid[fd].get('file_id')} is not the parent's {f.get('file_id')}")
if len({f["file_id"] for f in parent.values()}) != n:
    sys.exit(f"the parent's {n} descriptions do not have {n} ids")
PY

kill_prog "$pid"
wait_pid_free "$pid" 20
wait_pid_free "$child" 20
restore_d restore "$E2E_TMP/j2" "$pid"
check_pass "$W"
[ "$(tree_pids "$pid" | wc -l)" = 2 ] || fail "the restored tree is not a process and its child"
log "PASS: $N descriptions shared by two processes, the same records with one job and two, restored and checked"
