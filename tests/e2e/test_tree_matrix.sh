#!/bin/bash
# A tree of processes (tests/progs/tree.c: 5 processes, own session, own
# group, a grandchild, each with private memory) dumped and restored with
# each drain backend, each codec, --jobs 1 and 2, to a directory and through
# a pipe (dump --stream | restore --stream). After every restore the whole
# tree checks itself; the next round dumps the restored tree.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog tree "$W" 8
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 5 ] || fail "expected 5 processes in the tree, found ${#all[@]}"
for p in "${all[@]}"; do E2E_PIDS+=("$p"); done

# drain codec jobs where
ROUNDS=(
  "read none 1 dir"
  "read zstd 2 pipe"
  "read lz4 2 dir"
  "vmsplice none 2 pipe"
  "vmsplice zstd 1 dir"
  "vmsplice lz4 2 dir"
  "read lz4 1 pipe"
)
n=0
for round in "${ROUNDS[@]}"; do
  read -r drain codec jobs where <<<"$round"
  n=$((n + 1))
  args=(--drain "$drain" --compress "$codec" --jobs "$jobs")
  if [ "$where" = dir ]; then
    dump_kill "dump$n" "$root" "$E2E_TMP/img$n" "${args[@]}"
    for p in "${all[@]}"; do wait_gone "$p" 10; done
    restore_d "restore$n" "$E2E_TMP/img$n" "$root" --jobs "$jobs"
  else
    timeout -k 5 "$CF_TIMEOUT" bash -c '"$1" dump -t "$2" --stream "${@:4}" 2>"$3/dump'$n'.err" |
      "$1" restore --stream -d 2>"$3/restore'$n'.err"; exit $((PIPESTATUS[0] * 16 + PIPESTATUS[1]))' \
      _ "$CRIU_FAST" "$root" "$E2E_TMP" "${args[@]}"
    rc=$?
    [ "$rc" = 0 ] || fail "round $n ($round): dump | restore exit codes $((rc / 16)) and $((rc % 16)): $(cat "$E2E_TMP/dump$n.err" "$E2E_TMP/restore$n.err")"
  fi
  for p in "${all[@]}"; do assert_running_untraced "$p" "round $n ($round)"; done
  check_pass "$W"
  log "ok: $round"
done
log "PASS ($n rounds)"
