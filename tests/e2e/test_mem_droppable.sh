#!/bin/bash
# Droppable memory and memory wiped on fork (tests/progs/mem_droppable.c).
#
# 1. dump -R: the image holds no page of the droppable vma (the kernel may
#    drop them at any time: they are not saved, as with CRIU); the
#    self-check passes.
# 2. dump (kill) + restore -d: the droppable vma is droppable again and
#    empty, the vma wiped on fork keeps its bytes and its flag; a child
#    forked after the restore sees both wiped.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog mem_droppable "$W"
root=$PROG_PID

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root"
pycheck "no droppable pages in the image" "$E2E_TMP/show.json" "$root" <<'EOF2'
show = load(sys.argv[1])
p = proc(show, int(sys.argv[2]))
dp = [v for v in p["core"].get("vmas", []) if " dp" in " " + v.get("vmflags", "")]
if len(dp) != 1:
    fail("%d droppable vmas in the image, want 1" % len(dp))
start, end = u(dp[0]["start"]), u(dp[0]["end"])
n = overlap_pages(page_ranges(p["pagemap"], "DATA"), start, end)
if n:
    fail("%d pages of the droppable vma were saved" % n)
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
touch "$W/restored"
check_pass "$W"
log "PASS"
