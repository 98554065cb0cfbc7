#!/bin/bash
# Restore from damaged images fails cleanly: exit 1, one "Error:" line on
# stderr, no crash (exit code < 128), within the timeout, and no process with
# the dumped pid left (not even a zombie, 2 s later); no pid file written.
#
# A counter is dumped (killed); each damage is applied to a fresh copy of the
# image dir:
#   pages-PID.img    (a) a byte flipped in the middle; (b) truncated to half;
#                    its first record header overwritten with 0xff;
#                    its last byte flipped
#   core-PID.img     (c) a bad magic; truncated inside the file header
#   pagemap-PID.img  a byte flipped in the middle
#   inventory.img    (d) removed
# Then the intact image restores and the counter's self-check passes.
# The same for a 64 MB memmix image, its pages file damaged at 3/4 (a byte
# flipped; truncated there).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/counter
GOOD=$E2E_TMP/img-good
start_prog counter "$W"
pid=$PROG_PID
dump_kill dump "$pid" "$GOOD"
for f in inventory.img core-$pid.img pagemap-$pid.img pages-$pid.img; do
  [ -s "$GOOD/$f" ] || fail "$f missing in the dump"
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
mid() { echo $(($(size_of "$1") / 2)); }
flip_middle() { flip "$1" "$(mid "$1")"; }
flip_last() { flip "$1" "$(($(size_of "$1") - 1))"; }
truncate_half() { truncate -s "$(mid "$1")" "$1"; }
truncate_header() { truncate -s 4 "$1"; }
bad_magic() { printf X | dd of="$1" bs=1 seek=0 conv=notrunc status=none; }
bad_record_header() {
  # The first record header follows the 8-byte file header: 24 bytes of 0xff.
  python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(8); f.write(b"\xff" * 24)' "$1"
}
remove() { rm "$1"; }

# damage NAME FILE HOW: copy the good image, apply HOW to FILE in the copy,
# restore from it.
n=0
damage() {
  local name=$1 file=$2 how=$3
  local dir=$E2E_TMP/bad-$name
  local pidfile=$E2E_TMP/bad-$name.pid
  n=$((n + 1))
  rm -rf "$dir"
  cp -r "$GOOD" "$dir" || fail "copy image"
  "$how" "$dir/$file" || fail "$name: cannot damage $file"
  [ -e "$dir/$file" ] && cmp -s "$dir/$file" "$GOOD/$file" && fail "$name: $file is unchanged"
  wait_pid_free "$pid" 10
  E2E_PIDS+=("$pid")
  run_cf "restore-$name" restore -D "$dir" -d --pidfile "$pidfile" -v4 -o "$E2E_TMP/restore-$name.log"
  CF_LOG=$E2E_TMP/restore-$name.log
  assert_cf_error "$name"
  [ "$CF_RC" = 1 ] || fail "$name: restore exited $CF_RC, want 1"
  assert_pid_absent "$pid" "$name" 2
  [ -e "$pidfile" ] && fail "$name: a pid file was written"
  log "ok: $name -> $(cf_error_line)"
  CF_LOG=
}

P=pages-$pid.img
C=core-$pid.img
M=pagemap-$pid.img
damage pages-flip "$P" flip_middle
damage pages-truncated "$P" truncate_half
damage pages-header "$P" bad_record_header
damage pages-last-byte "$P" flip_last
damage core-magic "$C" bad_magic
damage core-truncated "$C" truncate_header
damage pagemap-flip "$M" flip_middle
damage no-inventory inventory.img remove

# The intact image still restores.
restore_d restore-good "$GOOD" "$pid"
check_pass "$W"
kill_prog "$pid"

# A bigger image (memmix, 64 MB: many page records, filled in parallel):
# damage late in the pages file, after many pages went in fine.
W=$E2E_TMP/memmix
GOOD=$E2E_TMP/img-memmix
start_prog memmix "$W" 64
pid=$PROG_PID
dump_kill dump-memmix "$pid" "$GOOD"
P=pages-$pid.img
three_quarters() { echo $(($(size_of "$1") * 3 / 4)); }
flip_late() { flip "$1" "$(three_quarters "$1")"; }
truncate_late() { truncate -s "$(three_quarters "$1")" "$1"; }
damage memmix-pages-flip "$P" flip_late
damage memmix-pages-truncated "$P" truncate_late
restore_d restore-memmix-good "$GOOD" "$pid"
check_pass "$W" 60
log "PASS ($n damaged images)"
