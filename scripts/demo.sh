#!/usr/bin/env bash
# The criu-fast demo: installs what is missing, builds, then checkpoints a
# running sample workload (512 MiB of random, zero and text pages plus a
# heap, which checks its own memory on SIGUSR1), kills it, restores it with
# the same PID, and asks it to verify itself. Prints the dump and restore
# statistics. Usage (as root): bash scripts/demo.sh [SIZE_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-512}

bash scripts/setup.sh
bash scripts/build.sh build >/dev/null

cf=./build/criu-fast
work=$(mktemp -d /tmp/criu-fast-demo.XXXXXX)
images=/dev/shm/criu-fast-demo-images
rm -rf "$images"
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  rm -rf "$work" "$images"
}
trap cleanup EXIT

echo "== criu-fast demo: ${size_mb} MiB workload ($(uname -r), $(nproc) CPUs)"
"$cf" check | sed 's/^/   /'
# Start the workload detached, with no descriptor but /dev/null.
setsid -f ./build/progs/memmix "$work" "$size_mb" </dev/null >/dev/null 2>&1
for _ in $(seq 600); do [ -s "$work/ready" ] && break; sleep 0.1; done
pid=$(cat "$work/ready")
echo "== workload running as pid $pid"

echo "== dump -t $pid -D $images"
"$cf" dump -t "$pid" -D "$images" --display-stats
echo "   image files:"
ls -l "$images" | tail -n +2 | awk '{printf "     %12d  %s\n", $5, $9}'
for _ in $(seq 300); do
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
  [ "$state" = gone ] && break
  sleep 0.01
done
echo "== the workload is gone; restore -D $images -d (waits for its PID to be free)"
"$cf" restore -D "$images" -d --display-stats
echo "== restored as pid $pid: $(tr '\0' ' ' </proc/"$pid"/cmdline)"

rm -f "$work/result"
kill -USR1 "$pid"
for _ in $(seq 300); do [ -s "$work/result" ] && break; sleep 0.1; done
result=$(cat "$work/result" 2>/dev/null || echo "no answer")
echo "== the restored workload checked its memory: $result"
[ "$result" = PASS ]
