#!/bin/bash
# check_layer_probe.sh BUILD_DIR TARGET HEADER|--builds
# Builds one layer probe (tests/CMakeLists.txt). With HEADER: passes only
# when the build fails because the compiler cannot find HEADER (a backwards
# include is refused). With --builds: passes when the probe compiles.
set -u
build=$1 target=$2 want=$3
out=$(cmake --build "$build" --target "$target" 2>&1)
rc=$?
if [ "$want" = --builds ]; then
  [ $rc -eq 0 ] && { echo "ok: $target compiles"; exit 0; }
  echo "$out"; echo "FAIL: $target should compile"; exit 1
fi
if [ $rc -ne 0 ] && grep -q "$want: No such file" <<<"$out"; then
  echo "ok: $target cannot include $want"
  exit 0
fi
echo "$out"
echo "FAIL: $target should fail on a missing $want (exit $rc)"
exit 1
