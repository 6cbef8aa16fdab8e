#!/usr/bin/env bash
# Bench smoke test of bench/run's cluster block (CTest bench_smoke_cluster): the
# whole block (one nats-server with JetStream, 3 relays in cluster mode, every
# cross-instance run next to the standalone relay) in a tiny configuration,
# without the standard set. Fails on any lost, duplicated or reordered message
# or any other failed run; never on speed. Skipped (exit 77) without
# nats-server, as tests/backplane/nats skip.
#   smoke_cluster_test.sh BIN_DIR
set -euo pipefail

bin_dir=$1
here=$(cd "$(dirname "$0")" && pwd)
nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
if [[ ! -x "$nats_server" ]]; then
  echo "SKIP: nats-server is not installed"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

STANDARD=0 CLUSTER=1 SKIP_BUILD=1 BIN="$bin_dir" BUILD_DIR="$work" NATS_SERVER="$nats_server" \
  CLUSTER_ROUNDS=1 CLUSTER_DURATION=1 LAT_DURATION=1 CLUSTER_FANOUT_DURATION=1 \
  PRESENCE_CONCURRENCY=4 "$here/../../bench/run" | tee "$work/out.txt"
grep -q "^cluster mode:" "$work/out.txt" || { echo "FAIL: no cluster table" >&2; exit 1; }
grep -q "^losses+dups+reorders+errors, cluster block runs .* yes$" "$work/out.txt" ||
  { echo "FAIL: the cluster runs were not all clean" >&2; exit 1; }
lines=$(grep -c '"servers":3' "$work/bench-results.jsonl" || true)
((lines >= 4)) || { echo "FAIL: $lines machine lines of 3-instance runs" >&2; exit 1; }
echo "bench smoke (cluster): every cross-instance run delivered every message"
