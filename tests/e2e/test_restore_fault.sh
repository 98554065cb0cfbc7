#!/bin/bash
# A restore that fails at any stage leaves nothing behind (CF_FAULT=<point>).
#
# Two programs are dumped (and killed) once each: counter, started in its own
# empty cwd, and files_sig (files, a deleted-but-open file the restore has to
# recreate, cwd and umask). Then for each restore fault point, on each image:
#   - the pid is free (the zombie of the last run reaped),
#   - restore -d with CF_FAULT=<point> exits 1 with one "Error:" line on
#     stderr (no crash),
#   - within 2 s there is no process with the pid, not even a zombie
#     (criu-fast reaps the process it created),
#   - no pid file was written, the program's work dir and cwd hold the same
#     files as before (in particular no recreated deleted file), and the image
#     dir holds the same files (logs aside),
#   - a restore of the same image without a fault then succeeds and the
#     program's self-check passes; it is killed for the next point.
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

POINTS=(restore-create restore-premap restore-fill restore-files restore-jump restore-finish)

n=0
for prog in counter files_sig; do
  W=$E2E_TMP/w-$prog
  D=$E2E_TMP/img-$prog
  CWD=$E2E_TMP/cwd-$prog
  mkdir -p "$CWD" || fail "mkdir $CWD"
  PROG_CWD=$CWD start_prog "$prog" "$W"
  pid=$PROG_PID
  [ "$(readlink "/proc/$pid/cwd")" = "$(cd "$CWD" && pwd -P)" ] || [ "$prog" != counter ] ||
    fail "counter does not run in $CWD"
  dump_kill "dump-$prog" "$pid" "$D"
  wait_pid_free "$pid" 10
  img_listing() { (cd "$D" && find . -mindepth 1 ! -name '*.log' | LC_ALL=C sort); }
  dir_listing "$W" >"$E2E_TMP/w-before-$prog"
  dir_listing "$CWD" >"$E2E_TMP/cwd-before-$prog"

  for point in "${POINTS[@]}"; do
    n=$((n + 1))
    what="$prog, CF_FAULT=$point"
    wait_pid_free "$pid" 10
    pidfile=$E2E_TMP/fault-$prog-$point.pid
    img_listing >"$E2E_TMP/img-before-$prog-$point"
    E2E_PIDS+=("$pid")
    CF_FAULT=$point run_cf "fault-$prog-$point" restore -D "$D" -d --pidfile "$pidfile" \
      -v4 -o "$E2E_TMP/fault-$prog-$point.log"
    CF_LOG=$E2E_TMP/fault-$prog-$point.log
    [ "$CF_RC" = 1 ] || fail "$what: criu-fast exited $CF_RC, want 1"
    assert_cf_error "$what"
    assert_pid_absent "$pid" "$what" 2
    [ -e "$pidfile" ] && fail "$what: the pid file $pidfile was written by a failed restore"
    dir_listing "$W" >"$E2E_TMP/w-after-$prog-$point"
    assert_same_file "$E2E_TMP/w-before-$prog" "$E2E_TMP/w-after-$prog-$point" "$what: files in $W changed"
    dir_listing "$CWD" >"$E2E_TMP/cwd-after-$prog-$point"
    assert_same_file "$E2E_TMP/cwd-before-$prog" "$E2E_TMP/cwd-after-$prog-$point" "$what: files in $CWD changed"
    img_listing >"$E2E_TMP/img-after-$prog-$point"
    assert_same_file "$E2E_TMP/img-before-$prog-$point" "$E2E_TMP/img-after-$prog-$point" "$what: files in $D changed"
    log "ok: $what -> $(cf_error_line)"
    CF_LOG=

    # The image is intact: a restore without a fault works.
    restore_d "good-$prog-$point" "$D" "$pid"
    check_pass "$W"
    kill_prog "$pid"
  done
done
log "PASS ($n fault runs)"
