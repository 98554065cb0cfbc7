#!/bin/bash
# Stopped processes (tests/progs/stopped.c): a child stopped by SIGSTOP, a
# child of three threads stopped by SIGTSTP; the parent checks that its
# waitid() reports each stopped by its signal, every thread is in state T,
# and SIGCONT lets every thread run again. And --leave-stopped.
#
# 1. dump -R: the children stay stopped; the check passes.
# 2. dump (kill), restore: the children come back stopped, by their signals.
# 3. dump --leave-stopped (no -R): the whole tree survives, stopped; after
#    SIGCONT to the parent the check passes.
# 4. restore --leave-stopped: the whole tree comes back stopped, untraced;
#    after SIGCONT to the parent the check passes.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog stopped "$W"
root=$PROG_PID
mapfile -t kids < <(cat /proc/"$root"/task/*/children | tr ' ' '\n' | grep .)
[ "${#kids[@]}" = 2 ] || fail "expected 2 children, found ${#kids[@]}"

# --- 1. dump -R --------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root"
for k in "${kids[@]}"; do assert_all_stopped "$k" "child after dump -R"; done
pycheck "stop signals in show" "$E2E_TMP/show.json" "${kids[@]}" <<'PY'
show = load(sys.argv[1])
sigs = sorted(int(proc(show, int(p))["core"].get("stop_signal", 0)) for p in sys.argv[2:])
if sigs != sorted([19, 20]):
    fail("stop signals %r, want SIGSTOP and SIGTSTP" % sigs)
PY
check_pass "$W"

# --- 2. dump, restore ----------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
for k in "${kids[@]}"; do assert_all_stopped "$k" "child after restore"; done
check_pass "$W"

# --- 3. dump --leave-stopped ------------------------------------------------------
run_cf dump-s dump -t "$root" -D "$E2E_TMP/img-s" --leave-stopped -v4 -o "$E2E_TMP/dump-s.log"
assert_cf_ok "dump --leave-stopped"
assert_all_stopped "$root" "parent after dump --leave-stopped"
for k in "${kids[@]}"; do assert_all_stopped "$k" "child after dump --leave-stopped"; done
kill -CONT "$root"
assert_running_untraced "$root" "parent after SIGCONT"
check_pass "$W"

# --- 4. restore --leave-stopped ----------------------------------------------------
dump_kill dump2 "$root" "$E2E_TMP/img2"
E2E_PIDS+=("$root")
run_cf restore-s restore -D "$E2E_TMP/img2" -d -s -v4 -o "$E2E_TMP/restore-s.log"
CF_LOG=$E2E_TMP/restore-s.log
assert_cf_ok "restore --leave-stopped"
assert_all_stopped "$root" "parent after restore --leave-stopped"
for k in "${kids[@]}"; do assert_all_stopped "$k" "child after restore --leave-stopped"; done
kill -CONT "$root"
assert_running_untraced "$root" "parent after SIGCONT"
check_pass "$W"
log "PASS"
