#!/usr/bin/env bash
# Configures (Release, Ninja) and builds criu-fast into BUILD_DIR (default
# build). Extra CMake arguments come from $CF_CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
read -r -a extra <<<"${CF_CMAKE_ARGS:-}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${extra[@]}" >/dev/null
ninja -C "$build_dir"
