#!/bin/bash
# A tree in a network namespace of its own (kinds/netns.h), with a TCP
# connection over lo (tests/progs/tcp_netns.c).
#
# 1. dump -R: the image holds the namespace (lo up, its extra address, the
#    nftables table); the lock is gone afterwards; the self-check passes.
# 1b. a dump failing with the namespace locked, and criu-fast killed
#    (SIGKILL) then: the lock is gone (the guard deleted it inside the
#    namespace), the tree runs on.
# 2. dump --tcp-established (kill) + restore -d: a new namespace, made like
#    the old one; the connection carries its queued data and more, the
#    listener accepts.
# 2b. the same through `dump --stream | restore --stream`.
# 3. a veth link in the namespace: the dump is refused, naming the link; the
#    tree runs on, unlocked.
# 4. a named namespace (ip netns add) joined by the program: after the dump
#    the namespace is locked (a connection attempt from inside it times
#    out); restore --join-ns net:PATH puts the tree back in it and unlocks it.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

command -v nft >/dev/null || skip "nft (nftables) is needed"
command -v ip >/dev/null || skip "ip (iproute2) is needed"
command -v nsenter >/dev/null || skip "nsenter is needed"
unshare -n true 2>/dev/null || skip "cannot create a network namespace"

# locked_tables PID: the criu-fast lock tables in PID's network namespace.
locked_tables() { nsenter -t "$1" -n nft list tables 2>/dev/null | grep -c 'criu-fast-'; }

# --- 1. dump -R ----------------------------------------------------------
W=$E2E_TMP/w
start_prog tcp_netns "$W"
root=$PROG_PID
run_cf dump-r dump -t "$root" -D "$E2E_TMP/img-r" -R --tcp-established -v4 -o "$E2E_TMP/dump-r.log"
CF_LOG=$E2E_TMP/dump-r.log
assert_cf_ok "dump -R"
assert_running_untraced "$root" "after dump -R"
cf_show "$E2E_TMP/img-r" "$E2E_TMP/show.json"
pycheck "the network namespace in the image" "$E2E_TMP/show.json" <<'EOF2'
show = load(sys.argv[1])
inv = show["inventory"]
ns = inv.get("net_ns")
if not ns or not ns.get("lo_up"):
    fail("no network namespace with lo up in the inventory: %r" % ns)
if ns.get("lo_addrs") != ["10.7.0.1/32"]:
    fail("lo addresses %r" % ns.get("lo_addrs"))
import base64
rules = base64.b64decode(ns.get("nft_ruleset", "")).decode()
if "cf_netns_test" not in rules or "criu-fast-" in rules:
    fail("nft ruleset %r" % rules)
EOF2
[ "$(locked_tables "$root")" = 0 ] || fail "the lock table stayed after dump -R"
check_pass "$W"

# --- 1b. a failed dump, and criu-fast killed, with the namespace locked -------
CF_FAULT=tcp-locked run_cf fault dump -t "$root" -D "$E2E_TMP/img-fault" --tcp-established
assert_cf_error "dump with CF_FAULT=tcp-locked"
[ "$(locked_tables "$root")" = 0 ] || fail "the lock table stayed after a failed dump"
assert_running_untraced "$root" "after the failed dump"
check_pass "$W"
CF_FAULT=tcp-kill run_cf killed dump -t "$root" -D "$E2E_TMP/img-killed" --tcp-established
[ "$CF_RC" = 137 ] || fail "criu-fast with CF_FAULT=tcp-kill exited $CF_RC, not killed"
for ((i = 0; i < 200; i++)); do
  [ "$(locked_tables "$root")" = 0 ] && break
  sleep 0.05
done
[ "$(locked_tables "$root")" = 0 ] || fail "the guard left the lock table after criu-fast was killed"
wait_untraced=0
for ((i = 0; i < 200; i++)); do
  is_running_untraced "$root" && { wait_untraced=1; break; }
  sleep 0.05
done
[ "$wait_untraced" = 1 ] || fail "process $root not running untraced after criu-fast was killed"
check_pass "$W"

# --- 2. dump (kill) + restore ---------------------------------------------
old_ns=$(stat -L -c %i "/proc/$root/ns/net")
dump_kill dump "$root" "$E2E_TMP/img" --tcp-established
restore_d restore "$E2E_TMP/img" "$root"
new_ns=$(stat -L -c %i "/proc/$root/ns/net")
[ "$new_ns" != "$old_ns" ] && [ "$new_ns" != "$(stat -L -c %i /proc/self/ns/net)" ] ||
  fail "restored in namespace $new_ns (old $old_ns, ours $(stat -L -c %i /proc/self/ns/net))"
[ "$(locked_tables "$root")" = 0 ] || fail "a lock table in the new namespace"
check_pass "$W"

# --- 2b. the same through a stream --------------------------------------------
prev_ns=$new_ns
"$CRIU_FAST" dump -t "$root" --stream --tcp-established -v4 -o "$E2E_TMP/sdump.log" 2>"$E2E_TMP/sdump.err" |
  "$CRIU_FAST" restore --stream -d --pidfile "$E2E_TMP/spid" -v4 -o "$E2E_TMP/srestore.log" 2>"$E2E_TMP/srestore.err"
rcs=("${PIPESTATUS[@]}")
[ "${rcs[0]}" = 0 ] || fail "dump --stream exited ${rcs[0]}: $(head -c 300 "$E2E_TMP/sdump.err")"
[ "${rcs[1]}" = 0 ] || fail "restore --stream exited ${rcs[1]}: $(head -c 300 "$E2E_TMP/srestore.err")"
assert_running_untraced "$root" "after restore --stream"
[ "$(stat -L -c %i "/proc/$root/ns/net")" != "$prev_ns" ] || fail "restore --stream kept the old namespace"
[ "$(locked_tables "$root")" = 0 ] || fail "a lock table after restore --stream"
check_pass "$W"

# --- 3. a link that is not restored: refused ---------------------------------
nsenter -t "$root" -n ip link add cfv0 type veth peer name cfv1 || fail "cannot add a veth pair"
run_cf refuse dump -t "$root" -D "$E2E_TMP/img-no" --tcp-established
assert_cf_error "dump with a veth link"
cf_error_line | grep -q "only the loopback link" || fail "refusal: $(cf_error_line)"
assert_running_untraced "$root" "after the refused dump"
[ "$(locked_tables "$root")" = 0 ] || fail "the lock table stayed after a failed dump"
check_pass "$W"
nsenter -t "$root" -n ip link del cfv0

# --- 4. --join-ns -------------------------------------------------------------
NS=cf-e2e-netns-$$
ip netns add "$NS" || skip "ip netns add failed"
_netns_cleanup() {
  local rc=$?
  ip netns del "$NS" 2>/dev/null
  (exit $rc)
  _e2e_cleanup
}
trap _netns_cleanup EXIT
ip netns exec "$NS" ip link set up dev lo
W2=$E2E_TMP/w2
start_prog tcp_netns "$W2" "/var/run/netns/$NS"
p2=$PROG_PID
dump_kill dump2 "$p2" "$E2E_TMP/img2" --tcp-established
[ "$(ip netns exec "$NS" nft list tables | grep -c criu-fast-)" = 1 ] || fail "the joined namespace is not locked"
# Locked: a connection attempt inside it gets no answer (not even a reset).
ip netns exec "$NS" python3 -c '
import socket, sys
s = socket.socket(); s.settimeout(0.3)
try:
    s.connect(("127.0.0.1", 9))
except socket.timeout:
    sys.exit(0)
except OSError as e:
    print("connect:", e); sys.exit(1)
sys.exit(1)' || fail "the locked namespace answered"
restore_d restore2 "$E2E_TMP/img2" "$p2" --join-ns "net:/var/run/netns/$NS"
[ "$(stat -L -c %i "/proc/$p2/ns/net")" = "$(stat -L -c %i "/var/run/netns/$NS")" ] ||
  fail "not restored in the joined namespace"
[ "$(ip netns exec "$NS" nft list tables | grep -c criu-fast-)" = 0 ] || fail "the joined namespace stayed locked"
check_pass "$W2"
log "PASS"
