#!/bin/bash
# Cgroup namespaces and --cgroup-root (kinds/cgroup.h, tests/progs/cgroupns.c):
# a process that unshared a cgroup namespace at P/ns of a named v1 hierarchy
# and then moved to P/ns/sub, with a child made in the namespace in P/ns/kid;
# P/empty holds no task.
#
#  1. dump --manage-cgroups, the cgroups removed, restore: the namespace is
#     made again at P/ns (the program checks its view from inside: /sub and
#     /kid, one namespace shared with the child), the host sees P/ns/sub.
#  2. dump --manage-cgroups --cgroup-root name=NAME:/P (P and everything
#     below it saved, the empty P/empty too), restore --cgroup-root
#     name=NAME:/Q: the tree is made below Q, the process is in Q/ns/sub and
#     its namespace is rooted at Q/ns (the view from inside is unchanged).
#  3. a bad --cgroup-root is refused by name.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

[ -e /proc/self/ns/cgroup ] || skip "no cgroup namespaces in this kernel"
NAME=cfns-$$
CG=/tmp/cf-cgroupns-$$  # not in E2E_TMP: its cleanup must not rm -rf a cgroup mount
cg_cleanup() {
  local d
  for pid in $(_e2e_our_pids) "${E2E_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  sleep 0.2
  mountpoint -q "$CG" || mount -t cgroup -o "none,name=$NAME" none "$CG" 2>/dev/null
  for d in P/ns/sub P/ns/kid P/ns P/empty P Q/ns/sub Q/ns/kid Q/ns Q/empty Q; do rmdir "$CG/$d" 2>/dev/null; done
  umount "$CG" 2>/dev/null
  rmdir "$CG" 2>/dev/null
}
trap 'rc=$?; cg_cleanup; (exit $rc); _e2e_cleanup' EXIT

mkdir -p "$CG"
mount -t cgroup -o "none,name=$NAME" none "$CG" 2>/dev/null || skip "cannot mount a named cgroup v1 hierarchy"
mkdir -p "$CG/P/ns/sub" "$CG/P/ns/kid" || fail "mkdir in $CG"

# remove_cgroups: once the dumped tasks are gone, every cgroup of the test
# is removed (the hierarchy stays mounted).
remove_cgroups() {
  local d i
  for d in P/ns/sub P/ns/kid P/ns P/empty P Q/ns/sub Q/ns/kid Q/ns Q/empty Q; do
    [ -d "$CG/$d" ] || continue
    for ((i = 0; i < 100; i++)); do rmdir "$CG/$d" 2>/dev/null && break; sleep 0.05; done
    [ ! -d "$CG/$d" ] || fail "cannot remove cgroup $d"
  done
}

# host_cgroup PID: the process's cgroup in the test's hierarchy, as the host sees it.
host_cgroup() { sed -n "s/^[0-9]*:name=$NAME://p" "/proc/$1/cgroup"; }

W=$E2E_TMP/w
start_prog cgroupns "$W" "$CG" "$NAME"
pid=$PROG_PID
child=$(tr -dc 0-9 <"$W/ready.child")
check_pass "$W"
[ "$(host_cgroup "$pid")" = /P/ns/sub ] || fail "before the dump: the host sees $(host_cgroup "$pid")"

# 1. the namespace made again where it was
dump_kill dump1 "$pid" "$E2E_TMP/img1" --manage-cgroups
wait_gone "$child" 10
remove_cgroups
restore_d restore1 "$E2E_TMP/img1" "$pid" --manage-cgroups
check_pass "$W"
[ "$(host_cgroup "$pid")" = /P/ns/sub ] || fail "round 1: the host sees $(host_cgroup "$pid"), want /P/ns/sub"
[ "$(host_cgroup "$child")" = /P/ns/kid ] || fail "round 1: the child is in $(host_cgroup "$child")"

# 2. moved by --cgroup-root from P to Q (P/empty, removed above, made anew)
mkdir "$CG/P/empty" && chmod 0750 "$CG/P/empty" || fail "mkdir P/empty"
dump_kill dump2 "$pid" "$E2E_TMP/img2" --manage-cgroups --cgroup-root "name=$NAME:/P"
wait_gone "$child" 10
remove_cgroups
restore_d restore2 "$E2E_TMP/img2" "$pid" --manage-cgroups --cgroup-root "name=$NAME:/Q"
check_pass "$W"
[ "$(host_cgroup "$pid")" = /Q/ns/sub ] || fail "round 2: the host sees $(host_cgroup "$pid"), want /Q/ns/sub"
[ "$(host_cgroup "$child")" = /Q/ns/kid ] || fail "round 2: the child is in $(host_cgroup "$child")"
[ -d "$CG/Q/empty" ] || fail "round 2: the empty cgroup below the root was not made again as Q/empty"
[ "$(stat -c %a "$CG/Q/empty")" = 750 ] || fail "round 2: Q/empty has mode $(stat -c %a "$CG/Q/empty"), want 750"
[ ! -d "$CG/P" ] || fail "round 2: P was made again though the tree moved to Q"

# 3. refused by name
run_cf badroot dump -t "$pid" -D "$E2E_TMP/img3" --cgroup-root "name=$NAME:relative"
assert_cf_error "dump --cgroup-root with a relative path"
cf_error_line | grep -q -- "--cgroup-root" || fail "bad --cgroup-root: unexpected error: $(cf_error_line)"
assert_running_untraced "$pid" "after the refused dump"
check_pass "$W"
log "PASS"
