#!/bin/bash
# Descriptors, cwd, umask, signal handlers, blocked signals and an itimer in a
# dump (tests/progs/files_sig.c).
#
# files_sig writes W/expect with what it set up; after a dump -R, `show` must
# report for each descriptor its path, offset, open flags (O_APPEND, access
# mode...), close-on-exec flag and type; the unlinked file as deleted with its
# contents in a ghost image; the cwd; the sigactions (SIGUSR2 SA_SIGINFO|
# SA_RESTART with its mask, SIGHUP ignored, SIGTERM a handler without flags);
# the thread's blocked mask with SIGINT; umask 027; ITIMER_REAL every 1000 s.
# Then the program's self-check (offsets, flags, handlers, mask, cwd, umask,
# timer, file contents) must pass.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/files
D=$E2E_TMP/img
start_prog files_sig "$W"
pid=$PROG_PID
[ -s "$W/expect" ] || fail "files_sig wrote no expect file"
snapshot "$pid" "$E2E_TMP/snap" || fail "snapshot of $pid"

run_cf dump dump -t "$pid" -D "$D" -R
assert_cf_ok "dump -R -t $pid"
assert_running_untraced "$pid" "after dump -R"
assert_same_snapshot "$pid" "$E2E_TMP/snap" "after dump -R"
cf_show "$D" "$E2E_TMP/show.json"

pycheck "show vs files_sig's expect" "$E2E_TMP/show.json" "$W/expect" "$pid" "$D" <<'EOF'
show, expect, pid, img_dir = load(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
core = proc(show, pid)["core"]

O_ACCMODE, O_APPEND, O_LARGEFILE = 0o3, 0o2000, 0o100000
SA_SIGINFO, SA_RESTART, SA_RESTORER = 0x4, 0x10000000, 0x04000000
SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGUSR2 = 1, 2, 3, 13, 15, 12
bit = lambda sig: 1 << (sig - 1)

fds = {int(f["fd"]): f for f in core.get("fds", [])}
exp_fds, sigs = {}, {}
for line in open(expect):
    k, _, rest = line.rstrip("\n").partition(" ")
    if k == "fd":
        n, typ, pos, flags, cloexec, deleted, size, path = rest.split(" ", 7)
        exp_fds[int(n)] = dict(type=typ, pos=int(pos), flags=int(flags), cloexec=cloexec == "1",
                               deleted=deleted == "1", size=int(size), path=path)
    elif k == "dup":
        dup = [int(x) for x in rest.split()]
    elif k == "cwd":
        cwd = rest
    elif k == "umask":
        umask = int(rest)
    elif k == "sig":
        signo, handler, flags, mask = rest.split()
        sigs[int(signo)] = dict(handler=handler, flags=int(flags), mask=int(mask))
    elif k == "blocked":
        blocked = int(rest)
    elif k == "itimer":
        it_which, it_sec, it_usec = (int(x) for x in rest.split())

# --- descriptors
for n, e in sorted(exp_fds.items()):
    f = fds.get(n) or fail("fd %d (%s) missing in show (has %s)" % (n, e["path"], sorted(fds)))
    where = "fd %d (%s)" % (n, e["path"])
    if fd_kind(f) != e["type"].lower():
        fail("%s: type %s, want %s" % (where, fd_kind(f), e["type"]))
    path = f.get("path", "")
    if path != e["path"] and not (e["deleted"] and path == e["path"] + " (deleted)"):
        fail("%s: path %r" % (where, path))
    flags = int(f.get("flags", 0))
    if (flags ^ e["flags"]) & ~O_LARGEFILE:
        fail("%s: flags %#o, want %#o" % (where, flags, e["flags"]))
    if bool(f.get("cloexec")) != e["cloexec"]:
        fail("%s: cloexec %s, want %s" % (where, f.get("cloexec"), e["cloexec"]))
    if e["type"] == "REG":
        if u(f.get("pos")) != e["pos"]:
            fail("%s: pos %s, want %d" % (where, f.get("pos"), e["pos"]))
    if bool(f.get("reg", {}).get("deleted")) != e["deleted"]:
        fail("%s: deleted %s, want %s" % (where, f.get("reg", {}).get("deleted"), e["deleted"]))
    if e["deleted"]:
        if u(f.get("size")) != e["size"]:
            fail("%s: size %s, want %d" % (where, f.get("size"), e["size"]))
        ghost = f.get("reg", {}).get("ghost_file", "")
        if not ghost or not os.path.isfile(os.path.join(img_dir, ghost)):
            fail("%s: ghost_file %r is not a file in the image dir" % (where, ghost))
        ghosts = show.get("ghosts")
        if isinstance(ghosts, dict) and not ghosts:
            fail("%s: show lists no ghosts" % where)
by_path = {e["path"]: n for n, e in exp_fds.items()}
app = fds[by_path[[p for p in by_path if p.endswith("/append.log")][0]]]
if not int(app["flags"]) & O_APPEND or int(app["flags"]) & O_ACCMODE != 1:
    fail("append.log: flags %#o lack O_WRONLY|O_APPEND" % int(app["flags"]))
rw = fds[dup[0]]
if not rw.get("cloexec") or fds[dup[1]].get("cloexec") or u(rw["pos"]) != u(fds[dup[1]]["pos"]):
    fail("rw.dat fd %d (cloexec) and its dup %d (no cloexec, same offset) differ: %r %r" % (dup[0], dup[1], rw, fds[dup[1]]))
for dev in ("/dev/null", "/dev/zero"):
    f = fds[by_path[dev]]
    if fd_kind(f) != "chr":
        fail("%s: type %s, want CHR" % (dev, fd_kind(f)))

# --- process-wide state
if core.get("cwd") != cwd:
    fail("cwd %r, want %r" % (core.get("cwd"), cwd))
if int(core.get("umask", -1)) != umask or umask != 0o27:
    fail("umask %r, want %d" % (core.get("umask"), 0o27))

sa = {int(s["signo"]): s for s in core.get("sigactions", [])}
for signo, e in sorted(sigs.items()):
    s = sa.get(signo) or fail("no sigaction for signal %d" % signo)
    h = str(s.get("handler", "0"))
    kind = {"0": "dfl", "1": "ign"}.get(h, "func")
    if kind != e["handler"]:
        fail("signal %d: handler %s (%s), want %s" % (signo, h, kind, e["handler"]))
    if (u(s.get("flags")) ^ e["flags"]) & ~SA_RESTORER:
        fail("signal %d: flags %#x, want %#x" % (signo, u(s.get("flags")), e["flags"]))
    if u(s.get("mask")) != e["mask"]:
        fail("signal %d: mask %#x, want %#x" % (signo, u(s.get("mask")), e["mask"]))
usr2 = sa[SIGUSR2]
if u(usr2["flags"]) & (SA_SIGINFO | SA_RESTART) != SA_SIGINFO | SA_RESTART:
    fail("SIGUSR2: flags %#x lack SA_SIGINFO|SA_RESTART" % u(usr2["flags"]))
if u(usr2["mask"]) & (bit(SIGQUIT) | bit(SIGPIPE)) != bit(SIGQUIT) | bit(SIGPIPE):
    fail("SIGUSR2: mask %#x lacks SIGQUIT and SIGPIPE" % u(usr2["mask"]))
if str(sa[SIGHUP]["handler"]) != "1":
    fail("SIGHUP: handler %s, want 1 (SIG_IGN)" % sa[SIGHUP]["handler"])
if str(sa[SIGTERM]["handler"]) in ("0", "1") or u(sa[SIGTERM]["flags"]) & ~SA_RESTORER:
    fail("SIGTERM: handler %s flags %#x, want a function and no flags" % (sa[SIGTERM]["handler"], u(sa[SIGTERM]["flags"])))

threads = core.get("threads", [])
if not threads:
    fail("no threads")
tb = u(threads[0].get("blocked"))
if not tb & bit(SIGINT) or tb != blocked:
    fail("blocked mask %#x, want %#x (with SIGINT)" % (tb, blocked))

its = [t for t in core.get("itimers", []) if int(t.get("which", 0)) == it_which]
if len(its) != 1:
    fail("itimers %r: want one ITIMER_REAL" % core.get("itimers"))
t = its[0]
if (u(t.get("interval_sec")), u(t.get("interval_usec"))) != (it_sec, it_usec):
    fail("ITIMER_REAL interval %s.%06d s, want %d s" % (t.get("interval_sec"), u(t.get("interval_usec")), it_sec))
vs, vu = u(t.get("value_sec")), u(t.get("value_usec"))
if not (0 < vs * 1000000 + vu <= it_sec * 1000000):
    fail("ITIMER_REAL value %d.%06d s, want in (0, %d]" % (vs, vu, it_sec))
print("  %d descriptors, %d sigactions, cwd, umask, mask and itimer as expected" % (len(exp_fds), len(sigs)))
EOF

check_pass "$W"
log "PASS"
