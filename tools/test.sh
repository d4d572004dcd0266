#!/usr/bin/env bash
# Installs what goring needs (Debian 12), builds it, and runs every test.
# Usage: tools/test.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-build-deps.sh
# Chromium, coturn and the npm packages of the browser/WebRTC tests.
./tests/e2e/install-deps.sh
# They are installed now: a missing one fails its test instead of skipping it.
export GORING_E2E_REQUIRED=1
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
