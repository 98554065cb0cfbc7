#!/bin/bash
# `show` on damaged images fails cleanly: exit 1, an "Error:" line, no crash
# (exit code < 128), within the timeout.
#
# A counter is dumped with -R; the intact image must show fine. Then each
# damage is applied to a fresh copy of the image dir, and `show` is run on the
# dir and on the damaged file:
#   pages-PID.img    a byte flipped in the middle; truncated to half;
#                    its first record header overwritten with 0xff (absurd sizes)
#   core-PID.img     a bad magic; truncated inside the file header; last byte flipped
#   pagemap-PID.img  a byte flipped in the middle
#   stats-dump.img   emptied
#   inventory.img    removed (dir only; JSON may be printed, the exit must be non-zero)
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/counter
GOOD=$E2E_TMP/img-good
start_prog counter "$W"
pid=$PROG_PID
run_cf dump dump -t "$pid" -D "$GOOD" -R
assert_cf_ok "dump -R -t $pid"
kill_prog "$pid"
for f in inventory.img core-$pid.img pagemap-$pid.img pages-$pid.img stats-dump.img; do
  [ -s "$GOOD/$f" ] || fail "$f missing in the dump"
  head -c 4 "$GOOD/$f" | grep -q '^CFST' || fail "$f does not start with the magic CFST"
done
cf_show "$GOOD" "$E2E_TMP/good.json"
for f in "$GOOD"/*.img; do
  run_cf "show-good-$(basename "$f")" show "$f"
  assert_cf_ok "show of the intact $(basename "$f")"
done

# flip FILE OFFSET: inverts one byte.
flip() {
  python3 - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
}
size_of() { stat -c %s "$1"; }

# The damages; each gets the file to change.
mid() { echo $(($(size_of "$1") / 2)); }
flip_middle() { flip "$1" "$(mid "$1")"; }
flip_last() { flip "$1" "$(($(size_of "$1") - 1))"; }
truncate_half() { truncate -s "$(mid "$1")" "$1"; }
truncate_header() { truncate -s 4 "$1"; }
empty() { truncate -s 0 "$1"; }
bad_magic() { printf X | dd of="$1" bs=1 seek=0 conv=notrunc status=none; }
bad_record_header() {
  # The first record header follows the 8-byte file header: 24 bytes of 0xff.
  python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(8); f.write(b"\xff" * 24)' "$1"
}

# damage NAME FILE HOW: copy the good image to a new dir, apply HOW to FILE in
# the copy, then `show` the dir and the file.
n=0
damage() {
  local name=$1 file=$2 how=$3
  local dir=$E2E_TMP/bad-$name
  local f=$dir/$file
  n=$((n + 1))
  rm -rf "$dir"
  cp -r "$GOOD" "$dir" || fail "copy image"
  "$how" "$f" || fail "$name: cannot damage $file"
  cmp -s "$f" "$GOOD/$file" && fail "$name: $file is unchanged"
  run_cf "show-$name-dir" show "$dir"
  assert_cf_error "$name: show DIR"
  [ "$CF_RC" = 1 ] || fail "$name: show DIR exited $CF_RC, want 1"
  run_cf "show-$name-file" show "$f"
  assert_cf_error "$name: show $file"
  [ "$CF_RC" = 1 ] || fail "$name: show $file exited $CF_RC, want 1"
  log "ok: $name -> $(cf_error_line)"
}

P=pages-$pid.img
C=core-$pid.img
M=pagemap-$pid.img
damage pages-flip "$P" flip_middle
damage pages-truncated "$P" truncate_half
damage pages-header "$P" bad_record_header
damage core-magic "$C" bad_magic
damage core-truncated "$C" truncate_header
damage core-last-byte "$C" flip_last
damage pagemap-flip "$M" flip_middle
damage stats-empty stats-dump.img empty

# inventory.img removed: the dir is not a complete image.
n=$((n + 1))
dir=$E2E_TMP/bad-no-inventory
cp -r "$GOOD" "$dir" || fail "copy image"
rm "$dir/inventory.img" || fail "rm inventory.img"
run_cf show-no-inventory show "$dir"
[ "$CF_RC" = 124 ] && fail "no inventory: show timed out"
[ "$CF_RC" -ge 128 ] && fail "no inventory: show crashed (exit code $CF_RC)"
[ "$CF_RC" != 0 ] || fail "no inventory: show exited 0 on an image without inventory.img"
grep -q '^Error: ' "$CF_ERR" || fail "no inventory: no 'Error:' line on stderr"
log "ok: no inventory -> $(cf_error_line)"
log "PASS ($n damaged images)"
