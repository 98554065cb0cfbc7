#!/bin/bash
# Restore refuses a damaged stream before it creates any process.
# A tree (tests/progs/tree.c, lz4) is dumped to a stream file; each damage is
# applied to a copy, which restore --stream-from (or stdin) must refuse with
# exit 1, one "Error:" line on stderr, no crash, no pid file, every pid of the
# tree absent (not even a zombie) and no staging directory left:
#   cut-half       cut in the middle (inside a record)
#   cut-trailer    cut just before the trailer (every other record intact),
#                  also given on stdin
#   flip-chunk     one byte flipped inside the payload of a page chunk
#   flip-trailer   one byte flipped in the trailer
#   drop-chunk     one whole page chunk record left out (checksums all fine:
#                  the trailer's counts and digest catch it)
#   extra          bytes after the trailer
#   empty          an empty stream
# show of the cut-trailer stream prints JSON but says incomplete (exit 1);
# show of the flip-chunk stream is an error with nothing on stdout.
# Then the intact stream restores and the tree passes its self-check.
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
GOOD=$E2E_TMP/good.stream
run_cf dump dump -t "$root" --stream-to "$GOOD" --compress lz4
assert_cf_ok "dump --stream-to"
for p in "${all[@]}"; do wait_gone "$p" 10; done
stream_records "$GOOD" >"$E2E_TMP/records"
size=$(stat -c %s "$GOOD")
# The last record is the trailer (type 4); chunks are type 2 with a file id.
read -r trailer_off trailer_type _ <<<"$(tail -n 1 "$E2E_TMP/records")"
[ "$trailer_type" = 4 ] || fail "the last record of the stream is of type $trailer_type, not the trailer"
read -r chunk_off _ _ chunk_len <<<"$(awk '$2 == 2 && $4 > 65536' "$E2E_TMP/records" | sed -n 3p)"
[ -n "$chunk_off" ] || fail "no large page chunk in the stream"

flip() {
  python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xFF]))' "$1" "$2"
}
cut_half() { truncate -s $((size / 2)) "$1"; }
cut_trailer() { truncate -s "$trailer_off" "$1"; }
flip_chunk() { flip "$1" $((chunk_off + 24 + chunk_len / 2)); }
flip_trailer() { flip "$1" $((trailer_off + 24 + 2)); }
drop_chunk() {
  python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); a, n = int(sys.argv[2]), int(sys.argv[3]); open(sys.argv[1], "wb").write(d[:a] + d[a + 24 + n:])' \
    "$1" "$chunk_off" "$chunk_len"
}
extra() { printf 'junk' >>"$1"; }
empty() { : >"$1"; }

# refuse NAME HOW [stdin]
refuse() {
  local name=$1 how=$2 via=${3:-path} bad=$E2E_TMP/$1.stream pidfile=$E2E_TMP/$1.pid p
  cp "$GOOD" "$bad" || fail "copy"
  "$how" "$bad" || fail "$name: cannot damage the stream"
  cmp -s "$bad" "$GOOD" && fail "$name: the stream is unchanged"
  if [ "$via" = stdin ]; then
    run_cf "restore-$name" restore --stream -d --pidfile "$pidfile" -v4 -o "$E2E_TMP/restore-$name.log" <"$bad"
  else
    run_cf "restore-$name" restore --stream-from "$bad" -d --pidfile "$pidfile" -v4 -o "$E2E_TMP/restore-$name.log"
  fi
  CF_LOG=$E2E_TMP/restore-$name.log
  assert_cf_error "$name ($via)"
  [ "$CF_RC" = 1 ] || fail "$name: restore exited $CF_RC, want 1"
  for p in "${all[@]}"; do assert_pid_absent "$p" "$name" 2; done
  [ -e "$pidfile" ] && fail "$name: a pid file was written"
  grep -q "restore: waiting for pid\|premapped" "$CF_LOG" && fail "$name: restore went on to create processes"
  assert_no_new_staging "$E2E_TMP/staging.before" "$name"
  log "ok: $name ($via) -> $(cf_error_line)"
  CF_LOG=
}

E2E_PIDS+=("${all[@]}")
refuse cut-half cut_half
refuse cut-trailer cut_trailer
refuse cut-trailer-stdin cut_trailer stdin
refuse flip-chunk flip_chunk
refuse flip-trailer flip_trailer
refuse drop-chunk drop_chunk
refuse extra extra
refuse empty empty
grep -q "ended before its trailer" "$E2E_TMP/restore-cut-trailer.err" || fail "cut-trailer: unclear error"
grep -q "checksum mismatch" "$E2E_TMP/restore-flip-chunk.err" || fail "flip-chunk: unclear error"
grep -q "trailer does not match" "$E2E_TMP/restore-drop-chunk.err" || fail "drop-chunk: unclear error"

# show: an incomplete stream prints its JSON and says so; a corrupt one is an error.
run_cf show-cut show "$E2E_TMP/cut-trailer.stream"
[ "$CF_RC" = 1 ] || fail "show of a stream without trailer exited $CF_RC, want 1"
grep -q "incomplete stream" "$CF_ERR" || fail "show of a stream without trailer: no 'incomplete stream' message"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$CF_OUT" || fail "show of a cut stream: no JSON"
run_cf show-flip show --stream-from "$E2E_TMP/flip-chunk.stream"
assert_cf_error "show of a stream with a flipped byte"
[ -s "$CF_OUT" ] && fail "show of a corrupt stream printed something on stdout"
assert_no_new_staging "$E2E_TMP/staging.before" "show of damaged streams"

# The intact stream restores.
run_cf restore-good restore --stream-from "$GOOD" -d
assert_cf_ok "restore of the intact stream"
for p in "${all[@]}"; do assert_running_untraced "$p" "after the good restore"; done
check_pass "$W"
log "ok: the intact stream restores"
