#!/bin/bash
# Pseudo-terminals inside the tree (tests/progs/tty_pair.c): a pair whose
# slave is the controlling terminal of a session led by the root's child,
# with the grandchild's group in the foreground, changed termios and window
# size, an exclusive slave, bytes queued both ways (complete lines and a
# line being typed); a second pair locked and in packet mode.
#
# 1. dump -R: the tree runs on untraced, the image has both pairs with the
#    session, foreground group and queued bytes, and the self-check passes
#    (the bytes the dump had to read were put back).
# 2. dump (kill) + restore -d: the self-check passes: same relation between
#    the ends, same settings, same session and foreground group, same bytes.
# 3. once more, from the restored tree.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init
[ -c /dev/ptmx ] || skip "no /dev/ptmx"

W=$E2E_TMP/w
start_prog tty_pair "$W"
root=$PROG_PID
child_pid "$W"
kid=$CHILD_PID
child_pid "$W" ready.grandchild
grandkid=$CHILD_PID
check_pass "$W"

# --- 1. dump -R ------------------------------------------------------------------
dump_r "$E2E_TMP/img-r" "$root" "$kid" "$grandkid"
pycheck "pty pairs in the image" "$E2E_TMP/show.json" "$root" "$kid" "$grandkid" <<'EOF2'
show = load(sys.argv[1])
root, kid, grandkid = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pairs = [o["tty_pair"] for o in proc(show, root)["core"].get("file_objects", []) if "tty_pair" in o]
if len(pairs) != 2:
    fail("want 2 pty pairs in the root's core, got %d" % len(pairs))
ctty = [p for p in pairs if p.get("sid") == kid]
if len(ctty) != 1 or ctty[0].get("fg_pgid") != grandkid:
    fail("no pair with session %d and foreground group %d: %r" % (kid, grandkid, pairs))
if ctty[0].get("input_lines") is None or ctty[0].get("output") is None:
    fail("the queued bytes are not in the image: %r" % ctty[0])
other = [p for p in pairs if p is not ctty[0]][0]
if not other.get("locked") or not other.get("packet"):
    fail("the second pair is not locked and in packet mode: %r" % other)
ends = [f for f in proc(show, kid)["core"].get("fds", []) if fd_kind(f) == "tty"]
if not ends:
    fail("the child holds no pty end")
EOF2
CF_LOG=
check_pass "$W"

# --- 2. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$root" "$E2E_TMP/img"
wait_gone "$kid" 10
wait_gone "$grandkid" 10
restore_d restore "$E2E_TMP/img" "$root"
E2E_PIDS+=("$kid" "$grandkid")
assert_running_untraced "$kid" "child after restore"
assert_running_untraced "$grandkid" "grandchild after restore"
check_pass "$W"
check_pass "$W"

# --- 3. once more ------------------------------------------------------------------------
dump_kill dump2 "$root" "$E2E_TMP/img2"
wait_gone "$kid" 10
restore_d restore2 "$E2E_TMP/img2" "$root"
check_pass "$W"
log "PASS"
