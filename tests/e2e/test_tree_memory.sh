#!/bin/bash
# A tree of 4 processes x 256 MiB of private memory (tests/progs/fanout.c,
# half random, half text pages), dumped with --jobs 2 and lz4 and restored:
# every process checks the hash of its memory after the restore.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog fanout "$W" procs 4 256
root=$PROG_PID
kids=$(cat /proc/"$root"/task/*/children)
[ "$(echo $kids | wc -w)" = 3 ] || fail "expected 3 children, found: $kids"
check_pass "$W"

run_cf dump dump -t "$root" -D "$E2E_TMP/img" --jobs 2 --compress lz4 --display-stats
assert_cf_ok "dump of 4 x 256 MiB"
for p in $root $kids; do wait_gone "$p" 10; done
cf_show "$E2E_TMP/img" "$E2E_TMP/show.json"
pycheck "four processes of 256 MiB" "$E2E_TMP/show.json" $root $kids <<'EOF2'
show = load(sys.argv[1])
for pid in sys.argv[2:]:
    pm = proc(show, int(pid))["pagemap"]
    # Pages equal to one stored already (dedup) are DUP ranges.
    dup = sum(u(r.get("nr_pages")) for r in pm.get("ranges", []) if r.get("kind") == "DUP")
    data = u(pm.get("data_pages", 0)) + dup
    if data < 65536:
        fail("process %s: %d data and dup pages, want at least 65536 (256 MiB)" % (pid, data))
EOF2
restore_d restore "$E2E_TMP/img" "$root"
for p in $kids; do E2E_PIDS+=("$p"); assert_running_untraced "$p" "child after restore"; done
check_pass "$W"
log "PASS"
