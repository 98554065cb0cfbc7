#!/bin/bash
# CRIU's command line, as CRIU's own tools (zdtm.py) and scripts call it:
# 1. check --feature: the single-dash -verbosity=0 form, repeated
#    --no-default-config; exit 0 for a feature criu-fast has, 1 for one it
#    lacks, 1 with an error for a name CRIU does not know;
# 2. dump with zdtm's options (--log-file relative to the images directory,
#    --pidfile, --timeout, --pre-dump-mode, --file-locks, ...);
# 3. restore from a RELATIVE images directory of a process holding a deleted
#    file (its ghost image is found although the restored process changed
#    directory), --pidfile relative to the images directory as in CRIU,
#    --status-fd gets its byte, and the program's self-check passes;
# 4. a config file named by $CRIU_CONFIG_FILE sets options; the command
#    line wins; --no-default-config does not skip $CRIU_CONFIG_FILE;
# 5. an option whose absence would change the result is refused, naming it.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

# 1. check --feature
run_cf check-kcmp check --no-default-config --no-default-config -verbosity=0 --feature kcmp_epoll
assert_cf_ok "check --feature kcmp_epoll"
grep -q "kcmp_epoll is supported" "$CF_OUT" || fail "check --feature kcmp_epoll: $(cat "$CF_OUT")"
run_cf check-userns check --no-default-config -verbosity=0 --feature userns
[ "$CF_RC" = 1 ] || fail "check --feature userns: exit $CF_RC, want 1 (not supported)"
grep -q "userns is not supported" "$CF_OUT" || fail "check --feature userns: $(cat "$CF_OUT")"
run_cf check-bogus check --feature no_such_feature
assert_cf_error "check --feature no_such_feature"
cf_error_line | grep -q "unknown feature no_such_feature" || fail "unknown feature: $(cf_error_line)"

# 2. dump as zdtm calls it, from the parent of the images directory.
W=$E2E_TMP/w
start_prog kinds "$W" reg pipe
pid=$PROG_PID
cd "$E2E_TMP" || fail "cd $E2E_TMP"
mkdir -p img
run_cf dump dump --no-default-config --log-file dump.log --images-dir img --verbosity=4 --tree "$pid" \
  --pidfile "$E2E_TMP/dump.pid" --timeout 10 --pre-dump-mode splice --file-locks --manage-cgroups
CF_LOG=$E2E_TMP/img/dump.log
assert_cf_ok "zdtm-style dump"
[ -s img/dump.log ] || fail "no dump.log in the images directory"
[ -s img/inventory.img ] || fail "no inventory.img"
wait_gone "$pid" 10
grep -q "no effect here" img/dump.log || fail "the options without effect are not logged"

# 3. restore from the relative images directory, detached, with --status-fd.
E2E_PIDS+=("$pid")
CRIU_CONFIG_FILE= run_cf restore restore --no-default-config --log-file restore.log --images-dir img \
  --verbosity=4 --pidfile rst.pid --restore-detached --status-fd 9 9>"$E2E_TMP/status"
CF_LOG=$E2E_TMP/img/restore.log
assert_cf_ok "zdtm-style restore from a relative images directory"
[ "$(tr -dc '0-9' <img/rst.pid)" = "$pid" ] || fail "img/rst.pid says '$(cat img/rst.pid 2>/dev/null)', want $pid"
[ "$(od -An -tx1 "$E2E_TMP/status" | tr -d ' ')" = 00 ] || fail "--status-fd: got '$(od -An -tx1 "$E2E_TMP/status")'"
assert_running_untraced "$pid" "after restore"
check_pass "$W"
[ -e "$W/deleted" ] && fail "the deleted file came back as a file"
log "ok: relative images directory, ghost file, pidfile, status fd"
kill_prog "$pid"

# 4. config file from $CRIU_CONFIG_FILE (even with --no-default-config).
start_prog kinds "$W" pipe
pid=$PROG_PID
printf '# criu-fast test\nlog-file cfg.log\nverbosity 4\nleave-running\n' >"$E2E_TMP/criu.conf"
rm -rf img2 && mkdir img2
CRIU_CONFIG_FILE=$E2E_TMP/criu.conf run_cf dump-cfg dump --no-default-config -D img2 -t "$pid"
assert_cf_ok "dump with a config file"
[ -s img2/cfg.log ] || fail "the config file's log-file was not used"
assert_running_untraced "$pid" "after dump with leave-running from the config file"
kill_prog "$pid"

# 5. refused options name themselves.
run_cf refuse dump --no-default-config -D img2 -t 1 --join-ns net:/proc/1/ns/net
assert_cf_error "dump --join-ns"
cf_error_line | grep -q -- "--join-ns is not supported" || fail "refusal: $(cf_error_line)"
log "PASS"
