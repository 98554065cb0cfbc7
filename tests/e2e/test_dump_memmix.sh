#!/bin/bash
# What a dump stores of anonymous memory (tests/progs/memmix.c, 512 MB by
# default; MEMMIX_MB overrides).
#
# memmix fills one mapping in thirds: random bytes, zero pages (read-only
# touched, and some written with zeros) and ASCII text; W/layout gives the
# address ranges. A dump -R --display-stats must
#   - cover every page of the random and text thirds with DATA ranges,
#   - put no page of the zero third in a DATA range (ZERO or absent),
#   - write at most random+text pages plus a slack for libc, heap and stack,
#   - report the same page count in --display-stats, the stats image and the
#     pagemap,
# and leave memmix running with every byte intact (its self-check).
# A second dump with --no-pagemap-scan (reading /proc/PID/pagemap) must find
# the same DATA pages in the memmix regions.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

MB=${MEMMIX_MB:-512}
SLACK_PAGES=2048

W=$E2E_TMP/memmix
start_prog memmix "$W" "$MB"
pid=$PROG_PID
[ -s "$W/layout" ] || fail "memmix wrote no layout"

# check_image TAG SHOW_JSON STATS_OUT: the pagemap against the layout; prints
# the number of DATA pages inside the memmix regions.
check_image() {
  pycheck "$1: pagemap vs memmix layout" "$2" "$W/layout" "$pid" "$3" "$SLACK_PAGES" "$E2E_TMP/$1.count" <<'EOF'
show, layout, pid, stats_out, slack, count_out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6]
show = load(show)
regions = {}
for line in open(layout):
    a, b, kind = line.split()
    regions[kind] = (int(a, 16), int(b, 16))
p = proc(show, pid)
pm = p["pagemap"]
data = page_ranges(pm, "DATA")
counted = 0
for kind in ("random", "text"):
    a, b = regions[kind]
    want = (b - a) // 4096
    got = overlap_pages(data, a, b)
    if got != want:
        fail("%s region %x-%x: %d of %d pages in DATA ranges" % (kind, a, b, got, want))
    counted += got
a, b = regions["zero"]
got = overlap_pages(data, a, b)
if got:
    fail("zero region %x-%x: %d pages stored as DATA (zero pages must not be stored)" % (a, b, got))

data_pages = u(pm.get("data_pages"))
if sum((e - s) // 4096 for s, e in data) != data_pages:
    fail("DATA ranges add up to %d pages, data_pages says %d" % (sum((e - s) // 4096 for s, e in data), data_pages))
if data_pages > counted + slack:
    fail("%d pages stored; memmix has %d data pages (+%d slack allowed)" % (data_pages, counted, slack))
st = show["stats"]
if u(st.get("pages_written")) != data_pages:
    fail("stats pages_written %s != data_pages %d" % (st.get("pages_written"), data_pages))

# --display-stats agrees with the stats image.
text = open(stats_out).read()
def stat(name):
    m = re.search(r"^\s*" + re.escape(name) + r":\s+([0-9]+)", text, re.M)
    if not m:
        fail("--display-stats has no '%s:' line" % name)
    return int(m.group(1))
if stat("pages written") != data_pages:
    fail("--display-stats pages written %d != data_pages %d" % (stat("pages written"), data_pages))
if stat("pages scanned") < data_pages:
    fail("pages scanned %d < pages written %d" % (stat("pages scanned"), data_pages))
if stat("bytes written") < 0:
    fail("bytes written")
open(count_out, "w").write("%d\n" % counted)
print("  %d pages written (%d in the random and text regions), zero region not stored" % (data_pages, counted))
EOF
}

# --- dump with PAGEMAP_SCAN (the default) ---------------------------------------
D1=$E2E_TMP/img-scan
run_cf dump-scan dump -t "$pid" -D "$D1" -R --display-stats
assert_cf_ok "dump -R --display-stats"
assert_running_untraced "$pid" "after dump -R"
cf_show "$D1" "$E2E_TMP/show-scan.json"
check_image scan "$E2E_TMP/show-scan.json" "$E2E_TMP/dump-scan.out"
for name in "frozen time" "total time"; do
  v=$(stat_value "$E2E_TMP/dump-scan.out" "$name") || fail "--display-stats: no '$name'"
  log "$name: $v ms"
done
check_pass "$W" 60

# --- dump reading /proc/PID/pagemap ----------------------------------------------
# The fallback reads the entries of every page of a mapping with pages in it,
# holes included (PAGEMAP_SCAN skips holes; mappings smaps shows empty are
# skipped either way). Built with AddressSanitizer (the sanitizer pass),
# memmix maps a 14 TiB shadow with a few pages in it: billions of entries,
# no use reading. That part runs in the release pass.
while read -r range _; do
  lo=$((16#${range%-*})); hi=$((16#${range#*-}))
  if [ $((hi - lo)) -gt $((1 << 40)) ]; then
    log "memmix maps $(((hi - lo) >> 30)) GiB at $range (a sanitizer's shadow): --no-pagemap-scan not run"
    log "PASS"
    exit 0
  fi
done < /proc/"$pid"/maps
D2=$E2E_TMP/img-noscan
run_cf dump-noscan dump -t "$pid" -D "$D2" -R --display-stats --no-pagemap-scan
assert_cf_ok "dump -R --no-pagemap-scan"
assert_running_untraced "$pid" "after dump -R --no-pagemap-scan"
cf_show "$D2" "$E2E_TMP/show-noscan.json"
check_image noscan "$E2E_TMP/show-noscan.json" "$E2E_TMP/dump-noscan.out"
a=$(cat "$E2E_TMP/scan.count")
b=$(cat "$E2E_TMP/noscan.count")
[ "$a" = "$b" ] || fail "memmix DATA pages: $a with PAGEMAP_SCAN, $b with --no-pagemap-scan"
check_pass "$W" 60
log "PASS"
