#!/bin/bash
# Restore where the restoring process's vDSO block lies under the image's
# memory (tests/progs/vdso_moved.c). Without address randomization
# (setarch -R, for the program and for criu-fast) the block of criu-fast's
# new process has a known place, B (the one `setarch -R cat` shows). The
# program moves its own block and maps a pattern so that, on restore, the
# restorer must move the new process's block out of the way before it moves
# the image's memory in (once it did it the other way round: the move of
# the pattern unmapped the block, and the restore failed with "the vDSO is
# not at its dumped address"; seen at random in CI).
#
# Round 1: the program's block starts at B too; it moves it to a free place
# about 1 GiB lower (the kernel's pick: a sanitizer build has more below B)
# and maps the pattern over B.
# Round 2: the program runs with a 1 GiB stack limit (its libraries lie
# ~900 MiB lower, B is free in it); it puts its block half a block below B
# and the pattern over the rest of B: the block's two places overlap on
# restore, and the restorer's mremap (which refuses overlapping moves)
# stops in the restore region on its way.
# Each round: dump (killed), restore -d; the program checks that its [vdso]
# is where it moved it (with an ELF header) and its pattern intact, and
# /proc/PID/maps is the same as before the dump.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

command -v setarch >/dev/null || skip "no setarch (util-linux) to turn address randomization off"
setarch -R true 2>/dev/null || skip "setarch -R refused here (personality)"

block=$(setarch -R cat /proc/self/maps | awk '/\[vvar\]|\[vvar_vclock\]|\[vdso\]/ {
  split($1, r, "-"); if (lo == "" || r[1] < lo) lo = r[1]; if (r[2] > hi) hi = r[2] } END { print lo, hi }')
read -r lo hi <<<"$block"
[ -n "$lo" ] && [ -n "$hi" ] || skip "no vDSO block in a process here"
B=$((16#$lo))
len=$((16#$hi - B))
half=$(((len / 2) & ~4095))
[ "$half" -gt 0 ] || skip "a vDSO block of one page: no half to overlap"

run_round() {
  local tag=$1 wrap=$2 vdso_at=$3 pattern_at=$4 pages=$5 pid D
  local W=$E2E_TMP/w-$tag
  PROG_WRAP=$wrap start_prog vdso_moved "$W" "$(printf %x "$vdso_at")" "$(printf %x "$pattern_at")" "$pages"
  pid=$PROG_PID
  check_pass "$W" 20
  maps_key "$pid" "$E2E_TMP/maps-before-$tag" || fail "read /proc/$pid/maps"
  D=$E2E_TMP/img-$tag
  dump_kill "dump-$tag" "$pid" "$D"
  wait_pid_free "$pid"
  CF_WRAP="setarch -R" restore_d "restore-$tag" "$D" "$pid"
  maps_key "$pid" "$E2E_TMP/maps-after-$tag" || fail "read /proc/$pid/maps"
  assert_same_file "$E2E_TMP/maps-before-$tag" "$E2E_TMP/maps-after-$tag" "$tag: /proc/$pid/maps differs"
  check_pass "$W" 20
  kill_prog "$pid"
  log "$tag: restored, the vDSO block back where the program had moved it"
}

run_round apart "setarch -R" 0 "$B" $((len / 4096))
run_round overlapping "prlimit --stack=1073741824 setarch -R" $((B - half)) $((B - half + len)) $((half / 4096))
log "PASS"
