#!/usr/bin/env bash
# Checks deploy/systemd/ with Debian's systemd tools (CTest: deploy_systemd_check).
#   tests/deploy/check_systemd.sh [SOURCE_DIR [BIN_DIR]]
# SOURCE_DIR defaults to the repository root, BIN_DIR to SOURCE_DIR/build/bin.
#
# No running systemd is needed (a build container has none):
# 1. `systemd-analyze verify` loads the unit the way PID 1 would: every section, key and value is
#    parsed (unknown keys, bad values, bad specifiers and unknown system call groups are
#    reported), dependencies are resolved and ExecStart= must name an executable. It exits 0 on
#    most of these problems and only prints them, so any line it prints about this unit fails the
#    check. ExecStart=/usr/local/bin/relay is pointed at the built binary for the run.
# 2. `systemd-analyze security --offline=yes --threshold=20` scores the sandbox the same way
#    `systemd-analyze security atmosphere-relay` would on a host; above 2.0 ("OK" ends at 4.9)
#    means a hardening option was lost.
# 3. The settings the relay's contract needs, which parse either way: KillSignal=SIGTERM (the
#    drain), TimeoutStopSec= above DRAIN_GRACE_SECONDS, LimitNOFILE= above MAX_CONNECTIONS,
#    RELAY_DATA_DIR inside StateDirectory=, and relay.env.example's lines are VAR=value.
# Every failure is printed; the exit status is 1 when any check failed.
set -uo pipefail

SOURCE_DIR=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
BIN_DIR=${2:-$SOURCE_DIR/build/bin}
UNIT=$SOURCE_DIR/deploy/systemd/atmosphere-relay.service
ENV_FILE=$SOURCE_DIR/deploy/systemd/relay.env.example
MAX_EXPOSURE_X10=20

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

for f in "$UNIT" "$ENV_FILE"; do
  [[ -f "$f" ]] || { echo "FAIL: missing $f" >&2; exit 1; }
done
ANALYZE=$(command -v systemd-analyze) \
  || { echo "FAIL: systemd-analyze not found (scripts/install-deps.sh --test installs Debian's systemd)" >&2; exit 1; }
[[ -x "$BIN_DIR/relay" ]] || { echo "FAIL: $BIN_DIR/relay was not built" >&2; exit 1; }
grep -qxF 'ExecStart=/usr/local/bin/relay' "$UNIT" || fail "ExecStart= is not /usr/local/bin/relay (the path the unit's install steps use)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unit_copy=$tmp/atmosphere-relay.service
sed "s#^ExecStart=/usr/local/bin/relay\$#ExecStart=$BIN_DIR/relay#" "$UNIT" >"$unit_copy"

# --- 1. verify ----------------------------------------------------------------------
out=$(SYSTEMD_LOG_LEVEL=info "$ANALYZE" verify --man=no "$unit_copy" 2>&1)
rc=$?
# Lines about other units (a distribution unit's syscall list newer than this systemd, say) are
# not ours; everything that names this unit or its file is.
ours=$(grep -E "atmosphere-relay\.service|$tmp" <<<"$out")
if ((rc != 0)) || [[ -n "$ours" ]]; then
  echo "$out" >&2
  fail "systemd-analyze verify reports problems in atmosphere-relay.service (exit $rc)"
else
  ok "systemd-analyze verify accepts atmosphere-relay.service ($("$ANALYZE" --version | head -n1))"
fi

# --- 2. sandbox score ---------------------------------------------------------------
if out=$("$ANALYZE" security --offline=yes --threshold=$MAX_EXPOSURE_X10 "$unit_copy" 2>&1); then
  ok "sandbox: $(grep -o 'Overall exposure level.*' <<<"$out" | sed 's/ for [^:]*:/:/')"
else
  grep -E '^✗|Overall exposure' <<<"$out" >&2
  fail "systemd-analyze security: exposure above $((MAX_EXPOSURE_X10 / 10)).$((MAX_EXPOSURE_X10 % 10)), a hardening option is missing"
fi

# --- 3. the relay's contract --------------------------------------------------------
value() { sed -nE "s/^$1=(.*)$/\1/p" "$UNIT" | tail -n1; }
env_value() {  # the unit's Environment= value, overridden by a set (uncommented) line of the env file
  local v
  v=$(grep -E '^Environment=' "$UNIT" | sed 's/^Environment=//' | tr ' ' '\n' | sed -nE "s/^$1=(.*)$/\1/p" | tail -n1)
  sed -nE "s/^$1=(.*)$/\1/p" "$ENV_FILE" | tail -n1 | grep . || echo "${v:-$2}"
}
[[ $(value KillSignal) == SIGTERM ]] || fail "KillSignal= is not SIGTERM (the relay drains on SIGTERM)"
grace=$(env_value DRAIN_GRACE_SECONDS 20)
stop=$(value TimeoutStopSec)
if ! [[ "$stop" =~ ^[0-9]+$ ]] || ((stop < grace + 5)); then
  fail "TimeoutStopSec=$stop must exceed DRAIN_GRACE_SECONDS=$grace by at least 5 s, or systemd SIGKILLs mid-drain"
fi
nofile=$(value LimitNOFILE)
max_connections=$(env_value MAX_CONNECTIONS 10000)
if ! [[ "$nofile" =~ ^[0-9]+$ ]] || ((nofile < max_connections + 1024)); then
  fail "LimitNOFILE=$nofile leaves too few descriptors for MAX_CONNECTIONS=$max_connections"
fi
state_dir=$(value StateDirectory)
[[ -n "$state_dir" && $(env_value RELAY_DATA_DIR "") == "%S/$state_dir" ]] \
  || fail "RELAY_DATA_DIR is not %S/<StateDirectory=> (the one writable, persistent directory)"
[[ $(value DynamicUser) == yes || -n $(value User) ]] || fail "neither DynamicUser=yes nor User=: the relay would run as root"
bad_lines=$(grep -nvE '^(#.*|[A-Z][A-Z0-9_]*=.*|)$' "$ENV_FILE")
[[ -z "$bad_lines" ]] || fail "relay.env.example has lines that are not VAR=value or comments: $bad_lines"
ok "KillSignal, TimeoutStopSec ($stop s > $grace s drain), LimitNOFILE, StateDirectory, user, env file"

if ((failures > 0)); then
  echo "check_systemd: $failures check(s) failed" >&2
  exit 1
fi
echo "check_systemd: all checks passed"
