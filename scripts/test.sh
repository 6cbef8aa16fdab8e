#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to the whole test suite:
# installs missing packages (test tools included), builds, runs every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 300 -j "${JOBS:-2}"
