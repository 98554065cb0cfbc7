#!/usr/bin/env bash
# Build check of a freestanding blob: it must not reference undefined symbols
# (no libc), and its object must carry only PC-relative relocations, so the
# flat binary runs wherever it is mapped.
set -euo pipefail
obj=$1
elf=$2
undef=$(nm -u "$elf" || true)
if [ -n "$undef" ]; then
  echo "blob $elf has undefined symbols:" >&2
  echo "$undef" >&2
  exit 1
fi
bad=$(readelf -rW "$obj" | awk '/R_X86_64_/ {print $3}' | grep -vE '^R_X86_64_(PC32|PLT32|PC64)$' || true)
if [ -n "$bad" ]; then
  echo "blob object $obj has absolute or GOT relocations:" >&2
  echo "$bad" | sort | uniq -c >&2
  exit 1
fi
