#!/bin/bash
# Bad command lines and missing targets: criu-fast must fail cleanly, with a
# non-zero exit code below 128 (no crash) and exactly one non-empty line on
# stderr, starting with "Error:".
#
# Every dump here names a pid that does not exist, so a parser that wrongly
# accepted an option could not harm a real process.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

# A pid with no process: count down from a high number to a free one.
nopid=
for ((p = 3999999; p > 3999000; p--)); do
  if [ ! -e "/proc/$p" ]; then
    nopid=$p
    break
  fi
done
[ -n "$nopid" ] || fail "no free pid found"
D=$E2E_TMP/img

# expect_error DESCRIPTION ARGS...: criu-fast ARGS must fail cleanly.
n=0
expect_error() {
  local what=$1
  shift
  n=$((n + 1))
  run_cf "case$n" "$@"
  assert_cf_error "$what (criu-fast $*)" strict
  log "ok: $what -> $(cf_error_line)"
}

expect_error "no arguments"
expect_error "unknown command" frobnicate
expect_error "unknown long option" dump --no-such-flag -t "$nopid" -D "$D"
expect_error "unknown short option" dump -Z -t "$nopid" -D "$D"
expect_error "dump without -t" dump -D "$D"
expect_error "-t without a value" dump -D "$D" -t
expect_error "-t of a pid that does not exist" dump -t "$nopid" -D "$D"
expect_error "-t garbage" dump -t garbage -D "$D"
expect_error "-t with trailing garbage" dump -t "${nopid}x" -D "$D"
expect_error "-t negative" dump -t -5 -D "$D"
expect_error "-t zero" dump -t 0 -D "$D"
expect_error "bad verbosity" dump -t "$nopid" -D "$D" -v9
expect_error "bad --jobs" dump -t "$nopid" -D "$D" --jobs 0
expect_error "stray argument" dump -t "$nopid" -D "$D" extra
expect_error "show of a missing dir" show "$E2E_TMP/no-such-dir"
expect_error "show without a dir" show
echo "not an image" >"$E2E_TMP/not-an-image.img"
expect_error "show of a file that is no image" show "$E2E_TMP/not-an-image.img"
mkdir -p "$E2E_TMP/empty"
expect_error "show of an empty dir" show "$E2E_TMP/empty"

assert_no_inventory "$D" "dump of a missing pid"
log "PASS ($n cases)"
