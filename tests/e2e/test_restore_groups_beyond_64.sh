#!/bin/bash
# More supplementary groups than the restorer args had room for (64: the
# rest were silently dropped): tests/progs/groups_many.c calls setgroups
# with 300 gids.
#
# dump (kill), restore -d: the image holds the 300 groups, and the restored
# process has exactly them again (getgroups, /proc/PID/status), uids and
# gids unchanged.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

N=300
W=$E2E_TMP/w
start_prog groups_many "$W" "$N"
pid=$PROG_PID
check_pass "$W"
ids() { grep -E '^(Uid|Gid|Groups):' "/proc/$1/status"; }
ids "$pid" >"$E2E_TMP/ids-before" || fail "read /proc/$pid/status"

D=$E2E_TMP/img
dump_kill dump "$pid" "$D"
cf_show "$D" "$E2E_TMP/show.json"
pycheck "groups in the image" "$E2E_TMP/show.json" "$pid" "$N" <<'PY'
show, pid, n = load(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
groups = proc(show, pid)["core"]["creds"].get("groups", [])
if len(groups) != n:
    fail("%d groups in the image, want %d" % (len(groups), n))
PY
restore_d restore "$D" "$pid"
ids "$pid" >"$E2E_TMP/ids-after" || fail "read /proc/$pid/status"
assert_same_file "$E2E_TMP/ids-before" "$E2E_TMP/ids-after" "uids, gids or groups differ after the restore"
check_pass "$W"
log "PASS"
