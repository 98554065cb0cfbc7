#!/bin/bash
# What madvise() and mlock() set on a mapping comes back after a restore
# (tests/progs/madvise.c): DONTFORK, WIPEONFORK, DONTDUMP, HUGEPAGE,
# NOHUGEPAGE, SEQUENTIAL, RANDOM, MERGEABLE and mlock, read from the VmFlags
# of /proc/PID/smaps at dump and applied to each premapped VMA at restore.
#
# dump (kill), restore -d: the self-check finds each mapping's VmFlags and
# contents as before, and a child forked after the restore does not have
# the DONTFORK mapping and sees the WIPEONFORK one zeroed. A guard region
# (MADV_GUARD_INSTALL) is saved in the pagemap and installed again: a read
# of it faults after the restore.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog madvise "$W"
pid=$PROG_PID
check_pass "$W"
D=$E2E_TMP/img
dump_kill dump "$pid" "$D"
cf_show "$D" "$E2E_TMP/show.json"
pycheck "VmFlags in the image" "$E2E_TMP/show.json" "$pid" <<'PY'
show, pid = load(sys.argv[1]), int(sys.argv[2])
flags = set()
for v in proc(show, pid)["core"]["vmas"]:
    flags.update(v.get("vmflags", "").split())
missing = {"dc", "wf", "dd", "hg", "nh", "sr", "rr", "mg", "lo"} - flags
if missing:
    fail("no VMA of the image has VmFlags %s" % sorted(missing))
PY
if "$CRIU_FAST" check --feature pagemap_scan_guard_pages >/dev/null 2>&1; then
  pycheck "a guard region in the pagemap" "$E2E_TMP/show.json" "$pid" <<'PY'
show, pid = load(sys.argv[1]), int(sys.argv[2])
guards = proc(show, pid)["pagemap"].get("guards", [])
if [int(g["nr_pages"]) for g in guards] != [1]:
    fail("guard regions in the pagemap: %s, want one of 1 page" % guards)
PY
fi
restore_d restore "$D" "$pid"
check_pass "$W"
log "PASS"
