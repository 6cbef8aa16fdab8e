#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan, into build-fuzz/) and runs each one for
# FUZZ_SECONDS on a temporary copy of its seed corpus: tests/fuzz/corpus/ is never modified.
#   FUZZ_SECONDS (60), FUZZ_BUILD_DIR (build-fuzz), FUZZ_TARGETS ("json_codec_fuzz core_events_fuzz"),
#   JOBS (2, for the build)
# Prints one line per target. On a crash (a violated invariant or a sanitizer report) it prints the
# report, keeps the input under $FUZZ_BUILD_DIR/artifacts/ and exits 1; docs/testing.md says how to
# reproduce it. Called by scripts/test.sh; run it alone after scripts/install-deps.sh --fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${JOBS:-2}
read -r -a targets <<<"${FUZZ_TARGETS:-json_codec_fuzz core_events_fuzz}"

scripts/install-deps.sh --fuzz
CC=clang-14 CXX=clang++-14 cmake -S . -B "$FUZZ_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRELAY_FUZZ=ON -DRELAY_BUILD_TESTS=OFF >/dev/null
cmake --build "$FUZZ_BUILD_DIR" -j "$JOBS" --target "${targets[@]}"

artifacts="$(cd "$FUZZ_BUILD_DIR" && pwd)/artifacts/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer

failed=0
for target in "${targets[@]}"; do
  corpus="$work/$target"
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"$target"/* "$corpus"/
  seeds=$(find "$corpus" -type f | wc -l)
  log="$artifacts/$target.log"
  rc=0
  "$FUZZ_BUILD_DIR/bin/$target" "$corpus" -max_total_time="$FUZZ_SECONDS" -max_len=65536 \
    -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 -print_funcs=0 \
    -artifact_prefix="$artifacts/$target-" >"$log" 2>&1 || rc=$?
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2)
  entries=$(find "$corpus" -type f | wc -l)
  if ((rc == 0)); then
    echo "fuzz: $target: ok, ${runs:-?} runs in ${FUZZ_SECONDS}s, coverage ${cov:-?} edges, corpus $seeds -> $entries"
  else
    failed=1
    crash=$(ls -t "$artifacts/$target-"* 2>/dev/null | grep -v '\.log$' | head -n1 || true)
    echo "fuzz: $target: FAILED (exit $rc) after ${runs:-?} runs; input ${crash:-none saved}; log $log"
    grep -E 'invariant violated|ERROR: |SUMMARY: |runtime error' "$log" | head -n 5 | sed 's/^/  /' || true
  fi
done
exit "$failed"
