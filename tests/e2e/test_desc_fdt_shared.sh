#!/bin/bash
# Descriptor tables shared with CLONE_FILES (kinds/fdtable.h,
# restore/fdtable.h; tests/progs/desc_fdt.c): a chain of three processes
# sharing main's table, one more sharing it beside them, and a grandchild
# with a copy of its own.
#
# 1. dump (kill): the image marks the three sharers (fdt_shared) and not
#    main or the copy;
# 2. restore: the self-check finds the sharing back (kcmp, and a descriptor
#    main opens is seen by every sharer and not by the copy), and the
#    descriptors each table held;
# 3. dumped and restored again, it passes again.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog desc_fdt "$W"
root=$PROG_PID
check_pass "$W"
pids=$(tree_pids "$root" | tr '\n' ' ')

dump_kill dump "$root" "$E2E_TMP/img"
cf_show "$E2E_TMP/img" "$E2E_TMP/show.json"
pycheck "shared tables in the image" "$E2E_TMP/show.json" "$root" "$(tr -dc 0-9 <"$W/pid.h")" <<'PY'
show, root, h = load(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
shared = {int(k) for k, p in show["processes"].items() if p["core"].get("fdt_shared")}
every = {int(k) for k in show["processes"]}
if len(every) != 5 or shared != every - {root, h}:
    fail("sharers %s of %s, want all but %d and %d" % (sorted(shared), sorted(every), root, h))
PY
restore_d restore "$E2E_TMP/img" "$root"
for p in $pids; do assert_running_untraced "$p" "process $p after the restore"; done
check_pass "$W"

dump_kill dump2 "$root" "$E2E_TMP/img2"
restore_d restore2 "$E2E_TMP/img2" "$root"
check_pass "$W"
log "PASS"
