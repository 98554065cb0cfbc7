#!/bin/bash
# Owners of open file descriptions (tests/progs/fown.c): F_SETOWN_EX of a
# process, a process group and a thread, F_SETSIG, O_ASYNC.
#
# 1. dump -R: the image has each owner and signal; the self-check passes.
# 2. dump (kill) + restore -d: owners, signals and O_ASYNC are back, and a
#    write into the pipe signals the process again; the self-check passes.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/w
start_prog fown "$W"
root=$PROG_PID

dump_r "$E2E_TMP/img-r" "$root"
pycheck "owners in the image" "$E2E_TMP/show.json" "$root" <<'EOF2'
show = load(sys.argv[1])
root = int(sys.argv[1 + 1])
owners = sorted((int(f["owner"].get("type", 0)), int(f["owner"].get("pid", 0)), int(f["owner"].get("signum", 0)))
                for f in proc(show, root)["core"].get("fds", []) if "owner" in f)
# F_OWNER_TID 0, F_OWNER_PID 1, F_OWNER_PGRP 2; SIGRTMIN+1 is 35 here
if len(owners) != 4 or [o[0] for o in owners] != [0, 1, 1, 2] or owners[1][2] != 35:
    fail("owners %r" % owners)
EOF2
CF_LOG=
check_pass "$W"

dump_kill dump "$root" "$E2E_TMP/img"
restore_d restore "$E2E_TMP/img" "$root"
check_pass "$W"
log "PASS"
