#!/bin/bash
# Restore takes images only from where no one but root can change them
# (streams/image_trust.h): restore runs as root and creates processes from
# what an image says.
#
# A counter is dumped; then restore is refused, with one error naming the
# culprit and nothing created, when
#   - an image file is writable by others,
#   - the images directory belongs to another user,
#   - a directory above it is writable by others (no sticky bit),
#   - a stream file is writable by others,
#   - a file of another user lies in an images directory others can write;
# such a directory holding only root's images is taken (zdtm's are 0777);
# and --allow-untrusted-images restores anyway (the process passes its
# self-check).
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

W=$E2E_TMP/counter
D=$E2E_TMP/img
start_prog counter "$W"
pid=$PROG_PID
run_cf stream dump -t "$pid" --stream-to "$E2E_TMP/image.stream" -R
assert_cf_ok "dump to a stream file"
dump_kill dump "$pid" "$D"
wait_pid_free "$pid" 20

# refused WHAT NEEDLE ARGS...: restore ARGS fails cleanly, its error says
# "untrusted images" and names NEEDLE, and no process was created.
refused() {
  local what=$1 needle=$2
  shift 2
  run_cf refused restore -d "$@"
  assert_cf_error "$what" strict
  cf_error_line | grep -q "untrusted images" || fail "$what: error does not say 'untrusted images': $(cf_error_line)"
  cf_error_line | grep -qF "$needle" || fail "$what: error does not name $needle: $(cf_error_line)"
  pid_absent "$pid" || fail "$what: process $pid exists after a refused restore"
}

core=$(ls "$D"/core-*.img | head -n 1)
chmod o+w "$core"
refused "a world-writable image file" "$core" -D "$D"
chmod o-w "$core"

chown 65534 "$D"
refused "an images directory owned by nobody" "$D" -D "$D"
chown 0 "$D"

# An images directory others can write (CRIU's zdtm makes its dump
# directories 0777): a file someone else put there is refused, naming it;
# with only root's own images in it, restore goes ahead.
chmod 0777 "$D"
stray="$D/stray.img"
echo junk >"$stray"
chown 65534 "$stray"
refused "a file of nobody's in a world-writable images directory" "$stray" -D "$D"
rm -f "$stray"
restore_d shared-dir "$D" "$pid"
check_pass "$W"
kill_prog "$pid"
wait_pid_free "$pid" 20
chmod 0700 "$D"

mkdir "$E2E_TMP/pub"
chmod 0777 "$E2E_TMP/pub"
mv "$D" "$E2E_TMP/pub/img"
refused "a world-writable directory above" "$E2E_TMP/pub" -D "$E2E_TMP/pub/img"

chmod 0666 "$E2E_TMP/image.stream"
refused "a world-writable stream file" "$E2E_TMP/image.stream" --stream-from "$E2E_TMP/image.stream"

# Explicitly allowed: restores.
restore_d allowed "$E2E_TMP/pub/img" "$pid" --allow-untrusted-images
check_pass "$W"
log "untrusted images refused (file, directory, parent, stream, stray file); restored from a 0777 directory and with --allow-untrusted-images"
