#!/bin/bash
# Resource faults: each gives one clear error (or a working fallback) and
# loses nothing.
#
#  1. ENOSPC: the images directory is on a 2 MiB tmpfs: the dump fails with
#     one "No space left on device" error, leaves no file behind, and the
#     target runs on unchanged (maps, descriptors, self-check).
#  2. A low RLIMIT_NOFILE (16): the vmsplice drain has no descriptors for its
#     pipes and falls back to read; the dump and the restore both succeed.
#  3. A memory limit on criu-fast (memory cgroup, 96 MiB) while it dumps a
#     256 MiB process with each drain: the dumps succeed (criu-fast's buffers
#     are bounded). The target, restored by part 2, now has RLIMIT_NOFILE 16
#     itself: the vmsplice parasite cannot make its pipes in it (EMFILE) and
#     the process is drained with read instead. Skipped where no memory
#     cgroup can be made.
#  4. The target killed by someone else in the middle of its dump: criu-fast
#     fails with one clean error (or had finished), never crashes or hangs.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/mem
start_prog memload "$W" 256 mix
pid=$PROG_PID

# --- 1. ENOSPC ------------------------------------------------------------------
SMALL=$E2E_TMP/small
mkdir -p "$SMALL"
if mount -t tmpfs -o size=2M tmpfs "$SMALL" 2>/dev/null; then
  snapshot "$pid" "$E2E_TMP/snap"
  run_cf enospc dump -t "$pid" -D "$SMALL/img"
  umount_small() { umount "$SMALL" 2>/dev/null; }
  assert_cf_error "dump to a full file system" strict
  cf_error_line | grep -q "No space left on device" || { umount_small; fail "ENOSPC: error is: $(cf_error_line)"; }
  left=$(find "$SMALL/img" -type f | wc -l)
  umount_small
  [ "$left" = 0 ] || fail "ENOSPC: $left files left in the images directory"
  assert_running_untraced "$pid" "after ENOSPC"
  assert_same_snapshot "$pid" "$E2E_TMP/snap" "after ENOSPC"
  check_pass "$W"
else
  log "part 1 skipped: cannot mount a tmpfs here"
fi

# --- 2. RLIMIT_NOFILE 16 ----------------------------------------------------------
# low_nofile TAG ARGS...: criu-fast ARGS with 16 descriptors at most.
low_nofile() {
  local tag=$1
  shift
  CF_OUT=$E2E_TMP/$tag.out CF_ERR=$E2E_TMP/$tag.err CF_LOG=
  timeout -k 5 "$CF_TIMEOUT" prlimit --nofile=16 "$CRIU_FAST" "$@" >"$CF_OUT" 2>"$CF_ERR"
  CF_RC=$?
}
low_nofile nofile-dump dump -t "$pid" -D "$E2E_TMP/img-nofile" --drain vmsplice --display-stats
assert_cf_ok "dump --drain vmsplice with RLIMIT_NOFILE 16"
pinned=$(grep -o '([0-9]* pages in pipes' "$CF_OUT" | tr -dc 0-9)
log "vmsplice with 16 descriptors: pages in pipes: ${pinned:-?} (drained with read instead)"
wait_gone "$pid" 10
wait_pid_free "$pid" 20
low_nofile nofile-restore restore -D "$E2E_TMP/img-nofile" -d
assert_cf_ok "restore with RLIMIT_NOFILE 16"
E2E_PIDS+=("$pid")
assert_running_untraced "$pid" "after a restore with RLIMIT_NOFILE 16"
check_pass "$W"

# --- 3. memory cgroup limit ---------------------------------------------------------
CG=
for base in /sys/fs/cgroup/memory /sys/fs/cgroup; do
  if [ -e "$base/memory.limit_in_bytes" ] || [ -e "$base/cgroup.subtree_control" ]; then
    if mkdir "$base/cf-e2e-$$" 2>/dev/null; then
      CG=$base/cf-e2e-$$
      break
    fi
  fi
done
if [ -n "$CG" ] && { echo $((96 << 20)) >"$CG/memory.limit_in_bytes" || echo $((96 << 20)) >"$CG/memory.max"; } 2>/dev/null; then
  for drain in read vmsplice; do
    CF_OUT=$E2E_TMP/cg-$drain.out CF_ERR=$E2E_TMP/cg-$drain.err
    timeout -k 5 "$CF_TIMEOUT" bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' _ "$CG" \
      "$CRIU_FAST" dump -t "$pid" -D "$E2E_TMP/img-cg-$drain" -R --drain "$drain" --display-stats >"$CF_OUT" 2>"$CF_ERR"
    CF_RC=$?
    assert_cf_ok "dump --drain $drain under a 96 MiB memory limit"
    log "under a 96 MiB memory limit, --drain $drain: peak RSS $(stat_value "$CF_OUT" "peak RSS") MiB"
    assert_running_untraced "$pid" "after the dump under a memory limit"
    rm -rf "$E2E_TMP/img-cg-$drain"
  done
  rmdir "$CG" 2>/dev/null
  check_pass "$W"
else
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null
  log "part 3 skipped: no memory cgroup could be made here"
fi

# --- 4. the target killed mid-dump -----------------------------------------------------
CF_OUT=$E2E_TMP/victim.out CF_ERR=$E2E_TMP/victim.err
timeout -k 5 "$CF_TIMEOUT" "$CRIU_FAST" dump -t "$pid" -D "$E2E_TMP/img-victim" -R >"$CF_OUT" 2>"$CF_ERR" &
cf=$!
sleep 0.08
kill -KILL "$pid"
wait "$cf"
CF_RC=$?
if [ "$CF_RC" = 0 ]; then
  log "the dump had finished before its target was killed"
else
  assert_cf_error "dump of a target killed mid-dump" strict
  log "target killed mid-dump: $(cf_error_line)"
fi
[ -e "$E2E_TMP/img-victim/inventory.img" ] && [ "$CF_RC" != 0 ] && fail "a failed dump left an inventory.img"
log "ENOSPC, 16 descriptors, a memory limit and a vanished target: clean errors or working fallbacks"
