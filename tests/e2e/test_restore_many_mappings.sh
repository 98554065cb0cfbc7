#!/bin/bash
# Restore of many one-page mappings of alternating protections
# (tests/progs/scale.c "maps", 4,000 of them: read-write, read-only, ...).
# Premapped in place as one run, filled by UFFDIO_COPY, the read-only ones are
# parted from it by mprotect while criu-fast still fills the rest
# (restore/memory.h, EarlyProtect).
#
# Round 1: dump (kill), restore -d: /proc/PID/maps has the same lines as
# before, the self-check finds each page's value, and --display-stats counts
# the read-only mappings among the "vmas protected during the fill" (unless
# the huge page setting rules the fill by copy out).
# Round 2: the same with the fill by process_vm_writev only
# (CF_FILL_COPY=0): nothing is protected early, the restorer does it all.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

N=4000
W=$E2E_TMP/w
start_prog scale "$W" maps "$N"
pid=$PROG_PID
maps_key "$pid" "$E2E_TMP/maps-before" || fail "read /proc/$pid/maps"
for round in 1 2; do
  D=$E2E_TMP/img-$round
  dump_kill "dump-$round" "$pid" "$D"
  if [ "$round" = 2 ]; then export CF_FILL_COPY=0; fi
  restore_d "restore-$round" "$D" "$pid" --display-stats
  unset CF_FILL_COPY
  early=$(stat_value "$CF_OUT" "vmas protected during the fill") ||
    fail "round $round: --display-stats has no 'vmas protected during the fill'"
  if [ "$round" = 2 ]; then
    [ "$early" = 0 ] || fail "round 2: $early vmas protected during a fill without UFFDIO_COPY"
  elif grep -q '\[always\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
    log "round 1: transparent huge pages always on: no fill by copy, nothing protected early"
  else
    [ "$early" -ge $((N / 2)) ] || fail "round 1: $early vmas protected during the fill, want the $((N / 2)) read-only ones"
  fi
  maps_key "$pid" "$E2E_TMP/maps-$round" || fail "round $round: read /proc/$pid/maps"
  assert_same_file "$E2E_TMP/maps-before" "$E2E_TMP/maps-$round" "round $round: /proc/$pid/maps differs"
  check_pass "$W" 60
  rm -rf "$D"
done
log "PASS"
