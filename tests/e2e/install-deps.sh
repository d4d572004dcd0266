#!/usr/bin/env bash
# Installs what the end-to-end tests of tests/e2e need beyond
# deploy/install-build-deps.sh, from Debian 12 packages and the npm registry:
# Debian's chromium (the browser tests drive it with playwright-core; no
# browser is ever downloaded), coturn (TURN relay tests), iproute2 and
# util-linux (run.sh's private network namespace), Node.js with npm, the
# npm packages pinned in package-lock.json (playwright-core, @roamhq/wrtc,
# ws), and python3 (e2e_webhooks_redis_test runs docs/webhooks.md's Python
# receiver example, as it runs the Node one).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

packages=(chromium coturn iproute2 util-linux python3)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
"$here/../../deploy/apt-install-missing.sh" "${packages[@]}"
# coturn's package may start its own turnserver where an init system runs;
# the tests start their own on free ports and need none running.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet coturn 2>/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO systemctl disable --now coturn || true
fi

cd "$here"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund
  touch node_modules
fi
echo "install-deps: chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), node $(node --version), npm packages in tests/e2e/node_modules"
