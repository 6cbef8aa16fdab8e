#!/usr/bin/env bash
# Checks the container files without a Docker engine (CTest: deploy_dockerfile_check).
#   tests/deploy/check_dockerfile.sh [SOURCE_DIR [BIN_DIR]]
# SOURCE_DIR defaults to the repository root, BIN_DIR to SOURCE_DIR/build/bin.
#
# What it checks, and why:
#   - every scripts/*.sh the Dockerfile names exists and is executable (the build stage runs them);
#   - the build stage builds Release without tests, the runtime stage is debian:12-slim;
#   - every package in RUNTIME_PKGS exists in apt (apt-cache show);
#   - the binaries the runtime stage copies were built, and every shared library they load belongs
#     to a package that `apt-get install RUNTIME_PKGS` brings in (so the image can start);
#   - non-root user, port, HOST/PORT env, HEALTHCHECK via `relayctl ... health`, ENTRYPOINT relay;
#   - docker-compose.yml parses as YAML and publishes 8765; .dockerignore keeps .git and build out.
# Every failure is printed; the exit status is 1 when any check failed.
set -uo pipefail

SOURCE_DIR=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
BIN_DIR=${2:-$SOURCE_DIR/build/bin}
DOCKERFILE=$SOURCE_DIR/Dockerfile
COMPOSE=$SOURCE_DIR/docker-compose.yml
DOCKERIGNORE=$SOURCE_DIR/.dockerignore
PYTHON=/usr/bin/python3

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

for f in "$DOCKERFILE" "$COMPOSE" "$DOCKERIGNORE"; do
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
[[ $(tail -n1 <<<"$froms") == "FROM debian:12-slim" ]] || fail "last (runtime) stage is not 'FROM debian:12-slim'"
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
grep -qE 'useradd .*relay$|useradd .*relay ' <<<"$instructions" || fail "runtime stage does not create user relay"
grep -qE '^USER relay$' <<<"$instructions" || fail "no 'USER relay'"
grep -qE '^EXPOSE 8765$' <<<"$instructions" || fail "no 'EXPOSE 8765'"
env_line=$(grep -E '^ENV ' <<<"$instructions")
grep -q 'HOST=0.0.0.0' <<<"$env_line" || fail "ENV does not set HOST=0.0.0.0"
grep -q 'PORT=8765' <<<"$env_line" || fail "ENV does not set PORT=8765"
grep -qE '^HEALTHCHECK .*CMD .*relayctl.*"health"' <<<"$instructions" || fail "HEALTHCHECK does not run 'relayctl ... health'"
grep -qE '^ENTRYPOINT \["/usr/local/bin/relay"\]$' <<<"$instructions" || fail 'ENTRYPOINT is not ["/usr/local/bin/relay"]'

# --- .dockerignore ----------------------------------------------------------------
grep -qxF '.git' "$DOCKERIGNORE" || fail ".dockerignore does not exclude .git"
grep -qE '^/?build' "$DOCKERIGNORE" || fail ".dockerignore does not exclude build directories"

# --- docker-compose.yml -----------------------------------------------------------
if [[ ! -x "$PYTHON" ]] || ! "$PYTHON" -c 'import yaml' 2>/dev/null; then
  fail "$PYTHON with the yaml module is needed (scripts/install-deps.sh --test installs python3-yaml)"
elif "$PYTHON" - "$COMPOSE" <<'PY'; then
import sys
import yaml

with open(sys.argv[1], encoding="utf-8") as f:
    doc = yaml.safe_load(f)
problems = []
relay = (doc or {}).get("services", {}).get("relay")
if not isinstance(relay, dict):
    problems.append("no services.relay")
else:
    if relay.get("build") != ".":
        problems.append("services.relay.build is not '.'")
    if not any(str(p).split(":")[-1].split("/")[0] == "8765" for p in relay.get("ports", [])):
        problems.append("services.relay.ports does not publish container port 8765")
    if relay.get("restart") != "unless-stopped":
        problems.append("services.relay.restart is not unless-stopped")
    env = relay.get("environment", {})
    names = set(env) if isinstance(env, dict) else {str(e).split("=")[0] for e in env}
    for name in ("PORT", "HOST", "LOG_LEVEL"):
        if name not in names:
            problems.append(f"services.relay.environment has no {name}")
for p in problems:
    print(f"FAIL: docker-compose.yml: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
  ok "docker-compose.yml parses and publishes 8765"
else
  fail "docker-compose.yml check failed"
fi

if ((failures > 0)); then
  echo "check_dockerfile: $failures check(s) failed" >&2
  exit 1
fi
echo "check_dockerfile: all checks passed"
