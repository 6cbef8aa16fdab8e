#!/usr/bin/env bash
# Installs the Debian 12 packages the relay needs, only those missing.
#   scripts/install-deps.sh          build + runtime packages (libnats-dev: nats.c, the NATS
#                                    client of cluster mode, docs/adr/0010-nats-client.md)
#   scripts/install-deps.sh --fuzz   also the fuzzing toolchain (clang-14, libFuzzer, compiler-rt,
#                                    llvm-symbolizer from llvm-14, RapidJSON), for scripts/fuzz.sh
#   scripts/install-deps.sh --test   also what the test suite uses (python3-websockets, pytest,
#                                    python3-yaml, python3-grpcio and python3-prometheus-client as
#                                    independent clients, nginx and systemd to check deploy/,
#                                    nats-server for tests/backplane/nats, prometheus for
#                                    promtool, which checks deploy/prometheus/, nodejs, npm and
#                                    chromium for tests/interop: the JavaScript client's tests
#                                    and headless Chromium, docs/adr/0011-js-client-and-browser-interop.md),
#                                    and the fuzzing toolchain: scripts/test.sh fuzzes
# The sanitizer build (scripts/test-sanitize.sh) needs nothing more: g++ brings libasan8 and libubsan1.
set -euo pipefail

BUILD_PKGS=(
  g++ cmake ninja-build pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libwebsocketpp-dev libasio-dev libabsl-dev libssl-dev libsqlite3-dev
  libgtest-dev libgmock-dev libnats-dev
)
TEST_PKGS=(python3 python3-websockets python3-pytest python3-yaml python3-cryptography curl openssl
  python3-grpcio python3-prometheus-client nginx systemd nats-server prometheus nodejs chromium)
# npm: Debian's package, unless an npm is already installed (NodeSource's nodejs package bundles
# npm and conflicts with Debian's, so asking apt for it there would fail).
command -v npm >/dev/null 2>&1 || TEST_PKGS+=(npm)
# rapidjson-dev: only the fuzz harness's reference JSON parser (tests/fuzz/json_reference.cc).
FUZZ_PKGS=(clang-14 libfuzzer-14-dev libclang-rt-14-dev llvm-14 rapidjson-dev)

pkgs=("${BUILD_PKGS[@]}")
for arg in "$@"; do
  case "$arg" in
    --test) pkgs+=("${TEST_PKGS[@]}" "${FUZZ_PKGS[@]}") ;;
    --fuzz) pkgs+=("${FUZZ_PKGS[@]}") ;;
    *) echo "install-deps: unknown argument $arg (expected --test or --fuzz)" >&2; exit 2 ;;
  esac
done

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
