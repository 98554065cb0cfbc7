#!/bin/bash
# A stream dump whose reader goes away, or that fails, leaves the tree as it was.
#   1. dump --stream | head -c 100000: the reader exits after 100 kB, the
#      dump gets EPIPE (SIGPIPE must not kill it): exit 1, one "Error:" line
#      naming the broken pipe; every process of the tree (tests/progs/tree.c)
#      runs on untraced with the same maps and descriptors, and passes its
#      self-check.
#   2. the same with a reader that exits before reading anything (the stream
#      header already fails).
#   3. dump --stream-to FILE with a fault injected while pages are written
#      (CF_FAULT=drain): exit 1, the partial FILE removed, the tree running.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init
# shellcheck source=stream_lib.sh
source "$(dirname "${E2E_LIB:-$0}")/stream_lib.sh"

W=$E2E_TMP/w
start_prog tree "$W" 16
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 5 ] || fail "expected 5 processes in the tree, found ${#all[@]}: ${all[*]}"
for p in "${all[@]}"; do snapshot "$p" "$E2E_TMP/snap.$p" || fail "snapshot $p"; done

tree_unchanged() {
  local what=$1 p
  for p in "${all[@]}"; do
    assert_running_untraced "$p" "$what"
    assert_same_snapshot "$p" "$E2E_TMP/snap.$p" "$what"
  done
  check_pass "$W"
  log "ok: $what"
}

# pipe_dump TAG READER: dump --stream into READER (a shell command); the
# exit codes of both land in $dump_rc.
pipe_dump() {
  local tag=$1 reader=$2
  CF_ERR=$E2E_TMP/$tag.err
  CF_LOG=$E2E_TMP/$tag.log
  timeout -k 5 "$CF_TIMEOUT" bash -c '
    "$1" dump -t "$2" --stream -v4 -o "$3.log" 2>"$3.err" | eval "$4"
    echo "${PIPESTATUS[0]}" >"$3.rc"' _ "$CRIU_FAST" "$root" "$E2E_TMP/$tag" "$reader"
  dump_rc=$(cat "$E2E_TMP/$tag.rc" 2>/dev/null)
  [ -n "$dump_rc" ] || fail "$tag: the pipeline did not finish"
  [ "$dump_rc" = 1 ] || fail "$tag: dump exited $dump_rc, want 1 (>= 128: killed by a signal)"
  [ "$(grep -c '^Error: ' "$CF_ERR")" = 1 ] || fail "$tag: expected one Error line"
  grep -q "broken pipe" "$CF_ERR" || fail "$tag: the error does not name the broken pipe"
}

pipe_dump reader-exits 'head -c 100000 >/dev/null'
tree_unchanged "dump --stream into a reader that exits after 100 kB"
pipe_dump reader-gone 'exec 0<&-; sleep 0.5'
tree_unchanged "dump --stream into a reader that reads nothing"

S=$E2E_TMP/out.stream
CF_FAULT=drain run_cf fault dump -t "$root" --stream-to "$S"
assert_cf_error "dump --stream-to with CF_FAULT=drain"
[ -e "$S" ] && fail "the partial stream file $S was not removed"
tree_unchanged "dump --stream-to with a fault while writing pages"
