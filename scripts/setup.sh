#!/usr/bin/env bash
# Installs the Debian 12 packages criu-fast needs, only those missing.
# Idempotent and quiet when everything is there. Run as root.
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config git python3 binutils
  libtbb-dev liburing-dev libzstd-dev liblz4-dev libprotobuf-dev protobuf-compiler
  libjemalloc-dev libgtest-dev libbenchmark-dev libxxhash-dev
  clang libclang-rt-14-dev  # clang and libFuzzer: scripts/fuzz.sh
  nftables iproute2)  # the TCP network lock and the network namespace tests

if ! command -v dpkg-query >/dev/null; then
  echo "setup: dpkg-query not found: this script is for Debian 12" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  # A captured status (not a pipe into grep -q) so pipefail cannot misfire.
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "setup: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
