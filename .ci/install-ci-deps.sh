#!/usr/bin/env bash
# What CI needs beyond deploy/install-build-deps.sh (which stays the list
# for building and running the server): clang-14 with its libFuzzer and
# sanitizer runtimes, for tools/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/apt-install-missing.sh clang-14 libclang-rt-14-dev
