#!/bin/bash
# The parallel page pipeline with each codec (sched/page_pipeline.h):
# memmix (256 MB by default; MEMMIX_MB overrides) is dumped with
# --compress none, lz4 and zstd, each with --jobs 1 and --jobs 2, and
# restored after every dump (the next dump takes the restored process).
# Each round:
#   - dump (killing the target) and restore -d succeed, memmix's self-check
#     (a hash of every byte of its regions and heap) passes;
#   - the chunks of the pages file carry the codec asked for (some chunks may
#     stay raw, codec none, when they would not shrink), and inventory.img
#     names it;
#   - --display-stats reports the jobs and the compression;
#   - just before, a dump -R with the other --jobs value is taken of the same
#     (idle) process: both dumps have the same page ranges and the same chunks
#     (page counts; sizes too without compression; offsets too when both
#     have the same pages files): the pipeline's output does not depend on
#     the number of jobs, but for the number of pages files it is spread over.
# lz4 and zstd images are smaller than uncompressed ones.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

MB=${MEMMIX_MB:-256}
W=$E2E_TMP/memmix
start_prog memmix "$W" "$MB"
pid=$PROG_PID

# check_codecs TAG SHOW_JSON CODEC: the chunks and the inventory carry CODEC.
check_codecs() {
  pycheck "$1: codecs of the chunks" "$2" "$pid" "$3" <<'EOF'
show, pid, codec = load(sys.argv[1]), sys.argv[2], sys.argv[3]
inv = show["inventory"]
if inv.get("compression") != codec:
    fail("inventory compression is %r, want %r" % (inv.get("compression"), codec))
chunks = proc(show, pid)["pages"]["chunks"]
if not chunks:
    fail("no chunks")
used = {}
for c in chunks:
    used[c["codec"]] = used.get(c["codec"], 0) + 1
    if c["codec"] == "none" and c["stored_size"] != c["raw_size"]:
        fail("raw chunk at %s: stored %s != raw %s" % (c["offset"], c["stored_size"], c["raw_size"]))
    if c["codec"] != "none" and c["stored_size"] >= c["raw_size"]:
        fail("%s chunk at %s does not shrink" % (c["codec"], c["offset"]))
if set(used) - {"none", codec}:
    fail("chunk codecs %s, want %s (or none)" % (used, codec))
if codec != "none" and not used.get(codec):
    fail("no chunk compressed with %s: %s" % (codec, used))
print("  chunks: %s" % ", ".join("%d %s" % (n, k) for k, n in sorted(used.items())))
EOF
}

# same_pagemap TAG SHOW_A SHOW_B CODEC: the two dumps cut the same chunks.
same_pagemap() {
  pycheck "$1: the dumps with --jobs 1 and --jobs 2 differ" "$2" "$3" "$pid" "$4" <<'EOF'
a, b, pid, codec = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3], sys.argv[4]
pa, pb = proc(a, pid), proc(b, pid)
if pa["pagemap"]["ranges"] != pb["pagemap"]["ranges"]:
    fail("page ranges differ")
ca, cb = pa["pagemap"]["chunks"], pb["pagemap"]["chunks"]
if [c["nr_pages"] for c in ca] != [c["nr_pages"] for c in cb]:
    fail("chunks differ: %d and %d chunks" % (len(ca), len(cb)))
if codec == "none" and [c["stored_size"] for c in ca] != [c["stored_size"] for c in cb]:
    fail("uncompressed chunks differ in size")
# Where chunks lie depends on the number of pages files (several writers for
# a large process with --jobs 2: sched::WritersFor), not otherwise.
if codec == "none" and pa["pagemap"].get("extra_pages_files") == pb["pagemap"].get("extra_pages_files") and ca != cb:
    fail("uncompressed chunks differ in offset with the same pages files")
print("  same %d ranges and %d chunks with both --jobs values" % (len(pa["pagemap"]["ranges"]), len(ca)))
EOF
}

declare -A SIZE
for codec in none lz4 zstd; do
  for jobs in 1 2; do
    tag=$codec-j$jobs
    other=$((3 - jobs))
    R=$E2E_TMP/img-$tag-R
    run_cf "dumpR-$tag" dump -t "$pid" -D "$R" -R --compress "$codec" --jobs "$other"
    assert_cf_ok "$tag: dump -R --jobs $other"
    assert_running_untraced "$pid" "$tag: after dump -R"
    cf_show "$R" "$E2E_TMP/showR-$tag.json"
    rm -rf "$R"

    D=$E2E_TMP/img-$tag
    dump_kill "dump-$tag" "$pid" "$D" --compress "$codec" --jobs "$jobs" --display-stats
    grep -q "^  pages time: .*($jobs jobs)" "$CF_OUT" || fail "$tag: --display-stats does not report $jobs jobs"
    grep -q "^  compression: *$codec " "$CF_OUT" || fail "$tag: --display-stats does not report compression $codec"
    cf_show "$D" "$E2E_TMP/show-$tag.json"
    check_codecs "$tag" "$E2E_TMP/show-$tag.json" "$codec"
    same_pagemap "$tag" "$E2E_TMP/showR-$tag.json" "$E2E_TMP/show-$tag.json" "$codec"
    SIZE[$tag]=$(stat -c %s "$D/pages-$pid.img") || fail "$tag: no pages-$pid.img"
    restore_d "restore-$tag" "$D" "$pid"
    check_pass "$W" 60
    log "$tag: pages file ${SIZE[$tag]} bytes, restored, self-check PASS"
    rm -rf "$D"
  done
done

for codec in lz4 zstd; do
  [ "${SIZE[$codec-j1]}" -lt "${SIZE[none-j1]}" ] ||
    fail "$codec image (${SIZE[$codec-j1]} bytes) not smaller than the uncompressed one (${SIZE[none-j1]})"
done
log "PASS (pages file: none ${SIZE[none-j1]}, lz4 ${SIZE[lz4-j1]}, zstd ${SIZE[zstd-j1]} bytes)"
