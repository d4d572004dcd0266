#!/usr/bin/env bash
# Installs what goring needs to build, test and run, from Debian 12 packages.
# One script for every place that builds goring: README's commands, .ci/run,
# and the container image's build stage.
# Usage: install-build-deps.sh [--build-only]
#   --build-only  what building goring and goringctl needs, without the test
#                 tools (redis-server, curl, prometheus): the image's build stage.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libcaf-dev libboost-dev libboost-system-dev
  libhiredis-dev libcpp-jwt-dev nlohmann-json3-dev libssl-dev
  rapidjson-dev doctest-dev
)
case "${1:-}" in
  --build-only) ;;
  # redis-server also runs the tests' sentinels (redis-server CONF --sentinel).
  "") packages+=(redis-server curl prometheus) ;;
  *)
    echo "usage: $0 [--build-only]" >&2
    exit 2
    ;;
esac

"$(dirname "$0")/apt-install-missing.sh" "${packages[@]}"
# The prometheus package is here for promtool (metrics tests); its server,
# enabled by the package where systemd runs, would hold port 9090.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO systemctl disable --now prometheus || true
fi
