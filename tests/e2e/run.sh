#!/usr/bin/env bash
# Runs one end-to-end test file of tests/e2e (node's test runner) for ctest,
# inside a network namespace of its own in which only loopback exists: the
# browser's and wrtc's WebRTC then finds no other interface to gather
# candidates on, and nothing the test starts can reach outside.
# Usage: run.sh <file.test.mjs>
# Exits 77 (ctest: skipped) when tests/e2e/node_modules, node or, for a
# browser test, /usr/bin/chromium is missing — unless GORING_E2E_REQUIRED=1
# (tools/test.sh and CI set it, after tests/e2e/install-deps.sh), where a
# missing prerequisite fails the test instead.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
file="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"

missing=""
command -v node >/dev/null 2>&1 || missing="node"
[ -d "$here/node_modules" ] || missing="${missing:+$missing, }tests/e2e/node_modules (tests/e2e/install-deps.sh)"
if grep -q "playwright-core" "$file" && [ ! -x /usr/bin/chromium ]; then
  missing="${missing:+$missing, }/usr/bin/chromium"
fi
if grep -q "turnserver\|startCoturn" "$file" && ! command -v turnserver >/dev/null 2>&1; then
  missing="${missing:+$missing, }turnserver (coturn)"
fi
if [ -n "$missing" ]; then
  if [ "${GORING_E2E_REQUIRED:-0}" = 1 ]; then
    echo "run.sh: missing $missing" >&2
    exit 1
  fi
  echo "run.sh: skipped, missing $missing (run tests/e2e/install-deps.sh)"
  exit 77
fi

# Root gets a plain new network namespace; anyone else a user namespace with
# it (unshare -r). Loopback starts down in a new namespace.
unshare_args=(-n)
[ "$(id -u)" -eq 0 ] || unshare_args=(-r -n)
exec unshare "${unshare_args[@]}" -- bash -c '
  set -e
  ip link set lo up
  cd "$1"
  exec node --test --test-reporter=spec "$2"
' run.sh "$here" "$file"
