#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running relay on :8765:
# installs missing packages, builds, then runs build/bin/relay (arguments are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/bin/relay "$@"
