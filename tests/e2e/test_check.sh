#!/bin/bash
# `criu-fast check` probes the kernel features a dump relies on. On the
# machines this project targets (see kernel.md) it must exit 0 and report
# PAGEMAP_SCAN, ptrace and PR_TIMER_CREATE_RESTORE_IDS as OK (one line each
# naming the feature and "OK").
# shellcheck source=lib.sh
source "${E2E_LIB:-$(dirname "$0")/lib.sh}"
e2e_init

run_cf check check
assert_cf_ok "check"
cat "$CF_OUT" "$CF_ERR" >"$E2E_TMP/check.all"
for feature in PAGEMAP_SCAN ptrace PR_TIMER_CREATE_RESTORE_IDS; do
  line=$(grep -i -- "$feature" "$E2E_TMP/check.all" | grep -iwE 'ok' | head -n 1)
  [ -n "$line" ] || {
    cat "$E2E_TMP/check.all"
    fail "check: no OK line for $feature"
  }
  grep -qiwE 'fail(ed)?|error|missing|unsupported' <<<"$line" && fail "check: $feature line says it fails: $line"
  log "ok: $line"
done
log "PASS"
