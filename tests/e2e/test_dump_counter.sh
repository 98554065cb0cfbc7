#!/bin/bash
# Dump of one busy single-threaded process (tests/progs/counter.c).
#
# 1. Default dump: exit 0, the target is killed, the image is complete, and
#    `show` agrees with the target: its VMA list is /proc/PID/maps as captured
#    right before the dump (start, end, prot, shared/private, offset, path),
#    the pagemap's DATA ranges add up to data_pages > 0, lie inside VMAs, and
#    the stats' pages_written equals data_pages.
# 2. Dump with -R: exit 0, the target runs on untraced and untouched (same maps
#    and descriptors), keeps counting, and its self-check passes.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

# --- 1. default dump: the target is killed ----------------------------------------
W=$E2E_TMP/kill
D=$E2E_TMP/img-kill
start_prog counter "$W"
pid=$PROG_PID
assert_cpu_advancing "$pid" "before the dump"
cat "/proc/$pid/maps" >"$E2E_TMP/maps-before" || fail "read maps"

run_cf dump-kill dump -t "$pid" -D "$D" -v4 -o dump.log
assert_cf_ok "dump -t $pid"
wait_gone "$pid" 10
[ -s "$D/inventory.img" ] || fail "no inventory.img after a successful dump"
for f in core-$pid.img pagemap-$pid.img pages-$pid.img stats-dump.img; do
  [ -s "$D/$f" ] || fail "$f missing or empty in $D"
done
[ -s "$D/dump.log" ] || fail "-o dump.log: no log written in the images dir"

cf_show "$D" "$E2E_TMP/show-kill.json"
pycheck "show vs /proc/$pid/maps" "$E2E_TMP/show-kill.json" "$E2E_TMP/maps-before" "$pid" <<'EOF'
show, maps_path, pid = load(sys.argv[1]), sys.argv[2], int(sys.argv[3])

inv = show.get("inventory") or fail("no inventory in show output")
if int(inv.get("root_pid", 0)) != pid:
    fail("inventory root_pid %r, want %d" % (inv.get("root_pid"), pid))
if [int(p) for p in inv.get("pids", [])] != [pid]:
    fail("inventory pids %r, want [%d]" % (inv.get("pids"), pid))
if inv.get("leave_running"):
    fail("inventory says leave_running for a dump without -R")

p = proc(show, pid)
core = p["core"]
if int(core.get("pid", 0)) != pid:
    fail("core pid %r" % core.get("pid"))
threads = core.get("threads", [])
if len(threads) != 1 or int(threads[0].get("tid", 0)) != pid:
    fail("threads %r, want one thread %d" % ([t.get("tid") for t in threads], pid))

# /proc/PID/maps -> (start, end, prot, shared, offset, path)
want = []
for line in open(maps_path):
    f = line.split(None, 5)
    a, b = (int(x, 16) for x in f[0].split("-"))
    perms = f[1]
    prot = (1 if perms[0] == "r" else 0) | (2 if perms[1] == "w" else 0) | (4 if perms[2] == "x" else 0)
    path = f[5].strip() if len(f) > 5 else ""
    want.append(dict(start=a, end=b, prot=prot, shared=perms[3] == "s", off=int(f[2], 16), path=path))

special = {"[vdso]": "VDSO", "[vvar]": "VVAR", "[vvar_vclock]": "VVAR_VCLOCK", "[vsyscall]": "VSYSCALL"}
got = core.get("vmas", [])
# [vsyscall] may or may not be dumped.
if not any(v.get("kind") == "VSYSCALL" for v in got):
    want = [w for w in want if w["path"] != "[vsyscall]"]
if len(got) != len(want):
    fail("show has %d VMAs, /proc/%d/maps had %d:\n  show: %s\n  maps: %s" % (
        len(got), pid, len(want),
        ["%x-%x %s" % (u(v["start"]), u(v["end"]), v.get("path", "")) for v in got],
        ["%x-%x %s" % (w["start"], w["end"], w["path"]) for w in want]))
for v, w in zip(got, want):
    where = "VMA %x-%x (%s)" % (w["start"], w["end"], w["path"] or "anon")
    if (u(v["start"]), u(v["end"])) != (w["start"], w["end"]):
        fail("%s: show has %x-%x" % (where, u(v["start"]), u(v["end"])))
    if int(v["prot"]) != w["prot"]:
        fail("%s: prot %s, want %d" % (where, v["prot"], w["prot"]))
    flags = int(v["flags"])
    if bool(flags & 1) != w["shared"] or bool(flags & 2) == w["shared"]:
        fail("%s: flags %#x do not say %s" % (where, flags, "MAP_SHARED" if w["shared"] else "MAP_PRIVATE"))
    kind = v.get("kind")
    if w["path"] in special:
        if kind != special[w["path"]]:
            fail("%s: kind %s, want %s" % (where, kind, special[w["path"]]))
        if v.get("path", "") not in ("", w["path"]):
            fail("%s: path %r" % (where, v.get("path")))
    else:
        if v.get("path", "") != w["path"]:
            fail("%s: path %r, want %r" % (where, v.get("path"), w["path"]))
        if w["path"].startswith("/"):
            want_kind = "FILE_SHARED" if w["shared"] else "FILE_PRIVATE"
            if u(v["pgoff"]) != w["off"]:
                fail("%s: pgoff %s, want %d" % (where, v["pgoff"], w["off"]))
        else:
            want_kind = "ANON_SHARED" if w["shared"] else "ANON_PRIVATE"
        if kind != want_kind:
            fail("%s: kind %s, want %s" % (where, kind, want_kind))
    if v.get("deleted"):
        fail("%s: marked deleted" % where)

# The pagemap: sorted, disjoint ranges inside VMAs; DATA pages add up.
pm = p["pagemap"]
data_pages = u(pm.get("data_pages"))
if data_pages <= 0:
    fail("pagemap data_pages %r, want > 0" % pm.get("data_pages"))
ranges = pm.get("ranges", [])
total, prev_end = 0, 0
spans = []  # the VMAs, adjacent ones merged: a range may cross a VMA boundary
for w in want:
    if spans and spans[-1][1] == w["start"]:
        spans[-1][1] = w["end"]
    else:
        spans.append([w["start"], w["end"]])
for r in ranges:
    a, n = u(r["vaddr"]), u(r["nr_pages"])
    b = a + 4096 * n
    if n <= 0 or a % 4096 or a < prev_end:
        fail("pagemap range %x+%d pages: empty, unaligned, unsorted or overlapping" % (a, n))
    if not any(va <= a and b <= vb for va, vb in spans):
        fail("pagemap range %x-%x lies outside every VMA" % (a, b))
    if r.get("kind", "DATA") == "DATA":
        total += n
    prev_end = b
if total != data_pages:
    fail("DATA ranges hold %d pages, data_pages says %d" % (total, data_pages))

pages = p.get("pages", {})
if pages and u(pages.get("raw_bytes")) != data_pages * 4096:
    fail("pages raw_bytes %r, want %d" % (pages.get("raw_bytes"), data_pages * 4096))
raw = sum(u(c.get("raw_size")) for c in pages.get("chunks", []))
if pages.get("chunks") is not None and raw != data_pages * 4096:
    fail("chunks hold %d raw bytes, want %d" % (raw, data_pages * 4096))

st = show.get("stats") or fail("no stats in show output")
if u(st.get("pages_written")) != data_pages:
    fail("stats pages_written %r != pagemap data_pages %d" % (st.get("pages_written"), data_pages))
print("  %d VMAs match /proc/%d/maps; %d data pages" % (len(got), pid, data_pages))
EOF

# --- 2. dump -R: the target runs on -----------------------------------------------
W=$E2E_TMP/keep
D=$E2E_TMP/img-keep
start_prog counter "$W"
pid=$PROG_PID
snapshot "$pid" "$E2E_TMP/snap-keep" || fail "snapshot of $pid"

run_cf dump-keep dump -t "$pid" -D "$D" -R --display-stats
assert_cf_ok "dump -R -t $pid"
[ -s "$D/inventory.img" ] || fail "no inventory.img after dump -R"
assert_running_untraced "$pid" "after dump -R"
assert_same_snapshot "$pid" "$E2E_TMP/snap-keep" "after dump -R"
assert_cpu_advancing "$pid" "after dump -R"
check_pass "$W"
for name in "frozen time" "total time" "pages scanned" "pages written" "bytes written"; do
  stat_value "$CF_OUT" "$name" >/dev/null || fail "--display-stats: no '$name' line"
done
cf_show "$D" "$E2E_TMP/show-keep.json"
pycheck "dump -R image" "$E2E_TMP/show-keep.json" "$pid" <<'EOF'
show, pid = load(sys.argv[1]), int(sys.argv[2])
if not show["inventory"].get("leave_running"):
    fail("inventory leave_running is not set for a dump with -R")
pm = proc(show, pid)["pagemap"]
if u(pm.get("data_pages")) <= 0:
    fail("no data pages")
EOF
# The program can be checked again: it really goes on.
check_pass "$W"
log "PASS"
