#!/bin/bash
# AIO rings (tests/progs/mem_aio.c): one whose tail has wrapped round behind
# its head with 20 completed events not yet reaped, one with 7 events
# pending and its tail ahead of its head, and an empty one.
#
# 1. dump -R: the image has the three rings with their size, head and tail;
#    the self-check passes.
# 2. dump (kill) + restore -d: each ring is at its old address (its context
#    id), the kernel's tail and the head are where they were, the pending
#    events come back in order; the self-check passes twice (it reaps and
#    submits, so the second one checks rings the restored kernel moved on).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog mem_aio "$W"
root=$PROG_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root"
pycheck "AIO rings in the image" "$E2E_TMP/show.json" "$root" <<'EOF2'
show = load(sys.argv[1])
pc = proc(show, int(sys.argv[2]))["core"]
rings = sorted((v for v in pc.get("vmas", []) if "aio" in v), key=lambda v: -u(v["aio"]["nr"]))
if len(rings) != 3:
    fail("%d AIO rings in the image, want 3" % len(rings))
big = rings[0]["aio"]
nr = u(big["nr"])
if u(big.get("tail", 0)) != 10 or u(big.get("head", 0)) != nr - 10:
    fail("big ring: head %r tail %r (nr %d), want %d and 10" % (big.get("head"), big.get("tail"), nr, nr - 10))
rest = sorted((u(r["aio"].get("head", 0)), u(r["aio"].get("tail", 0))) for r in rings[1:])
if rest != [(0, 0), (5, 12)]:
    fail("the other rings' head and tail: %r, want (0, 0) and (5, 12)" % rest)
for v in rings:
    if v.get("ghost"):
        fail("an AIO ring was saved as a deleted file")
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
[ "$(grep -c '/\[aio\] (deleted)' "/proc/$root/maps")" = 3 ] || fail "the restored process does not have 3 AIO rings"
check_pass "$W"
check_pass "$W"
log "PASS"
