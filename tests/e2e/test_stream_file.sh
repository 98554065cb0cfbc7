#!/bin/bash
# A stream saved to a file and restored later, several ways:
#   1. dump --stream-to FILE (tree.c, zstd); show FILE (found to be a stream
#      by its header), show --stream < FILE and show --stream-from FILE print
#      the same JSON as for a directory: "stream" in place of "dir", the
#      inventory with every pid (root first), each process's core, pagemap and
#      pages (chunks summing to the pagemap's data pages), and stats;
#   2. restore --stream-from FILE -d: the tree passes its self-check;
#   3. dump --stream > FILE (stdout), restore --stream -d < FILE: passes again;
#   4. through a FIFO: restore --stream-from FIFO waits for dump --stream-to
#      FIFO; passes again.
# No staging directory is left behind.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init
# shellcheck source=stream_lib.sh
source "$(dirname "${E2E_LIB:-$0}")/stream_lib.sh"

W=$E2E_TMP/w
start_prog tree "$W" 8
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 5 ] || fail "expected 5 processes in the tree, found ${#all[@]}: ${all[*]}"
staging_dirs >"$E2E_TMP/staging.before"
E2E_PIDS+=("${all[@]}")
S=$E2E_TMP/tree.stream

wait_all_gone() { local p; for p in "${all[@]}"; do wait_gone "$p" 10; done; }
restored_ok() {
  local what=$1 p
  for p in "${all[@]}"; do assert_running_untraced "$p" "$what"; done
  check_pass "$W"
  log "ok: $what"
}

# --- 1. dump to a file, show it three ways -------------------------------------
run_cf dump1 dump -t "$root" --stream-to "$S" --compress zstd
assert_cf_ok "dump --stream-to $S"
[ -s "$CF_OUT" ] && fail "dump --stream-to wrote to stdout"
wait_all_gone
cf_show "$S" "$E2E_TMP/show-file.json"
run_cf show-stdin show --stream <"$S"
assert_cf_ok "show --stream < $S"
cp "$CF_OUT" "$E2E_TMP/show-stdin.json"
run_cf show-from show --stream-from "$S"
assert_cf_ok "show --stream-from $S"
cp "$CF_OUT" "$E2E_TMP/show-from.json"
pycheck "show of a stream" "$E2E_TMP/show-file.json" "$E2E_TMP/show-stdin.json" "$E2E_TMP/show-from.json" \
  "$S" "${all[@]}" <<'PYEOF'
a, b, c = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
path, want = sys.argv[4], [int(p) for p in sys.argv[5:]]
if a.get("stream") != path or c.get("stream") != path or b.get("stream") != "-":
    fail("stream names: %r %r %r" % (a.get("stream"), b.get("stream"), c.get("stream")))
for o in (b, c):
    o["stream"] = a["stream"]
if not (a == b == c):
    fail("show FILE, show --stream and show --stream-from differ")
if set(a) != {"stream", "inventory", "stats", "chain", "processes", "ghosts", "shmem"}:
    fail("keys %r" % sorted(a))
inv = a["inventory"]
pids = [int(p) for p in inv["pids"]]
if pids[0] != want[0] or sorted(pids) != sorted(want):
    fail("inventory pids %r, want %r (root first)" % (pids, want))
if inv["compression"] != "zstd":
    fail("compression %r" % inv["compression"])
if a["stats"] is None or int(a["stats"]["processes"]) != 5:
    fail("stats %r" % a["stats"])
for pid in want:
    p = proc(a, pid)
    if p["core"] is None or p["pagemap"] is None or p["pages"] is None:
        fail("process %d: a file is missing: %r" % (pid, {k: v is None for k, v in p.items()}))
    pages = sum(int(ch["raw_size"]) for ch in p["pages"]["chunks"]) // 4096
    if pages != u(p["pagemap"]["data_pages"]) or pages < 8 * 256:
        fail("process %d: %d pages in chunks, pagemap says %s" % (pid, pages, p["pagemap"]["data_pages"]))
    if not any(ch["codec"] == "zstd" for ch in p["pages"]["chunks"]):
        fail("process %d: no zstd chunk" % pid)
PYEOF
log "ok: show of the stream file"

# --- 2. restore --stream-from FILE --------------------------------------------------
run_cf restore1 restore --stream-from "$S" -d --pidfile "$E2E_TMP/pid1"
assert_cf_ok "restore --stream-from $S"
[ "$(cat "$E2E_TMP/pid1")" = "$root" ] || fail "pidfile holds '$(cat "$E2E_TMP/pid1")'"
restored_ok "restore --stream-from a file"

# --- 3. dump --stream > FILE, restore --stream < FILE ------------------------------------
timeout -k 5 "$CF_TIMEOUT" "$CRIU_FAST" dump -t "$root" --stream >"$S.2" 2>"$E2E_TMP/dump2.err" ||
  { CF_ERR=$E2E_TMP/dump2.err; fail "dump --stream > file"; }
wait_all_gone
run_cf restore2 restore --stream -d <"$S.2"
assert_cf_ok "restore --stream < file"
restored_ok "dump --stream > file; restore --stream < file"

# --- 4. through a FIFO ---------------------------------------------------------------
mkfifo "$E2E_TMP/fifo" || fail "mkfifo"
timeout -k 5 "$CF_TIMEOUT" "$CRIU_FAST" restore --stream-from "$E2E_TMP/fifo" -d -v4 -o "$E2E_TMP/restore3.log" \
  2>"$E2E_TMP/restore3.err" &
rpid=$!
run_cf dump3 dump -t "$root" --stream-to "$E2E_TMP/fifo" --compress lz4
assert_cf_ok "dump --stream-to FIFO"
wait "$rpid" || { CF_ERR=$E2E_TMP/restore3.err; CF_LOG=$E2E_TMP/restore3.log; fail "restore --stream-from FIFO"; }
restored_ok "dump --stream-to FIFO | restore --stream-from FIFO"

assert_no_new_staging "$E2E_TMP/staging.before" "restores and shows of streams"
