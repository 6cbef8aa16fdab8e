#!/usr/bin/env bash
# Checks the container files without a Docker engine (CTest: deploy_dockerfile_check):
# deploy/Dockerfile, deploy/relay-entrypoint.sh, deploy/docker-compose.yml, .dockerignore.
#   tests/deploy/check_dockerfile.sh [SOURCE_DIR [BIN_DIR]]
# SOURCE_DIR defaults to the repository root, BIN_DIR to SOURCE_DIR/build/bin.
#
# What it checks, and why:
#   - every scripts/*.sh the Dockerfile names exists and is executable (the build stage runs them);
#   - the build stage builds Release without tests; the runtime stages (base, root-start and the
#     default last stage) all descend from debian:12-slim;
#   - every package in RUNTIME_PKGS exists in apt (apt-cache show);
#   - the binaries the runtime stage copies were built, and every shared library they load belongs
#     to a package that `apt-get install RUNTIME_PKGS` brings in (so the image can start);
#   - the user relay is created with the numeric uid:gid the default stage runs as (non-root), port,
#     HOST/PORT/RELAY_DATA_DIR env, the data directory owned by that user, STOPSIGNAL SIGTERM,
#     HEALTHCHECK via `relayctl ... health`, ENTRYPOINT the entrypoint script, which is copied,
#     executable, valid sh, and ends in exec of the relay (so the relay is PID 1 and gets SIGTERM);
#   - the files the Dockerfile COPYs from the context are not excluded by .dockerignore, which
#     keeps .git and build directories out;
#   - deploy/docker-compose.yml parses as YAML, builds deploy/Dockerfile from the repository root,
#     publishes 8765, keeps RELAY_DATA_DIR on a named volume, and gives `docker stop` longer than
#     the relay's drain (stop_grace_period > DRAIN_GRACE_SECONDS).
# Every failure is printed; the exit status is 1 when any check failed.
set -uo pipefail

SOURCE_DIR=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
BIN_DIR=${2:-$SOURCE_DIR/build/bin}
DOCKERFILE=$SOURCE_DIR/deploy/Dockerfile
ENTRYPOINT_SCRIPT=$SOURCE_DIR/deploy/relay-entrypoint.sh
COMPOSE=$SOURCE_DIR/deploy/docker-compose.yml
DOCKERIGNORE=$SOURCE_DIR/.dockerignore
PYTHON=/usr/bin/python3

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

for f in "$DOCKERFILE" "$ENTRYPOINT_SCRIPT" "$COMPOSE" "$DOCKERIGNORE"; do
  [[ -f "$f" ]] || { echo "FAIL: missing $f" >&2; exit 1; }
done

# Dockerfile without comments, continuation lines joined.
instructions=$(sed -e 's/^[[:space:]]*#.*$//' "$DOCKERFILE" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta')

# --- scripts the Dockerfile runs --------------------------------------------------
scripts=$(grep -oE 'scripts/[A-Za-z0-9_.-]+\.sh' <<<"$instructions" | sort -u)
[[ -n "$scripts" ]] || fail "Dockerfile runs no scripts/*.sh (expected install-deps.sh and build.sh)"
for s in $scripts; do
  if [[ -x "$SOURCE_DIR/$s" ]]; then ok "$s exists and is executable"; else fail "$s is missing or not executable"; fi
done
for s in scripts/install-deps.sh scripts/build.sh; do
  grep -q "$s" <<<"$scripts" || fail "Dockerfile does not run $s"
done

# --- stages -----------------------------------------------------------------------
froms=$(grep -E '^FROM ' <<<"$instructions")
grep -qE '^FROM debian:12 AS build$' <<<"$froms" || fail "build stage is not 'FROM debian:12 AS build'"
grep -qxF 'FROM debian:12-slim AS base' <<<"$froms" || fail "runtime base stage is not 'FROM debian:12-slim AS base'"
grep -qxF 'FROM base AS root-start' <<<"$froms" || fail "no 'FROM base AS root-start' stage (deploy/fly/fly.toml builds it)"
[[ $(tail -n1 <<<"$froms") == "FROM base AS runtime" ]] || fail "last (default) stage is not 'FROM base AS runtime'"
# The instructions of the default (last) stage.
last_stage=$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' <<<"$instructions")
build_run=$(grep -E '^RUN .*scripts/build\.sh' <<<"$instructions")
grep -q 'BUILD_TYPE=Release' <<<"$build_run" || fail "build.sh is not run with BUILD_TYPE=Release"
grep -q -- '-DRELAY_BUILD_TESTS=OFF' <<<"$build_run" || fail "build.sh is not run with -DRELAY_BUILD_TESTS=OFF"
grep -q 'option(RELAY_BUILD_TESTS' "$SOURCE_DIR/CMakeLists.txt" || fail "CMakeLists.txt has no RELAY_BUILD_TESTS option"

# --- runtime packages exist -------------------------------------------------------
runtime_pkgs=$(sed -nE 's/^ARG RUNTIME_PKGS="([^"]*)"$/\1/p' <<<"$instructions")
if [[ -z "$runtime_pkgs" ]]; then
  fail 'no ARG RUNTIME_PKGS="..." in the Dockerfile'
else
  grep -qE 'apt-get install .*\$\{RUNTIME_PKGS\}' <<<"$instructions" || fail "RUNTIME_PKGS is not installed with apt-get"
  for p in $runtime_pkgs; do
    if apt-cache show "$p" >/dev/null 2>&1; then ok "apt package $p exists"; else fail "apt package $p not found (apt-cache show $p)"; fi
  done
fi

# --- copied binaries and their shared libraries -----------------------------------
grep -qE '^COPY --from=build /src/build/bin/relay /src/build/bin/relayctl ' <<<"$instructions" \
  || fail "runtime stage does not copy /src/build/bin/relay and /src/build/bin/relayctl"

# Every shared library the binaries load must come from a package that
# installing RUNTIME_PKGS brings in. One dpkg -S call for all paths (it is slow
# per call); ldd may name the /lib alias of a /usr/lib file, so both are asked.
if [[ -n "$runtime_pkgs" ]]; then
  # shellcheck disable=SC2086  # word splitting of the package list is intended
  closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $runtime_pkgs 2>/dev/null | grep -v '^ ' | sort -u)
  libs=()
  for bin in relay relayctl; do
    if [[ ! -x "$BIN_DIR/$bin" ]]; then
      fail "$BIN_DIR/$bin was not built (the Dockerfile copies it)"
      continue
    fi
    ok "$BIN_DIR/$bin built"
    while read -r lib path; do
      [[ "$path" == "not" ]] && { fail "$bin: $lib not found by ldd"; continue; }
      [[ -n "$path" ]] && libs+=("$bin $lib $path")
    done < <(ldd "$BIN_DIR/$bin" | awk '$2 == "=>" { print $1, $3 }')
  done
  candidates=()
  for entry in "${libs[@]}"; do
    read -r _ _ path <<<"$entry"
    candidates+=("$path" "/usr$path" "${path#/usr}" "$(readlink -f "$path")")
  done
  owners=$(dpkg -S "${candidates[@]}" 2>/dev/null)
  for entry in "${libs[@]}"; do
    read -r bin lib path <<<"$entry"
    real=$(readlink -f "$path")
    pkg=$(awk -F': ' -v a="$path" -v b="/usr$path" -v c="${path#/usr}" -v d="$real" \
      '$2 == a || $2 == b || $2 == c || $2 == d { split($1, p, ":"); print p[1]; exit }' <<<"$owners")
    if [[ -z "$pkg" ]]; then
      fail "$bin: no Debian package owns $path"
    elif ! grep -qxF "$pkg" <<<"$closure"; then
      fail "$bin needs $lib from package $pkg, which RUNTIME_PKGS does not bring in"
    fi
  done
  ok "shared libraries of relay and relayctl checked against RUNTIME_PKGS"
fi

# --- runtime settings -------------------------------------------------------------
uid=$(grep -oE 'useradd .*--uid [0-9]+ .*relay$' <<<"$instructions" | grep -oE -- '--uid [0-9]+' | awk '{print $2}')
gid=$(grep -oE 'groupadd .*--gid [0-9]+ relay' <<<"$instructions" | grep -oE -- '--gid [0-9]+' | awk '{print $2}')
if [[ -z "$uid" || -z "$gid" ]]; then
  fail "base stage does not create group and user relay with a fixed --gid/--uid"
elif [[ "$uid" == 0 || "$gid" == 0 ]]; then
  fail "user relay is root"
else
  grep -qxF "USER $uid:$gid" <<<"$last_stage" || fail "default stage does not end as 'USER $uid:$gid' (the relay user)"
fi
grep -qE '^EXPOSE 8765$' <<<"$instructions" || fail "no 'EXPOSE 8765'"
env_line=$(grep -E '^ENV ' <<<"$instructions")
grep -q 'HOST=0.0.0.0' <<<"$env_line" || fail "ENV does not set HOST=0.0.0.0"
grep -q 'PORT=8765' <<<"$env_line" || fail "ENV does not set PORT=8765"
data_dir=$(grep -oE 'RELAY_DATA_DIR=[^ ]+' <<<"$env_line" | cut -d= -f2)
if [[ -z "$data_dir" ]]; then
  fail "ENV does not set RELAY_DATA_DIR"
else
  grep -qE "install -d -o relay -g relay .*$data_dir( |$)" <<<"$instructions" \
    || fail "RELAY_DATA_DIR $data_dir is not created owned by relay"
fi
grep -qE '^STOPSIGNAL SIGTERM$' <<<"$instructions" || fail "no 'STOPSIGNAL SIGTERM' (SIGTERM is the relay's drain)"
grep -qE '^HEALTHCHECK .*CMD .*relayctl.*"health"' <<<"$instructions" || fail "HEALTHCHECK does not run 'relayctl ... health'"
grep -qE '^ENTRYPOINT \["/usr/local/bin/relay-entrypoint"\]$' <<<"$instructions" \
  || fail 'ENTRYPOINT is not ["/usr/local/bin/relay-entrypoint"]'
grep -qE '^COPY deploy/relay-entrypoint.sh /usr/local/bin/relay-entrypoint$' <<<"$instructions" \
  || fail "deploy/relay-entrypoint.sh is not copied to /usr/local/bin/relay-entrypoint"

# --- the entrypoint script ----------------------------------------------------------
[[ -x "$ENTRYPOINT_SCRIPT" ]] || fail "deploy/relay-entrypoint.sh is not executable"
sh -n "$ENTRYPOINT_SCRIPT" || fail "deploy/relay-entrypoint.sh is not valid sh"
grep -qE '^RELAY=/usr/local/bin/relay$' "$ENTRYPOINT_SCRIPT" || fail "deploy/relay-entrypoint.sh does not run /usr/local/bin/relay"
[[ $(grep -cE '^\s*exec ' "$ENTRYPOINT_SCRIPT") -ge 2 ]] \
  || fail "deploy/relay-entrypoint.sh does not exec the relay on both paths (it must become PID 1)"
if [[ -n "${uid:-}" ]]; then
  grep -qxF "RELAY_UID=$uid" "$ENTRYPOINT_SCRIPT" || fail "deploy/relay-entrypoint.sh drops to another uid than $uid"
  grep -qxF "RELAY_GID=$gid" "$ENTRYPOINT_SCRIPT" || fail "deploy/relay-entrypoint.sh drops to another gid than $gid"
fi
ok "deploy/relay-entrypoint.sh checked"

# --- .dockerignore ----------------------------------------------------------------
grep -qxF '.git' "$DOCKERIGNORE" || fail ".dockerignore does not exclude .git"
grep -qE '^/?build' "$DOCKERIGNORE" || fail ".dockerignore does not exclude build directories"
# Every path COPYed from the context must survive .dockerignore (last matching line wins).
while read -r src; do
  [[ -z "$src" || "$src" == "." ]] && continue
  verdict=keep
  while read -r pattern; do
    [[ -z "$pattern" || "$pattern" == \#* ]] && continue
    negate=0
    if [[ "$pattern" == !* ]]; then negate=1; pattern=${pattern#!}; fi
    pattern=${pattern%/}
    # shellcheck disable=SC2053  # glob match on purpose
    if [[ "$src" == $pattern || "$src" == $pattern/* ]]; then
      if ((negate)); then verdict=keep; else verdict=drop; fi
    fi
  done <"$DOCKERIGNORE"
  [[ "$verdict" == keep ]] || fail ".dockerignore excludes $src, which the Dockerfile COPYs"
done < <(awk '$1 == "COPY" && $2 !~ /^--from/ { for (i = 2; i < NF; i++) print $i }' <<<"$instructions" | sort -u)

# --- docker-compose.yml -----------------------------------------------------------
if [[ ! -x "$PYTHON" ]] || ! "$PYTHON" -c 'import yaml' 2>/dev/null; then
  fail "$PYTHON with the yaml module is needed (scripts/install-deps.sh --test installs python3-yaml)"
elif "$PYTHON" - "$COMPOSE" "$SOURCE_DIR" "${data_dir:-}" <<'PY'; then
import os
import re
import sys
import yaml

compose_path, source_dir, image_data_dir = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    with open(compose_path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
except yaml.YAMLError as e:
    print(f"FAIL: docker-compose.yml does not parse: {e}", file=sys.stderr)
    sys.exit(1)
problems = []
relay = (doc or {}).get("services", {}).get("relay")
if not isinstance(relay, dict):
    problems.append("no services.relay")
else:
    build = relay.get("build") or {}
    context = os.path.realpath(os.path.join(os.path.dirname(compose_path), build.get("context", ".")))
    if context != os.path.realpath(source_dir):
        problems.append(f"services.relay.build.context is {context}, not the repository root")
    elif build.get("dockerfile") != "deploy/Dockerfile":
        problems.append("services.relay.build.dockerfile is not deploy/Dockerfile (relative to the context)")
    if not any(str(p).split(":")[-1].split("/")[0] == "8765" for p in relay.get("ports", [])):
        problems.append("services.relay.ports does not publish container port 8765")
    if relay.get("restart") != "unless-stopped":
        problems.append("services.relay.restart is not unless-stopped")
    env = relay.get("environment", {})
    env = env if isinstance(env, dict) else dict(str(e).partition("=")[::2] for e in env)
    for name in ("PORT", "HOST", "LOG_LEVEL"):
        if name not in env:
            problems.append(f"services.relay.environment has no {name}")
    data_dir = str(env.get("RELAY_DATA_DIR", image_data_dir))
    named = set((doc.get("volumes") or {}).keys())
    mounts = [str(v).split(":") for v in relay.get("volumes", []) if isinstance(v, str)]
    if not any(len(m) >= 2 and m[1] == data_dir and m[0] in named for m in mounts):
        problems.append(f"RELAY_DATA_DIR {data_dir!r} is not on a named volume declared under volumes:")
    grace = float(env.get("DRAIN_GRACE_SECONDS", 20))
    stop = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(relay.get("stop_grace_period", "10s")))
    stop_seconds = int(stop.group(1) or 0) * 60 + int(stop.group(2) or 0) if stop and any(stop.groups()) else 0
    if stop_seconds < grace + 5:
        problems.append(f"stop_grace_period {relay.get('stop_grace_period')!r} must exceed DRAIN_GRACE_SECONDS ({grace:g}) by at least 5 s")
    if relay.get("stop_signal", "SIGTERM") != "SIGTERM":
        problems.append("stop_signal is not SIGTERM")
for p in problems:
    print(f"FAIL: docker-compose.yml: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
  ok "docker-compose.yml parses, builds deploy/Dockerfile, publishes 8765, keeps data on a volume, outlasts the drain"
else
  fail "docker-compose.yml check failed"
fi

if ((failures > 0)); then
  echo "check_dockerfile: $failures check(s) failed" >&2
  exit 1
fi
echo "check_dockerfile: all checks passed"
