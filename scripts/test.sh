#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to the whole test suite (what CI's .ci/run calls;
# docs/testing.md): the CTest suite, then the same suite under sanitizers, then fuzzing.
#   1. installs missing packages (test, sanitizer and fuzzing tools included);
#   2. builds into build/ and runs every test with CTest;
#   3. scripts/test-sanitize.sh: the same suite built with ASan + LSan + UBSan, in build-asan/;
#   4. scripts/fuzz.sh: each libFuzzer target for FUZZ_SECONDS (60), in build-fuzz/.
# Every phase runs even when an earlier one failed; the exit status is 1 when any did.
# SKIP_SANITIZE=1 / SKIP_FUZZ=1 leave phases 3 / 4 out for a quicker local run (never in CI).
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test || exit 1

results=()
failed=0
phase() {
  local name=$1 start=$SECONDS rc=0
  shift
  echo "=== test.sh: $name"
  "$@" || rc=$?
  results+=("$(printf '%-10s %s in %ds' "$name" "$( ((rc == 0)) && echo ok || echo "FAILED (exit $rc)")" $((SECONDS - start)))")
  ((rc == 0)) || failed=1
}

unit_and_e2e() {
  scripts/build.sh && (cd "${BUILD_DIR:-build}" && ctest --output-on-failure --timeout 300 -j "${JOBS:-2}")
}

phase tests unit_and_e2e
[[ "${SKIP_SANITIZE:-0}" == 1 ]] || phase sanitize scripts/test-sanitize.sh
[[ "${SKIP_FUZZ:-0}" == 1 ]] || phase fuzz scripts/fuzz.sh

echo "=== test.sh: summary"
printf '  %s\n' "${results[@]}"
exit "$failed"
