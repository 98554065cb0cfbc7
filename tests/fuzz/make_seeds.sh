#!/usr/bin/env bash
# Seed corpora for the fuzz harnesses, made from real images.
#
#   tests/fuzz/make_seeds.sh [BUILD_DIR] [SEED_DIR]
#
# BUILD_DIR (default build) holds a release build of criu-fast and the test
# programs (tests/progs); SEED_DIR (default build-fuzz/seeds) gets one folder
# per harness (fuzz_image_file, fuzz_show...). The script starts the
# `counter` test program detached (as tests/e2e/lib.sh does), dumps it with
# -R five times (to a directory with no compression, lz4 and zstd; as a
# stream with none and zstd), kills it, and splits the images into seeds:
# whole image files, whole streams, streams without their page chunks (small
# inputs fuzz faster; the harnesses fix checksums and the trailer), chunk
# payloads for the codec harness and message payloads for the message one.
# Needs root (ptrace); without it, it says so and exits 0 leaving no seeds:
# the harnesses also run from an empty corpus.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
seeds=${2:-build-fuzz/seeds}
cf=$build/criu-fast
prog=$build/progs/counter

if [ "$(id -u)" != 0 ]; then
  echo "make_seeds: not root: no seeds (the harnesses start from an empty corpus)" >&2
  exit 0
fi
if [ ! -x "$cf" ] || [ ! -x "$prog" ]; then
  echo "make_seeds: build $cf and $prog first" >&2
  exit 1
fi

work=$(mktemp -d /tmp/cf-fuzz-seeds.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/w"
setsid -f "$prog" "$work/w" </dev/null >/dev/null 2>&1
for _ in $(seq 100); do [ -s "$work/w/ready" ] && break; sleep 0.1; done
pid=$(tr -dc '0-9' <"$work/w/ready")
[ -n "$pid" ] || { echo "make_seeds: counter did not start" >&2; exit 1; }

for c in none lz4 zstd; do
  "$cf" dump -t "$pid" -R -D "$work/dir-$c" --compress "$c" -o "$work/log-$c" -v0
done
for c in none zstd; do
  "$cf" dump -t "$pid" -R --stream-to "$work/stream-$c.cfs" --compress "$c" -o "$work/log-s-$c" -v0
done
kill -9 "$pid"
pid=

rm -rf "$seeds"
python3 - "$work" "$seeds" <<'PY'
import glob, os, struct, sys

work, seeds = sys.argv[1], sys.argv[2]
MAX = 1 << 20  # seeds over 1 MiB only slow the fuzzers down
H = struct.Struct("<IIQQ")  # RecordHeader: type, flags, length, checksum
KINDS = {1: 0, 2: 1, 3: 2, 6: 3}  # file kind -> fuzz_messages selector


def put(harness, name, data):
    if len(data) > MAX:
        return
    d = os.path.join(seeds, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def records(data):
    pos = 8
    while pos + H.size <= len(data):
        t, fl, ln, _ = H.unpack_from(data, pos)
        yield pos, t, fl, data[pos + H.size:pos + H.size + ln]
        pos += H.size + ln


n = 0
for path in sorted(glob.glob(work + "/dir-*/*.img")):
    data = open(path, "rb").read()
    tag = os.path.basename(os.path.dirname(path)) + "-" + os.path.basename(path)
    kind = struct.unpack_from("<H", data, 6)[0]
    put("fuzz_image_file", tag, data)
    put("fuzz_show", tag, data)
    for pos, t, fl, payload in records(data):
        if t == 1 and kind in KINDS:
            put("fuzz_messages", "%s-%d" % (tag, pos), bytes([KINDS[kind]]) + payload)
        if t == 2 and n < 64:
            put("fuzz_codec", "%s-%d" % (tag, pos), payload)
            n += 1
for path in sorted(glob.glob(work + "/stream-*.cfs")):
    data = open(path, "rb").read()
    tag = os.path.basename(path)
    small = bytearray(data[:8])
    for pos, t, fl, payload in records(data):
        if t == 3:
            put("fuzz_messages", "%s-%d" % (tag, pos), bytes([4]) + payload)
        if t == 4:
            put("fuzz_messages", "%s-%d" % (tag, pos), bytes([5]) + payload)
        if t != 2:
            small += data[pos:pos + H.size + len(payload)]
    for h in ("fuzz_stream", "fuzz_restore_images", "fuzz_show"):
        put(h, tag, data)
        put(h, "nochunks-" + tag, bytes(small))
for h in sorted(os.listdir(seeds)):
    files = os.listdir(os.path.join(seeds, h))
    size = sum(os.path.getsize(os.path.join(seeds, h, f)) for f in files)
    print("make_seeds: %-20s %3d seeds, %7d bytes" % (h, len(files), size))
PY
