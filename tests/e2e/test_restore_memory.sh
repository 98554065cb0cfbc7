#!/bin/bash
# Restore of a large address space (tests/progs/memmix.c, 1024 MB by default:
# random, zero and text thirds plus a heap list), twice in a row.
#
# Round 1: memmix is dumped (killed) and restored with -d; it runs with its pid
# and the same /proc/PID/maps lines, and its self-check (a hash of every region
# and the heap list) passes.
# Round 2: the restored process is dumped again (killed) and restored again
# from the new image; same checks. --display-stats must report the pages
# restored (the image's data pages, so > 0).
# Round 1 fills the mapping's pages by UFFDIO_COPY (restore/memory.h,
# RegisterCopyFill) where the huge page setting allows it, round 2 with
# process_vm_writev only (CF_FILL_COPY=0); in neither does a restored VMA
# keep a userfaultfd registration (VmFlags "um").
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

MB=${MEMMIX_MB:-1024}
W=$E2E_TMP/memmix
start_prog memmix "$W" "$MB"
pid=$PROG_PID
maps_key "$pid" "$E2E_TMP/maps-before" || fail "read /proc/$pid/maps"
fd_list "$pid" "$E2E_TMP/fds-before" || fail "read /proc/$pid/fd"

for round in 1 2; do
  D=$E2E_TMP/img-$round
  t0=$(date +%s.%N)
  dump_kill "dump-$round" "$pid" "$D"
  t1=$(date +%s.%N)
  if [ "$round" = 2 ]; then export CF_FILL_COPY=0; fi
  restore_d "restore-$round" "$D" "$pid" --display-stats
  t2=$(date +%s.%N)
  unset CF_FILL_COPY
  pages=$(stat_value "$CF_OUT" "pages restored") || fail "round $round: --display-stats has no 'pages restored'"
  [ "$pages" -gt $((MB * 256 / 2)) ] ||
    fail "round $round: $pages pages restored, want more than half of the $MB MB (random and text thirds)"
  copied=$(stat_value "$CF_OUT" "pages copied in") || fail "round $round: --display-stats has no 'pages copied in'"
  if [ "$round" = 2 ]; then
    [ "$copied" = 0 ] || fail "round 2: $copied pages copied in with CF_FILL_COPY=0"
  elif grep -q '\[always\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
    log "round 1: transparent huge pages always on: the fill writes (a copy would map small pages)"
  else
    [ "$copied" -gt $((MB * 256 / 2)) ] || fail "round 1: $copied pages copied in, want the random and text thirds"
  fi
  # (grep -w, not -q: under pipefail, a second grep leaving early may fail
  # the first and hide the match.)
  if grep '^VmFlags:' "/proc/$pid/smaps" | grep -w um >/dev/null; then
    fail "round $round: a restored vma is still registered with a userfaultfd (VmFlags um)"
  fi
  maps_key "$pid" "$E2E_TMP/maps-$round" || fail "round $round: read /proc/$pid/maps"
  assert_same_file "$E2E_TMP/maps-before" "$E2E_TMP/maps-$round" "round $round: /proc/$pid/maps differs"
  fd_list "$pid" "$E2E_TMP/fds-$round" || fail "round $round: read /proc/$pid/fd"
  assert_same_file "$E2E_TMP/fds-before" "$E2E_TMP/fds-$round" "round $round: descriptors differ"
  check_pass "$W" 60
  log "round $round: dump $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s, restore $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }') s, $pages pages"
  # The first image is not needed any more: keep the disk use at one image.
  [ "$round" = 1 ] && rm -rf "$D"
done
log "PASS"
