#!/usr/bin/env bash
# Installs the Debian 12 packages the relay needs, only those missing.
#   scripts/install-deps.sh          build + runtime packages
#   scripts/install-deps.sh --test   also what the test suite uses (python3-websockets, pytest, python3-yaml)
set -euo pipefail

BUILD_PKGS=(
  g++ cmake ninja-build pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libwebsocketpp-dev libasio-dev libabsl-dev libssl-dev libsqlite3-dev
  libgtest-dev libgmock-dev
)
TEST_PKGS=(python3 python3-websockets python3-pytest python3-yaml curl)

pkgs=("${BUILD_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
