# shellcheck shell=bash
# Helpers of the stream tests (tests/e2e/test_stream_*.sh), sourced after lib.sh.

# staging_dirs: the stream staging directories that exist now (restore and
# show unpack a stream into /dev/shm/criu-fast-stream-XXXXXX and remove it).
staging_dirs() { ls -d /dev/shm/criu-fast-stream-* /tmp/criu-fast-stream-* 2>/dev/null | LC_ALL=C sort; }

# assert_no_new_staging BEFORE_FILE WHAT: no staging directory appeared
# since staging_dirs was saved in BEFORE_FILE. Tests that run beside this
# one (ctest -j) stage streams too: a new directory fails only if it is
# still there after 20 s (theirs go when their restores end; one left
# behind stays).
assert_no_new_staging() {
  local now i
  for ((i = 0; i < 200; i++)); do
    now=$(staging_dirs | LC_ALL=C comm -13 "$1" -)
    [ -z "$now" ] && return 0
    sleep 0.1
  done
  fail "$2: a staging directory was left behind: $now"
}

# stream_records FILE: "offset type flags length" for every record of a stream file.
stream_records() {
  python3 - "$1" <<'PYEOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
pos = 8
while pos + 24 <= len(data):
    t, fl, ln, _ = struct.unpack_from("<IIQQ", data, pos)
    print(pos, t, fl, ln)
    pos += 24 + ln
PYEOF
}
