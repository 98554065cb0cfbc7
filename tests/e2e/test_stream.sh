#!/bin/bash
# Images as one stream (tests/progs/tree.c: a tree of 5 processes with
# private memory).
#
# 1. dump --stream --compress lz4 | restore --stream -d: the tree comes back
#    through a pipe, with the same pids, and passes its self-check.
# 2. dump --stream-to FILE (the tree is killed): `show --stream-from FILE`
#    and `show --stream < FILE` print the image; then three damaged copies
#    are refused by restore --stream-from with one clear error and no
#    process created: cut in the middle, one byte flipped inside a page
#    chunk, cut just before the trailer. The intact file is then restored
#    from stdin (restore --stream -d < FILE) and passes.
# 3. dump --stream into a pipe whose reader goes away early: the dump fails
#    cleanly and the tree runs on untraced, unchanged.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog tree "$W" 16
root=$PROG_PID
mapfile -t all < <(tree_pids "$root")
[ "${#all[@]}" = 5 ] || fail "expected 5 processes in the tree, found ${#all[@]}"
for p in "${all[@]}"; do E2E_PIDS+=("$p"); done

# --- 1. through a pipe -------------------------------------------------------------
timeout -k 5 "$CF_TIMEOUT" bash -c '"$1" dump -t "$2" --stream --compress lz4 -v4 -o "$3/pipe-dump.log" |
  "$1" restore --stream -d -v4 -o "$3/pipe-restore.log"; exit $((PIPESTATUS[0] * 16 + PIPESTATUS[1]))' \
  _ "$CRIU_FAST" "$root" "$E2E_TMP" >"$E2E_TMP/pipe.out" 2>"$E2E_TMP/pipe.err"
rc=$?
[ "$rc" = 0 ] || { cat "$E2E_TMP/pipe.err" >&2; fail "dump --stream | restore --stream: exit codes $((rc / 16)) and $((rc % 16))"; }
for p in "${all[@]}"; do assert_running_untraced "$p" "after the piped restore"; done
check_pass "$W"

# --- 2. to a file; show; damaged copies --------------------------------------------------
S=$E2E_TMP/image.stream
run_cf dump-file dump -t "$root" --stream-to "$S" --compress lz4
assert_cf_ok "dump --stream-to"
for p in "${all[@]}"; do wait_gone "$p" 10; done
[ -s "$S" ] || fail "no stream file"
run_cf show-file show --stream-from "$S"
assert_cf_ok "show --stream-from"
pycheck "show of the stream" "$CF_OUT" "${all[@]}" <<'EOF2'
show = load(sys.argv[1])
want = sorted(int(p) for p in sys.argv[2:])
if sorted(show["inventory"]["pids"]) != want:
    fail("inventory pids %r, want %r" % (show["inventory"]["pids"], want))
for p in want:
    if proc(show, p)["core"]["pid"] != p:
        fail("no core for %d" % p)
EOF2
timeout -k 5 "$CF_TIMEOUT" "$CRIU_FAST" show --stream <"$S" >"$E2E_TMP/show-stdin.json" 2>"$E2E_TMP/show-stdin.err" ||
  fail "show --stream < FILE failed: $(cat "$E2E_TMP/show-stdin.err")"
cmp -s "$CF_OUT" "$E2E_TMP/show-stdin.json" || python3 -c '
import json, sys
a, b = (json.load(open(x)) for x in sys.argv[1:3])
a.pop("stream", None); b.pop("stream", None)
sys.exit(a != b)' "$CF_OUT" "$E2E_TMP/show-stdin.json" || fail "show --stream < FILE differs from show --stream-from FILE"

size=$(stat -c %s "$S")
trailer=$(python3 - "$S" <<'EOF2'
import struct, sys
data = open(sys.argv[1], "rb").read()
off = 8
while off < len(data):
    typ, flags, length, csum = struct.unpack_from("<IIQQ", data, off)
    if typ == 4:
        print(off)
        break
    off += 24 + length
EOF2
)
[ -n "$trailer" ] || fail "no trailer record found in the stream"
head -c $((size / 2)) "$S" >"$E2E_TMP/cut.stream"
head -c "$trailer" "$S" >"$E2E_TMP/notrailer.stream"
cp "$S" "$E2E_TMP/flipped.stream"
python3 - "$E2E_TMP/flipped.stream" "$((size / 2))" <<'EOF2'
import sys
path, at = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(at)
    b = f.read(1)
    f.seek(at)
    f.write(bytes([b[0] ^ 0x40]))
EOF2
for bad in cut flipped notrailer; do
  run_cf "restore-$bad" restore --stream-from "$E2E_TMP/$bad.stream" -d
  assert_cf_error "restore of a $bad stream"
  line=$(cf_error_line)
  case $bad in
    cut) grep -qiE "cut|truncat|end" <<<"$line" || fail "cut stream: unclear error: $line" ;;
    flipped) grep -qiE "checksum|corrupt" <<<"$line" || fail "flipped byte: unclear error: $line" ;;
    notrailer) grep -qiE "trailer" <<<"$line" || fail "stream without trailer: unclear error: $line" ;;
  esac
  for p in "${all[@]}"; do assert_pid_absent "$p" "after the restore of a $bad stream"; done
  log "ok: $bad -> $line"
done

timeout -k 5 "$CF_TIMEOUT" "$CRIU_FAST" restore --stream -d <"$S" >"$E2E_TMP/stdin.out" 2>"$E2E_TMP/stdin.err" ||
  fail "restore --stream -d < FILE failed: $(cat "$E2E_TMP/stdin.err")"
for p in "${all[@]}"; do assert_running_untraced "$p" "after the restore from stdin"; done
check_pass "$W"

# --- 3. the reader goes away ---------------------------------------------------------------
snapshot "$root" "$E2E_TMP/snap" || fail "snapshot"
timeout -k 5 "$CF_TIMEOUT" bash -c '"$1" dump -t "$2" --stream 2>"$3/epipe.err" | head -c 4096 >/dev/null;
  exit "${PIPESTATUS[0]}"' _ "$CRIU_FAST" "$root" "$E2E_TMP"
rc=$?
[ "$rc" != 0 ] || fail "a dump whose reader went away exited 0"
[ "$rc" -lt 124 ] || fail "the dump whose reader went away crashed or hung (exit $rc)"
grep -q '^Error: ' "$E2E_TMP/epipe.err" || fail "no Error line when the reader went away: $(cat "$E2E_TMP/epipe.err")"
for p in "${all[@]}"; do assert_running_untraced "$p" "after the dump to a closed pipe"; done
assert_same_snapshot "$root" "$E2E_TMP/snap" "after the dump to a closed pipe"
check_pass "$W"
log "PASS"
