#!/bin/bash
# A TCP server whose client is not dumped (tests/progs/tcp_stream.c: both
# ends stream a known byte sequence to each other and check every byte they
# receive, so a byte lost or received twice, a reset or an end of stream
# fails their self-check; it also fails when the stream stopped moving).
#
# 1. without --tcp-established the dump is refused with an error naming the
#    option; the server runs on and the stream is intact.
# 2. a dump that fails with the connection locked and in repair mode
#    (CF_FAULT=tcp-locked) leaves no lock and a working connection.
# 3. criu-fast killed (SIGKILL) with the connection locked and in repair
#    mode (CF_FAULT=tcp-kill): its guard process undoes the lock; the
#    connection works.
# 4. dump -R --tcp-established: the lock is taken and undone; the stream
#    goes on.
# 5. dump (the server is killed): the nftables table stays, named in the
#    inventory; restore removes it; the stream goes on both ways.
# 6. the same through `dump --stream | restore --stream`.
# 7. the client in another network namespace (a veth pair), standing for
#    another host: dump, kill, restore, the stream goes on.
# 8. a client that vanishes (reset, dropped by the lock) while its idle
#    server is dumped: the restored server learns at once that its
#    connection is gone (its window probe, sent once the lock is removed,
#    meets no socket and draws a reset), as the server would have.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init
command -v nft >/dev/null || skip "nft (nftables) is needed for the network lock"

PORT=$((20000 + RANDOM % 20000))

# start_pair TAG ADDR [NETNS [IDLE]]: the server on ADDR:PORT (host namespace),
# then its client (in NETNS if given); SERVER, CLIENT: their pids; SW, CW:
# their work directories. IDLE "-idle": the pair sends nothing.
start_pair() {
  local tag=$1 addr=$2 ns=${3:-} idle=${4:-} i
  SW=$E2E_TMP/$tag-server CW=$E2E_TMP/$tag-client
  mkdir -p "$SW" "$CW"
  setsid -f "$PROGS/tcp_stream" "$SW" "server$idle" "$addr" "$PORT" </dev/null >/dev/null 2>&1 || fail "start the server"
  for ((i = 0; i < 400; i++)); do
    [ -s "$SW/listening" ] && break
    [ -s "$SW/error" ] && fail "server: $(cat "$SW/error")"
    sleep 0.05
  done
  [ -s "$SW/listening" ] || fail "the server does not listen"
  if [ -n "$ns" ]; then
    setsid -f ip netns exec "$ns" "$PROGS/tcp_stream" "$CW" "client$idle" "$addr" "$PORT" </dev/null >/dev/null 2>&1 ||
      fail "start the client in $ns"
  else
    setsid -f "$PROGS/tcp_stream" "$CW" "client$idle" "$addr" "$PORT" </dev/null >/dev/null 2>&1 || fail "start the client"
  fi
  wait_ready "$CW"
  wait_ready "$SW"
  SERVER=$(tr -dc '0-9' <"$SW/ready")
  CLIENT=$(tr -dc '0-9' <"$CW/ready")
  PORT=$((PORT + 1))
}

both_pass() {
  check_pass "$SW"
  check_pass "$CW"
}

no_lock() {
  if nft list table inet "criu-fast-$1" >/dev/null 2>&1; then
    fail "$2: the network lock (table inet criu-fast-$1) is still there"
  fi
}

# --- 1. refused without --tcp-established ----------------------------------------
start_pair plain 127.0.0.1
both_pass
run_cf refused dump -t "$SERVER" -D "$E2E_TMP/img-refused" -v4 -o "$E2E_TMP/refused.log"
assert_cf_error "dump of an established connection without --tcp-established"
cf_error_line | grep -q -- "--tcp-established" || fail "the error does not name --tcp-established: $(cf_error_line)"
assert_running_untraced "$SERVER" "server after the refused dump"
both_pass

# --- 2. a dump failing with the connection locked ------------------------------------
CF_FAULT=tcp-locked run_cf fault dump -t "$SERVER" -D "$E2E_TMP/img-fault" --tcp-established -v4 \
  -o "$E2E_TMP/fault.log"
assert_cf_error "dump with CF_FAULT=tcp-locked"
grep -q "net-lock: .* locked" "$E2E_TMP/fault.log" || fail "the failed dump did not lock the connection first"
no_lock "$SERVER" "after a failed dump"
assert_running_untraced "$SERVER" "server after the failed dump"
both_pass

# --- 3. criu-fast killed with the connection locked ----------------------------------
CF_FAULT=tcp-kill run_cf killed dump -t "$SERVER" -D "$E2E_TMP/img-killed" --tcp-established -v4 \
  -o "$E2E_TMP/killed.log"
[ "$CF_RC" = 137 ] || fail "criu-fast with CF_FAULT=tcp-kill exited $CF_RC, not killed"
for ((i = 0; i < 200; i++)); do
  nft list table inet "criu-fast-$SERVER" >/dev/null 2>&1 || break
  sleep 0.05
done
no_lock "$SERVER" "10 s after criu-fast was killed"
for ((i = 0; i < 200; i++)); do
  [ "$(tracer_pid "$SERVER")" = 0 ] && break
  sleep 0.05
done
assert_running_untraced "$SERVER" "server after criu-fast was killed"
both_pass

# --- 4. dump -R ------------------------------------------------------------------------
run_cf dump-r dump -t "$SERVER" -D "$E2E_TMP/img-r" -R --tcp-established -v4 -o "$E2E_TMP/dump-r.log"
CF_LOG=$E2E_TMP/dump-r.log
assert_cf_ok "dump -R --tcp-established"
grep -q "net-lock: .* locked" "$E2E_TMP/dump-r.log" || fail "dump -R did not lock the connection"
no_lock "$SERVER" "after dump -R"
assert_running_untraced "$SERVER" "server after dump -R"
both_pass

# --- 5. dump, kill, restore ------------------------------------------------------------
dump_kill dump "$SERVER" "$E2E_TMP/img" --tcp-established
nft list table inet "criu-fast-$SERVER" >/dev/null 2>&1 || fail "the dump that killed the server left no lock"
cf_show "$E2E_TMP/img" "$E2E_TMP/show.json"
pycheck "the connection in the image" "$E2E_TMP/show.json" "$SERVER" <<'EOF2'
show = load(sys.argv[1])
pid = int(sys.argv[2])
if show["inventory"].get("net_lock") != "criu-fast-%d" % pid:
    fail("inventory net_lock is %r" % show["inventory"].get("net_lock"))
tcp = [f["tcp"] for f in proc(show, pid)["core"]["fds"] if fd_kind(f) == "tcp"]
states = sorted(int(t["state"]) for t in tcp)
if states != [1, 10]:
    fail("TCP states %r, want one ESTABLISHED (1) and one LISTEN (10)" % states)
EOF2
restore_d restore "$E2E_TMP/img" "$SERVER"
no_lock "$SERVER" "after restore"
both_pass
both_pass

# --- 6. dump --stream | restore --stream --------------------------------------------

"$CRIU_FAST" dump -t "$SERVER" --stream --tcp-established -v4 -o "$E2E_TMP/sdump.log" 2>"$E2E_TMP/sdump.err" |
  "$CRIU_FAST" restore --stream -d --pidfile "$E2E_TMP/spid" -v4 -o "$E2E_TMP/srestore.log" 2>"$E2E_TMP/srestore.err"
rcs=("${PIPESTATUS[@]}")

[ "${rcs[0]}" = 0 ] || fail "dump --stream exited ${rcs[0]}: $(head -c 300 "$E2E_TMP/sdump.err")"
[ "${rcs[1]}" = 0 ] || fail "restore --stream exited ${rcs[1]}: $(head -c 300 "$E2E_TMP/srestore.err")"
assert_running_untraced "$SERVER" "server after restore --stream"
no_lock "$SERVER" "after restore --stream"
both_pass

# --- 8. an idle client that vanishes while its server is dumped (before 7,
# which needs ip) ---------------------------------------------------------------
# Without the probe nothing would ever reach the server: it sends nothing,
# and the client's reset was dropped by the lock.
start_pair idle 127.0.0.1 "" -idle
dump_kill dump-idle "$SERVER" "$E2E_TMP/img-idle" --tcp-established
kill_prog "$CLIENT"
restore_d restore-idle "$E2E_TMP/img-idle" "$SERVER"
no_lock "$SERVER" "after restore (idle pair)"
check_pass "$SW"
kill_prog "$SERVER"

# --- 7. the client in another network namespace ---------------------------------------
command -v ip >/dev/null || skip "ip (iproute2) is needed for the network namespace part"
NS=cfe2e$$
VA=cft$$a VB=cft$$b
NET=10.$((100 + RANDOM % 100)).$((RANDOM % 250)).
cleanup_ns() {
  ip link del "$VA" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
}
trap 'rc=$?; cleanup_ns; (exit $rc); _e2e_cleanup' EXIT
ip netns add "$NS" || skip "cannot create a network namespace"
ip link add "$VA" type veth peer name "$VB" || fail "veth pair"
ip link set "$VB" netns "$NS" || fail "move $VB"
ip addr add "${NET}1/24" dev "$VA" && ip link set "$VA" up || fail "set up $VA"
ip netns exec "$NS" ip addr add "${NET}2/24" dev "$VB" || fail "address of $VB"
ip netns exec "$NS" ip link set "$VB" up && ip netns exec "$NS" ip link set lo up || fail "set up $VB"
start_pair netns "${NET}1" "$NS"
both_pass
dump_kill dump-ns "$SERVER" "$E2E_TMP/img-ns" --tcp-established
restore_d restore-ns "$E2E_TMP/img-ns" "$SERVER"
no_lock "$SERVER" "after restore (netns)"
both_pass
both_pass
log "PASS"
