#!/bin/bash
# Generic socket options of unix sockets (tests/progs/unix_opts.c; zdtm
# sock_opts00): SO_PASSCRED on an unbound socket, a pair end, a bound
# datagram socket and a listener; SO_RCVLOWAT, SO_RCVTIMEO, a locked
# SO_SNDBUF, SO_PEEK_OFF with data queued, SO_KEEPALIVE, a locked classic
# BPF filter. The program checks each value and that a datagram arrives
# with SCM_CREDENTIALS.
#
# 1. dump -R: the image carries the options (UnixEnd.opts); the program
#    still passes.
# 2. dump (kill) + restore, twice.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog unix_opts "$W"
pid=$PROG_PID

dump_r "$E2E_TMP/img-r" "$pid"
pycheck "unix socket options in the image" "$E2E_TMP/show.json" "$pid" <<'EOF2'
show = load(sys.argv[1])
core = proc(show, int(sys.argv[2]))["core"]
ends = [s["end"] for g in file_objects(core, "unix_group") for s in g.get("socks", [])]
ends += [e for pr in file_objects(core, "unix_pair") for e in (pr.get("a", {}), pr.get("b", {})) if e.get("inode")]
cred = [e for e in ends if int(e.get("opts", {}).get("passcred", 0)) == 1]
if len(cred) != 4:
    fail("want 4 unix sockets with passcred=1 in their options, found %d: %r" % (len(cred), ends))
if not any(len(e["opts"].get("filter", [])) == 1 and e["opts"].get("lock_filter") for e in cred):
    fail("no socket with its locked one-instruction filter: %r" % cred)
if not any(int(e.get("opts", {}).get("peek_off", -1)) == 2 for e in ends):
    fail("no socket with peek_off=2: %r" % ends)
EOF2
check_pass "$W"

for round in 1 2; do
  dump_kill "dump$round" "$pid" "$E2E_TMP/img$round"
  restore_d "restore$round" "$E2E_TMP/img$round" "$pid"
  check_pass "$W"
done
log "PASS"
