#!/usr/bin/env bash
# Bench smoke test (CTest bench_smoke_relay / bench_smoke_echo): a few seconds
# of relay-bench against the real server, failing on any lost, duplicated or
# reordered message, relay error or unexpected close. It never asserts speed
# (that lives in bench/run and docs/performance.md).
#   smoke_test.sh relay|echo RELAY_BENCH RELAY_BIN ECHO_BIN
set -euo pipefail

kind=$1 bench=$2 relay_bin=$3 echo_bin=$4
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [[ "$kind" == relay ]]; then
  "$relay_bin" --host 127.0.0.1 --port 0 --grpc-port 0 --log-level warn \
    --rate-limit-per-second 0 --max-connections-per-ip 0 >"$work/server.out" 2>"$work/server.err" &
else
  "$echo_bin" --host 127.0.0.1 --port 0 >"$work/server.out" 2>"$work/server.err" &
fi
server_pid=$!

port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening ws on [^ ]*:\([0-9][0-9]*\)$/\1/p' "$work/server.out" | head -n1)
  [[ -n "$port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; echo "FAIL: server exited" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "FAIL: no 'listening ws on' line" >&2; exit 1; }

run() {
  echo "=== relay-bench $*"
  "$bench" "$@" --port "$port" --server-pid "$server_pid" --warmup 0.3 --drain-timeout 10
}

failed=0
if [[ "$kind" == relay ]]; then
  run pairs --pairs 20 --window 8 --duration 2 || failed=1
  run pairs --pairs 10 --rate 2000 --duration 1 || failed=1
  run fanout --receivers 20 --window 4 --duration 2 || failed=1
  run llm --meshes 5 --window 4 --duration 1 || failed=1
  run idle --connections 200 --settle 0.2 --hold 0.3 || failed=1
  run churn --concurrency 8 --duration 1 --settle 0.2 || failed=1
  # Resume clients, receivers cut 20 times a second: every message exactly once, in order.
  run resume --pairs 10 --window 8 --cut-rate 20 --duration 2 || failed=1
else
  run echo --connections 20 --window 8 --duration 2 || failed=1
  run echo --connections 10 --rate 2000 --duration 1 || failed=1
  run idle --server echo --connections 200 --settle 0.2 --hold 0.3 || failed=1
  run churn --server echo --concurrency 8 --duration 1 --settle 0.2 || failed=1
fi

kill -0 "$server_pid" 2>/dev/null || { echo "FAIL: the server died during the runs" >&2; failed=1; }
if ((failed)); then
  echo "--- server stderr" >&2
  tail -n 50 "$work/server.err" >&2 || true
  exit 1
fi
echo "bench smoke ($kind): every run delivered every message"
