#!/bin/bash
# Cgroups (kinds/cgroup.h, tests/progs/cgroups.c): a process in a cgroup of
# a named v1 hierarchy and of the pids controller, a thread of it alone in a
# child cgroup, a child process in a sibling cgroup.
#
#  1. dump --manage-cgroups; every cgroup removed and the hierarchy
#     unmounted; restore --manage-cgroups: criu-fast mounts the hierarchy,
#     creates the cgroups with their owner, mode and properties
#     (notify_on_release, pids.max), and every task is back in its cgroup.
#  2. dump without the option, cgroups kept: restore joins them.
#  3. the cgroups removed again: a restore with --manage-cgroups=none
#     refuses (naming the cgroup) and leaves no process; then a plain
#     restore creates them (without properties: none were saved); a
#     restore failing after the tree joined them (fault point) leaves
#     neither the tree nor the cgroups it made.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

NAME=cftest-$$
CG=/tmp/cf-cgroup-$$  # not in E2E_TMP: its cleanup must not rm -rf a cgroup mount
# The pids controller's v1 mount (mountinfo: "... ROOT MOUNTPOINT ... - cgroup SRC OPTS").
PIDS_ROOT=$(awk -F' - ' '{ split($1, h, " "); split($2, t, " ");
  if (t[1] == "cgroup" && h[4] == "/" && ("," t[3] ",") ~ /,pids,/) { print h[5]; exit } }' /proc/self/mountinfo)
PIDS_DIR=
cg_cleanup() {
  local d
  for pid in $(_e2e_our_pids) "${E2E_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  sleep 0.2
  mountpoint -q "$CG" || mount -t cgroup -o "none,name=$NAME" none "$CG" 2>/dev/null
  for d in A/B/T A/B A/C A; do rmdir "$CG/$d" 2>/dev/null; done
  umount "$CG" 2>/dev/null
  rmdir "$CG" 2>/dev/null
  [ -n "$PIDS_DIR" ] && rmdir "$PIDS_DIR" 2>/dev/null
}
trap 'rc=$?; cg_cleanup; (exit $rc); _e2e_cleanup' EXIT

mkdir -p "$CG"
mount -t cgroup -o "none,name=$NAME" none "$CG" 2>/dev/null || skip "cannot mount a named cgroup v1 hierarchy"
mkdir -p "$CG/A/B/T" "$CG/A/C" || fail "mkdir in $CG"
echo 1 >"$CG/A/B/notify_on_release" || fail "set notify_on_release"
chmod 0750 "$CG/A/C"
if [ -n "$PIDS_ROOT" ] && mkdir "$PIDS_ROOT/$NAME" 2>/dev/null; then
  PIDS_DIR=$PIDS_ROOT/$NAME
  echo 1234 >"$PIDS_DIR/pids.max" || fail "set pids.max"
else
  log "no pids controller mounted: that part is left out"
fi

# remove_cgroups: once the dumped tasks are gone, every cgroup of the test is
# removed and the named hierarchy unmounted.
remove_cgroups() {
  local d i
  for d in A/B/T A/B A/C A; do
    for ((i = 0; i < 100; i++)); do rmdir "$CG/$d" 2>/dev/null && break; sleep 0.05; done
    [ ! -d "$CG/$d" ] || fail "cannot remove cgroup $d"
  done
  if [ -n "$PIDS_DIR" ]; then
    for ((i = 0; i < 100; i++)); do rmdir "$PIDS_DIR" 2>/dev/null && break; sleep 0.05; done
    [ ! -d "$PIDS_DIR" ] || fail "cannot remove $PIDS_DIR"
  fi
  umount "$CG" || fail "umount $CG"
}

W=$E2E_TMP/w
start_prog cgroups "$W" "$CG" "$NAME" ${PIDS_DIR:+"$PIDS_DIR"}
pid=$PROG_PID
child=$(tr -dc 0-9 <"$W/ready.child")
check_pass "$W"

# 1. managed: everything made again by restore
dump_kill dump1 "$pid" "$E2E_TMP/img1" --manage-cgroups
wait_gone "$child" 10
remove_cgroups
restore_d restore1 "$E2E_TMP/img1" "$pid" --manage-cgroups
check_pass "$W"
mount -t cgroup -o "none,name=$NAME" none "$CG" || fail "mount the hierarchy again"
[ "$(cat "$CG/A/B/notify_on_release")" = 1 ] || fail "A/B: notify_on_release not restored"
[ "$(stat -c %a "$CG/A/C")" = 750 ] || fail "A/C: mode $(stat -c %a "$CG/A/C"), want 750"
if [ -n "$PIDS_DIR" ]; then
  [ "$(cat "$PIDS_DIR/pids.max")" = 1234 ] || fail "pids.max is $(cat "$PIDS_DIR/pids.max"), want 1234"
fi

# 2. not managed, the cgroups exist: the tasks join them
dump_kill dump2 "$pid" "$E2E_TMP/img2"
wait_gone "$child" 10
restore_d restore2 "$E2E_TMP/img2" "$pid"
check_pass "$W"

# 3. missing cgroups: refused with mode none, created by default
dump_kill dump3 "$pid" "$E2E_TMP/img3"
wait_gone "$child" 10
remove_cgroups
E2E_PIDS+=("$pid")
run_cf refuse restore -D "$E2E_TMP/img3" -d --manage-cgroups=none
assert_cf_error "restore --manage-cgroups=none into missing cgroups"
cf_error_line | grep -q "cgroup /A.* does not exist" || fail "refused restore: unexpected error: $(cf_error_line)"
assert_pid_absent "$pid" "refused restore"
# 3b. a restore that fails after the tree joined the cgroups it made
# removes them again, and the tree
CF_FAULT=restore-finish run_cf failed restore -D "$E2E_TMP/img3" -d
assert_cf_error "restore with a fault after the tree was made"
assert_pid_absent "$pid" "failed restore"
mount -t cgroup -o "none,name=$NAME" none "$CG" || fail "mount the hierarchy after the failed restore"
[ ! -d "$CG/A" ] || fail "the failed restore left cgroup A behind: $(find "$CG/A" -type d | tr '\n' ' ')"
umount "$CG" || fail "umount $CG"
if [ -n "$PIDS_DIR" ]; then
  [ ! -d "$PIDS_DIR" ] || fail "the failed restore left $PIDS_DIR behind"
fi
restore_d restore3 "$E2E_TMP/img3" "$pid"
check_pass "$W"
mount -t cgroup -o "none,name=$NAME" none "$CG" || fail "mount the hierarchy again"
[ "$(stat -c %a "$CG/A/C")" = 750 ] || fail "round 3: A/C mode $(stat -c %a "$CG/A/C"), want 750"
[ "$(cat "$CG/A/B/notify_on_release")" = 0 ] || fail "round 3: properties restored though none were saved"
log "PASS"
