#!/bin/bash
# Restore of file mappings (private with copy-on-write pages, shared and
# written), PROT_NONE, read-only and mprotect-split anonymous regions, and libc
# used after the restore (tests/progs/mappings.c).
#
# mappings is dumped (killed) and restored with -d:
#   - /proc/PID/maps has the same lines as before the dump (in round 2 the
#     heap grown by brk after round 1 may be two VMAs before and one after:
#     adjacent VMAs equal but for the split are merged before comparing),
#   - W/maps/private.dat is byte for byte what it was (copy-on-write pages
#     must not reach the file),
#   - the self-check passes (it checks every region's data and VMA from
#     inside, writes the shared file through the mapping and the other way
#     round, mprotects the PROT_NONE region to read it), and passes again.
# Then the restored process is dumped and restored once more (its shared
# mapping now holds pages written after the first restore): same checks.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/mappings
start_prog mappings "$W"
pid=$PROG_PID
[ -s "$W/layout" ] || fail "mappings wrote no layout"
sum_before=$(md5sum <"$W/maps/private.dat") || fail "md5sum private.dat"
check_pass "$W"  # the checks work before any dump (and the heap exists now)

for round in 1 2; do
  D=$E2E_TMP/img-$round
  maps_key "$pid" "$E2E_TMP/maps-before" || fail "read /proc/$pid/maps"
  grep -q ' /.*/libc[.-]' "$E2E_TMP/maps-before" || fail "mappings is not dynamically linked against libc"
  grep -q "rw-s 00000000 $W/maps/shared.dat\$" "$E2E_TMP/maps-before" || fail "no shared mapping of shared.dat before the dump"
  dump_kill "dump-$round" "$pid" "$D"
  restore_d "restore-$round" "$D" "$pid"
  maps_key "$pid" "$E2E_TMP/maps-$round" || fail "round $round: read /proc/$pid/maps"
  if ! cmp -s "$E2E_TMP/maps-before" "$E2E_TMP/maps-$round"; then
    # Only where the kernel split VMAs may differ (see maps_merge).
    log "round $round: note: VMA boundaries differ: $(diff "$E2E_TMP/maps-before" "$E2E_TMP/maps-$round" | grep -c '^[<>]') lines"
    maps_merge "$E2E_TMP/maps-before" "$E2E_TMP/maps-before.merged"
    maps_merge "$E2E_TMP/maps-$round" "$E2E_TMP/maps-$round.merged"
    assert_same_file "$E2E_TMP/maps-before.merged" "$E2E_TMP/maps-$round.merged" \
      "round $round: /proc/$pid/maps differs after the restore (adjacent equal VMAs merged)"
  fi
  [ "$(md5sum <"$W/maps/private.dat")" = "$sum_before" ] || fail "round $round: private.dat changed by the restore"
  check_pass "$W"
  check_pass "$W"
  [ "$(md5sum <"$W/maps/private.dat")" = "$sum_before" ] || fail "round $round: private.dat changed after the restore"
  log "round $round: ok"
done
log "PASS"
